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

/**
 * `pg_current_wal_flush_lsn()`: the end of WAL the walsender may already send. Every transaction
 * acknowledged with synchronous_commit on is before it. Waiting for pg_current_wal_lsn() instead
 * can take seconds on a quiet server: WAL from reads (page pruning) sits unflushed until the
 * hibernating WAL writer wakes, and the walsender cannot send it before.
 */
export async function flushedWalLsn(db: Db): Promise<string> {
  const r = await db.query<{ lsn: string }>('SELECT pg_current_wal_flush_lsn()::text AS lsn');
  return r.rows[0]!.lsn;
}

/**
 * A position covering every transaction committed on `db` before this call, including ones
 * acknowledged with synchronous_commit off: we commit a transaction of our own, synchronously,
 * whose commit record comes after all of theirs in the WAL, and read the flush position it forced.
 * The transaction holds only a transactional logical decoding message, which subscriptions do not
 * receive (pgoutput sends messages only when asked: https://www.postgresql.org/docs/15/protocol-logical-replication.html).
 */
export async function committedLsn(db: Db, label = 'pg-cutover'): Promise<string> {
  const tag = label.replace(/[^A-Za-z0-9 ._:-]/g, '');
  await db.query(`BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, 'pgcutover', '${tag}'); COMMIT`);
  return flushedWalLsn(db);
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
  /**
   * Called every `nudgeMs` (default 100) while the position has not moved: writes a little WAL on the
   * publisher. Measured: on an idle PostgreSQL 14 publisher whose last transaction changed only unpublished
   * tables, the walsender sent no keepalive for the applied position until new WAL arrived (> 5 s).
   */
  nudge?: () => Promise<unknown>;
  nudgeMs?: number;
}

/** A nudge for `waitForApplied`: a non-transactional logical message, which subscriptions never receive. */
export function walNudge(publisher: Db): () => Promise<unknown> {
  return () => publisher.query(`SELECT pg_logical_emit_message(false, 'pgcutover', 'nudge')`);
}

export async function waitForApplied(subscriber: Db, subscription: string, lsn: string, opts: ApplyWaitOptions = {}): Promise<ApplyWait> {
  const started = Date.now();
  const timeout = opts.timeoutMs ?? 30_000;
  const poll = opts.pollMs ?? 10;
  let nudged = started;
  for (;;) {
    const applied = await appliedLsn(subscriber, subscription);
    if (lsnAtLeast(applied, lsn)) return { ok: true, waitedMs: Date.now() - started, applied };
    if (Date.now() - started >= timeout) return { ok: false, waitedMs: Date.now() - started, applied };
    if (opts.nudge && Date.now() - nudged >= (opts.nudgeMs ?? 100)) {
      nudged = Date.now();
      await opts.nudge().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, poll));
  }
}

/**
 * Waits until the subscription is fully caught up: every table past its initial copy (state `r`
 * in pg_subscription_rel) and the apply worker past the publisher's flushed WAL. The apply
 * worker's position alone says nothing about tables still being copied by table-sync workers.
 */
export async function waitForCaughtUp(publisher: Db, subscriber: Db, subscription: string, opts: ApplyWaitOptions = {}): Promise<ApplyWait> {
  const started = Date.now();
  const timeout = opts.timeoutMs ?? 60_000;
  const poll = opts.pollMs ?? 50;
  for (;;) {
    const r = await subscriber.query<{ pending: number }>(
      `SELECT count(*)::int AS pending FROM pg_subscription_rel sr JOIN pg_subscription s ON s.oid = sr.srsubid
        WHERE s.subname = $1 AND sr.srsubstate <> 'r'`,
      [subscription],
    );
    if (r.rows[0]!.pending === 0) {
      const w = await waitForApplied(subscriber, subscription, await flushedWalLsn(publisher), { timeoutMs: Math.max(0, timeout - (Date.now() - started)), pollMs: opts.pollMs ?? 10 });
      return { ...w, waitedMs: Date.now() - started };
    }
    if (Date.now() - started >= timeout) return { ok: false, waitedMs: Date.now() - started, applied: await appliedLsn(subscriber, subscription) };
    await new Promise((res) => setTimeout(res, poll));
  }
}
