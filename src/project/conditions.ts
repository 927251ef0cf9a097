/**
 * The seed's success and failure conditions, evaluated continuously from recorded facts (pure). Success:
 * data integrity verified, zero data loss, p99 < 30 ms for 14 consecutive days, old cluster decommissioned.
 * Failure: data loss detected, replication lag > 60 s for 5 minutes, application errors > baseline + 5%.
 */
import type { BreakerReading } from '../domain/breaker.js';
import type { DailyP99 } from './history.js';
import type { Role } from '../domain/role.js';

export type ConditionStatus = 'met' | 'not-met' | 'unknown';

export interface Condition {
  readonly name: string;
  readonly status: ConditionStatus;
  readonly measured: string;
  readonly detail?: string;
}

export interface ConditionInput {
  /** The last check of data (final gate, else gate 2): did every checksum criterion pass, and when. */
  readonly integrity: { readonly source: string; readonly passed: boolean; readonly failedChecks: readonly string[]; readonly at: number } | null;
  readonly daily: readonly DailyP99[];
  /** Days needed in a row (14) and the bound (30 ms). */
  readonly streakDays: number;
  readonly p99BoundMs: number;
  readonly decommissioned: { readonly at: number } | null;
  readonly breakers: readonly BreakerReading[];
  /** Breaker trips recorded in the audit log (name, when). */
  readonly trips: readonly { readonly name: string; readonly at: number }[];
  /** Application error rate before the first read moved (fraction), and the current one. */
  readonly baselineErrorRate: number | null;
  readonly currentErrorRate: number | null;
  readonly errorDelta: number;
}

export interface Conditions {
  readonly success: readonly Condition[];
  readonly failure: readonly Condition[];
  /** Consecutive most recent days under the bound, per backend. */
  readonly streak: { readonly source: number; readonly target: number };
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/** Consecutive complete days, newest first, whose p99 stayed under `bound` (a day without data ends the streak). */
export function p99Streak(daily: readonly DailyP99[], backend: Role, bound: number): number {
  const days = daily.filter((d) => d.backend === backend).sort((a, b) => b.day - a.day);
  let n = 0;
  let expect: number | null = null;
  for (const d of days) {
    if (expect !== null && d.day !== expect) break;
    if (d.p99Ms === null || d.p99Ms >= bound) break;
    n++;
    expect = d.day - 1;
  }
  return n;
}

export function evaluateConditions(i: ConditionInput): Conditions {
  const streak = { source: p99Streak(i.daily, 'source', i.p99BoundMs), target: p99Streak(i.daily, 'target', i.p99BoundMs) };
  const lagTrips = i.trips.filter((t) => t.name === 'replication-lag');
  const lagNow = i.breakers.find((b) => b.name === 'replication-lag');
  const errNow = i.breakers.find((b) => b.name === 'error-rate');
  const errTrips = i.trips.filter((t) => t.name === 'error-rate');
  const spike = i.baselineErrorRate !== null && i.currentErrorRate !== null && i.currentErrorRate > i.baselineErrorRate + i.errorDelta;
  const success: Condition[] = [
    {
      name: 'data integrity verified',
      status: i.integrity === null ? 'unknown' : i.integrity.passed ? 'met' : 'not-met',
      measured: i.integrity === null ? 'no checksum run recorded' : `${i.integrity.source}: ${i.integrity.passed ? 'every checksum equal' : `${i.integrity.failedChecks.length} check(s) differ`}`,
      ...(i.integrity ? { detail: `checked ${new Date(i.integrity.at).toISOString()}` } : {}),
    },
    {
      name: 'zero data loss',
      status: i.integrity === null ? 'unknown' : i.integrity.passed ? 'met' : 'not-met',
      measured: i.integrity === null ? 'not verified yet' : i.integrity.passed ? 'no difference between source and target' : i.integrity.failedChecks.join(', '),
    },
    {
      name: `p99 < ${i.p99BoundMs} ms for ${i.streakDays} consecutive days`,
      status: streak.target >= i.streakDays ? 'met' : i.daily.length === 0 ? 'unknown' : 'not-met',
      measured: `target ${streak.target} day(s), source ${streak.source} day(s) in a row`,
      detail: 'daily p99 of every unit through the proxy, per backend (days scaled by --time-scale)',
    },
    {
      name: 'old cluster decommissioned',
      status: i.decommissioned ? 'met' : 'not-met',
      measured: i.decommissioned ? new Date(i.decommissioned.at).toISOString() : 'not yet',
    },
  ];
  const failure: Condition[] = [
    {
      name: 'data loss detected',
      status: i.integrity !== null && !i.integrity.passed ? 'met' : i.integrity === null ? 'unknown' : 'not-met',
      measured: i.integrity !== null && !i.integrity.passed ? i.integrity.failedChecks.join(', ') : 'none',
    },
    {
      name: 'replication lag > 60 s for 5 minutes',
      status: lagNow?.open ? 'met' : 'not-met',
      measured: `now ${lagNow?.value ?? 'n/a'} s; breaker tripped ${lagTrips.length} time(s)`,
    },
    {
      name: 'application errors > baseline + 5%',
      status: errNow?.open || spike ? 'met' : i.currentErrorRate === null ? 'unknown' : 'not-met',
      measured: `now ${i.currentErrorRate === null ? 'n/a' : pct(i.currentErrorRate)}, baseline ${i.baselineErrorRate === null ? 'not recorded' : pct(i.baselineErrorRate)}; breaker tripped ${errTrips.length} time(s)`,
    },
  ];
  return { success, failure, streak };
}
