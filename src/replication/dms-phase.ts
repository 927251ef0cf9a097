/**
 * Pure mapping from an AWS DMS replication task's description to a replication observation
 * (https://docs.aws.amazon.com/dms/latest/APIReference/API_ReplicationTask.html). Kept apart from
 * the SDK calls so every status can be tested as data.
 */
import type { ReplicationPhase } from '../domain/replication-machine.js';

/** The fields of a DescribeReplicationTasks entry we read. */
export interface DmsTaskView {
  readonly status: string;
  readonly migrationType?: string | undefined;
  readonly fullLoadProgressPercent?: number | undefined;
  readonly fullLoadStarted: boolean;
  readonly tablesErrored?: number | undefined;
  readonly stopReason?: string | undefined;
  readonly lastFailureMessage?: string | undefined;
}

export interface DmsPhase {
  readonly phase: ReplicationPhase;
  readonly error?: string;
  /** Whether CDC latency means anything now (a stopped task's last datapoints are history). */
  readonly streaming: boolean;
}

const BEFORE_START = new Set(['creating', 'ready', 'starting', 'testing']);
const FAILED = new Set(['failed', 'failed-move']);
// Stop reasons that are failures, not an operator's stop or a planned end
// (https://docs.aws.amazon.com/dms/latest/APIReference/API_ReplicationTask.html, StopReason).
const FAILED_STOP = /RECOVERABLE_ERROR|FATAL_ERROR|LOW_MEMORY|LOW_DISK|LICENSE_LIMITS/;
const LOAD_ONLY_STOP = /FULL_LOAD_ONLY_FINISHED|STOPPED_AFTER_FULL_LOAD|STOPPED_AFTER_CACHED_EVENTS/;

/**
 * `hasCdcLatency`: CloudWatch has CDCLatencySource/Target datapoints for the task, i.e. change
 * capture is reporting. A full-load-and-cdc task at 100% without them is FULL_LOAD_COMPLETE.
 */
export function dmsPhase(t: DmsTaskView, hasCdcLatency: boolean): DmsPhase {
  const pct = t.fullLoadProgressPercent ?? 0;
  const loadPhase = (): ReplicationPhase => {
    if (t.migrationType === 'cdc') return 'cdc';
    if (!t.fullLoadStarted && pct === 0) return 'not-started';
    if (pct < 100) return 'full-load';
    if (t.migrationType === 'full-load') return 'full-load-complete';
    return hasCdcLatency ? 'cdc' : 'full-load-complete';
  };
  if (FAILED.has(t.status)) {
    return { phase: loadPhase(), error: `DMS task ${t.status}: ${t.lastFailureMessage ?? 'no failure message'}`, streaming: false };
  }
  if ((t.tablesErrored ?? 0) > 0) {
    return { phase: loadPhase(), error: `DMS task has ${t.tablesErrored} table(s) in error${t.lastFailureMessage ? `: ${t.lastFailureMessage}` : ''}`, streaming: false };
  }
  if (BEFORE_START.has(t.status) && !t.fullLoadStarted && t.migrationType !== 'cdc') return { phase: 'not-started', streaming: false };
  if (t.status === 'stopped') {
    const why = t.stopReason ?? '';
    if (FAILED_STOP.test(why)) return { phase: loadPhase(), error: `DMS task stopped: ${why}${t.lastFailureMessage ? `: ${t.lastFailureMessage}` : ''}`, streaming: false };
    if (LOAD_ONLY_STOP.test(why)) return { phase: 'full-load-complete', streaming: false };
    return { phase: loadPhase(), streaming: false };
  }
  return { phase: loadPhase(), streaming: t.status === 'running' };
}

/** `arn:aws:dms:<region>:<account>:task:<ID>` → `<ID>`, the value of CloudWatch's ReplicationTaskIdentifier dimension. */
export function arnResourceId(arn: string): string {
  const i = arn.lastIndexOf(':');
  return i >= 0 ? arn.slice(i + 1) : arn;
}
