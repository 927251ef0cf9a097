/**
 * Pure part of the heartbeat lag probe: from the timestamps this probe wrote on the primary and
 * the one the replica shows, how old is the oldest change the replica has not applied yet?
 */

/**
 * `written`: timestamps (ms, ascending) this probe wrote, newest last. `replicatedAt`: the value the
 * replica holds (null: no row yet). Lag is the age of the first write the replica has not shown:
 * 0 when it shows our newest write, the age of our first when it shows none of ours. Without local
 * writes to compare with (another sidecar writes), it is `now - replicatedAt`, an upper bound that
 * includes up to one write interval.
 */
export function heartbeatLagMs(written: readonly number[], replicatedAt: number | null, now: number): number | null {
  if (written.length === 0) return replicatedAt === null ? null : Math.max(0, now - replicatedAt);
  if (replicatedAt === null) return Math.max(0, now - written[0]!);
  // Binary search: first write strictly newer than what the replica shows.
  let lo = 0;
  let hi = written.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (written[mid]! > replicatedAt) hi = mid;
    else lo = mid + 1;
  }
  // Past everything we still remember (history is capped), this is a lower bound, which is
  // enough: by then the lag is minutes and far over any threshold.
  return lo === written.length ? 0 : Math.max(0, now - written[lo]!);
}
