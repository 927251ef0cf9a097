/**
 * A sliding window of counters in fixed time buckets kept in a ring. `add` is O(1) and allocates
 * nothing (it runs on the proxy's hot path for every query); `sum` walks the ring (a few dozen
 * slots) and runs only when a breaker is evaluated.
 *
 * Several series share one ring (e.g. queries and faults), so a ratio is always taken over the
 * same buckets. The window covers the current, partly filled bucket and the `buckets - 1` before
 * it, i.e. between `spanMs - bucketMs` and `spanMs` of history.
 */
export class CounterWindow {
  readonly bucketMs: number;
  readonly buckets: number;
  readonly series: number;
  /** counts[slot * series + k] */
  private readonly counts: Float64Array;
  /** The absolute bucket number (floor(t / bucketMs)) each slot currently holds; -1 for never used. */
  private readonly stamps: Float64Array;

  constructor(spanMs: number, buckets: number, series = 1) {
    if (!(spanMs > 0) || !Number.isInteger(buckets) || buckets < 1 || !Number.isInteger(series) || series < 1) {
      throw new RangeError(`bad window: spanMs=${spanMs} buckets=${buckets} series=${series}`);
    }
    this.bucketMs = spanMs / buckets;
    this.buckets = buckets;
    this.series = series;
    this.counts = new Float64Array(buckets * series);
    this.stamps = new Float64Array(buckets).fill(-1);
  }

  get spanMs(): number {
    return this.bucketMs * this.buckets;
  }

  /** Count `n` in series `k` at time `now`. A sample older than the whole window is dropped. */
  add(now: number, k: number, n = 1): void {
    const b = Math.floor(now / this.bucketMs);
    const slot = b % this.buckets;
    const stamp = this.stamps[slot]!;
    if (stamp !== b) {
      if (stamp > b) return;
      this.stamps[slot] = b;
      const base = slot * this.series;
      for (let i = 0; i < this.series; i++) this.counts[base + i] = 0;
    }
    this.counts[slot * this.series + k]! += n;
  }

  /** Total of series `k` over the window ending at `now`. */
  sum(now: number, k: number): number {
    const b = Math.floor(now / this.bucketMs);
    let total = 0;
    for (let slot = 0; slot < this.buckets; slot++) {
      const stamp = this.stamps[slot]!;
      if (stamp > b - this.buckets && stamp <= b) total += this.counts[slot * this.series + k]!;
    }
    return total;
  }

  clear(): void {
    this.counts.fill(0);
    this.stamps.fill(-1);
  }
}
