/**
 * Monitor for native logical replication. Phase from pg_subscription_rel.srsubstate (i/d copying,
 * f/s copied and catching up, r ready: https://www.postgresql.org/docs/15/catalog-pg-subscription-rel.html);
 * lag in bytes as the publisher's pg_current_wal_lsn() minus what the subscriber applied; lag in
 * seconds from the heartbeat probe. Works in either direction: pass publisher and subscriber.
 */
import type { ReplicationPhase } from '../domain/replication-machine.js';
import type { Db } from './control-conn.js';
import type { Observation, ReplicationMonitor } from './monitor.js';
import { DEFAULT_SUBSCRIPTION, readNativeStatus, type NativeStatus } from './native.js';
import type { TableSyncState } from './subscription.js';

export interface NativeMonitorOptions {
  /** Subscription on `subscriber`. Default `pgcutover`. */
  subscription?: string;
  publication?: string;
  /** End-to-end lag in seconds (the heartbeat probe); used when the byte lag is not zero. */
  lagSeconds?: () => number | null;
  /** An enabled subscription without an apply worker for this long is an error. Default 10 s. */
  workerGraceMs?: number;
  now?: () => number;
}

/** Pure: the replicator's phase from the per-table copy states. */
export function phaseOf(enabled: boolean, workerRunning: boolean, states: readonly TableSyncState[]): ReplicationPhase {
  // Disabled on purpose (a rollback pauses it; so does `replicate pause`): paused, whatever phase it was in.
  if (!enabled && states.length > 0) return 'paused';
  if (states.some((s) => s === 'i' || s === 'd')) return 'full-load';
  if (states.some((s) => s === 'f' || s === 's')) return 'full-load-complete';
  // Every table ready (or none published): streaming changes, once a worker has run at all.
  if (states.length === 0 && !workerRunning && enabled) return 'not-started';
  return 'cdc';
}

export function nativeMonitor(publisher: Db, subscriber: Db, opts: NativeMonitorOptions = {}): ReplicationMonitor {
  const now = opts.now ?? Date.now;
  const grace = opts.workerGraceMs ?? 10_000;
  let noWorkerSince: number | null = null;
  let lastErrors: { apply: number; sync: number } | null = null;

  const observe = async (): Promise<Observation> => {
    const st: NativeStatus = await readNativeStatus(publisher, subscriber, {
      subscription: opts.subscription ?? DEFAULT_SUBSCRIPTION,
      ...(opts.publication ? { publication: opts.publication } : {}),
    });
    const t = now();
    const sub = st.subscription;
    if (!sub) {
      noWorkerSince = null;
      return { phase: 'not-started', lagSeconds: null, lagBytes: null, now: t, detail: 'no subscription' };
    }
    const running = sub.worker.pid !== null;
    const states = sub.tables.map((x) => x.state);
    const phase = phaseOf(sub.enabled, running, states);
    noWorkerSince = sub.enabled && !running ? (noWorkerSince ?? t) : null;
    let error: string | undefined;
    if (noWorkerSince !== null && t - noWorkerSince >= grace) {
      error = `subscription ${sub.name} is enabled but its apply worker has not run for ${Math.round((t - noWorkerSince) / 1000)}s (see the target's log)`;
    }
    // Error counts are cumulative; an increase since the last look is a fresh failure.
    if (sub.errors && lastErrors && (sub.errors.apply > lastErrors.apply || sub.errors.sync > lastErrors.sync)) {
      error = `subscription ${sub.name} reported errors: apply ${sub.errors.apply - lastErrors.apply}, table sync ${sub.errors.sync - lastErrors.sync} since the last look`;
    }
    if (sub.errors) lastErrors = sub.errors;
    const lagBytes = sub.enabled ? st.lagBytes : null;
    // Nothing left to apply is zero lag, exactly; otherwise the heartbeat says how old the backlog is.
    const lagSeconds = !sub.enabled ? null : lagBytes === 0 ? 0 : (opts.lagSeconds?.() ?? null);
    const copying = sub.tables.filter((x) => x.state !== 'r').map((x) => `${x.table}:${x.state}`);
    const detail = [
      sub.enabled ? (running ? `worker ${sub.worker.pid}` : 'no worker') : 'disabled',
      copying.length ? `copying ${copying.join(' ')}` : `${sub.tables.length} tables ready`,
      `lag ${lagBytes ?? '?'} B`,
    ].join(', ');
    return { phase, lagSeconds, lagBytes, now: t, detail, ...(error ? { error } : {}) };
  };
  return { kind: 'native', observe };
}
