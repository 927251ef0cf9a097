/**
 * Latency of units through the proxy (dispatch to ReadyForQuery) in a fixed log-scale histogram: recording is
 * O(1) with no allocation (hot path), quantiles are read at scrape or gate time. Buckets are quarter powers of
 * two from 8 µs, so a quantile is within ~19% of the true value, plenty for "p99 < 20 ms" and dashboards.
 */
const BUCKETS = 96;
const MIN_US = 8;

export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;

  /** One observation in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000;
    let i = us <= MIN_US ? 0 : Math.floor(Math.log2(us / MIN_US) * 4);
    if (i >= BUCKETS) i = BUCKETS - 1;
    this.counts[i]++;
    this.count++;
  }

  /** The upper bound of the bucket holding quantile `q` (0..1), in ms; null without observations. */
  quantile(q: number): number | null {
    return quantileOfCounts(this.counts, q);
  }

  /** A copy of the bucket counts (the history recorder diffs them per interval and sums them per day). */
  copyCounts(): Float64Array {
    return Float64Array.from(this.counts);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
  }
}

/** Quantile `q` of a histogram given as bucket counts (LatencyHistogram's buckets); null when empty. */
export function quantileOfCounts(counts: ArrayLike<number>, q: number): number | null {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i]!;
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += counts[i]!;
    if (seen >= rank) return (MIN_US * 2 ** ((i + 1) / 4)) / 1000;
  }
  return (MIN_US * 2 ** (BUCKETS / 4)) / 1000;
}

/** Per backend and kind of unit. */
export class UnitLatency {
  readonly source = { read: new LatencyHistogram(), write: new LatencyHistogram() };
  readonly target = { read: new LatencyHistogram(), write: new LatencyHistogram() };

  /** Forget everything (the cutover state changed: gate 3 judges the current stage only). */
  reset(): void {
    for (const h of [this.source.read, this.source.write, this.target.read, this.target.write]) h.reset();
  }
}
