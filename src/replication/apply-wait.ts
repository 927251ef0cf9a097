/**
 * "Has the subscriber applied everything up to LSN X?" The apply worker handles the walsender's
 * messages in order; a keepalive carrying end position E arrives after every change before E, so
 * once pg_stat_subscription.latest_end_lsn (set from keepalives) is >= X, every transaction that
 * committed before X on the publisher is committed on the subscriber. On an idle publisher the
 * walsender pings as soon as the subscriber has not confirmed its position, so this settles within
 * milliseconds (https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-SUBSCRIPTION).
 */
import type { Db } from './control-conn.js';
import { lsnAtLeast } from './lsn.js';

/** `pg_current_wal_lsn()` of a primary, as text. */
export async function currentWalLsn(db: Db): Promise<string> {
  const r = await db.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return r.rows[0]!.lsn;
}

/** latest_end_lsn of the subscription's apply worker (not its table-sync workers); null if none runs. */
export async function appliedLsn(subscriber: Db, subscription: string): Promise<string | null> {
  const r = await subscriber.query<{ lsn: string | null }>(
    `SELECT latest_end_lsn::text AS lsn FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL`,
    [subscription],
  );
  return r.rows[0]?.lsn ?? null;
}

export interface ApplyWait {
  readonly ok: boolean;
  readonly waitedMs: number;
  /** The last applied position seen. */
  readonly applied: string | null;
}

export interface ApplyWaitOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Default 10 ms: the wait is usually on the write-pause critical path. */
  pollMs?: number;
}

export async function waitForApplied(subscriber: Db, subscription: string, lsn: string, opts: ApplyWaitOptions = {}): Promise<ApplyWait> {
  const started = Date.now();
  const timeout = opts.timeoutMs ?? 30_000;
  const poll = opts.pollMs ?? 10;
  for (;;) {
    const applied = await appliedLsn(subscriber, subscription);
    if (lsnAtLeast(applied, lsn)) return { ok: true, waitedMs: Date.now() - started, applied };
    if (Date.now() - started >= timeout) return { ok: false, waitedMs: Date.now() - started, applied };
    await new Promise((r) => setTimeout(r, poll));
  }
}
