/**
 * One consistent point on both sides of a live replica, for gate 2's chunks that keep changing (DESIGN.md
 * "Gates"). Re-checking a hot chunk after waiting for replication never settles under steady writes: the
 * source moves on between its read and the target's. So, for one short round, writes are parked at every
 * sidecar (the coordinated write pause of src/control/write-pause.ts, bounded by a budget, default 200 ms):
 *
 *   1. park and drain writes on the upstream (every live sidecar acknowledges);
 *   2. open a REPEATABLE READ snapshot on the upstream (its first statement takes the snapshot);
 *   3. read a position covering every commit before it (`committedLsn`: our own synchronous commit);
 *   4. wait until the downstream subscription has applied that position;
 *   5. open a REPEATABLE READ snapshot on the downstream; release the writes.
 *
 * Both snapshots then hold exactly the same committed data (no write went through the proxy between 2
 * and 5), and every chunk is compared inside them after the release, for as long as that takes: the hold
 * covers only the snapshots, never the checksums. A write from outside the proxy can still slip in
 * between; the caller confirms a difference at a second point before calling it real.
 *
 * Why not a snapshot alone, with no hold: the downstream keeps applying, and a REPEATABLE READ snapshot on
 * it can only be taken "now", not "at LSN X". PostgreSQL 15 cannot stop an apply worker at an LSN.
 */
import type pg from 'pg';
import { committedLsn, waitForApplied } from './apply-wait.js';
import type { Db } from './control-conn.js';

/** Parks writes on the upstream at every sidecar within `budgetMs`; resolves with the release. Rejects: no hold. */
export type WriteHold = (budgetMs: number) => Promise<() => Promise<void>>;

export interface ConsistentPair {
  readonly source: pg.PoolClient;
  readonly target: pg.PoolClient;
  /** The upstream position both snapshots contain. */
  readonly lsn: string;
  /** How long writes were parked. */
  readonly holdMs: number;
  /** Ends both snapshots and returns the connections. */
  end(): Promise<void>;
}

export type PointResult = { readonly ok: true; readonly pair: ConsistentPair } | { readonly ok: false; readonly reason: string; readonly holdMs: number };

export interface PointOptions {
  readonly source: pg.Pool;
  readonly target: pg.Pool;
  /** A source session outside any snapshot, for the commit that marks the position. */
  readonly lsnConn: Db;
  readonly subscription: string;
  readonly hold: WriteHold;
  readonly budgetMs: number;
}

/** One round trip: the snapshot is taken by the first statement after BEGIN. */
const SNAPSHOT = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), Math.max(0, ms))));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export async function consistentPoint(o: PointOptions): Promise<PointResult> {
  // Connections first: nothing slow may happen while writes are parked.
  const s = await o.source.connect();
  let t: pg.PoolClient;
  try {
    t = await o.target.connect();
  } catch (e) {
    s.release();
    throw e;
  }
  const end = async () => {
    await Promise.allSettled([s.query('ROLLBACK'), t.query('ROLLBACK')]);
    s.release();
    t.release();
  };
  const started = Date.now();
  const left = () => o.budgetMs - (Date.now() - started);
  let release: (() => Promise<void>) | null = null;
  const pending = o.hold(o.budgetMs);
  try {
    release = await withTimeout(pending, left(), 'parking the writes');
    await s.query(SNAPSHOT);
    const lsn = await committedLsn(o.lsnConn, 'gate2 consistent point');
    const w = await waitForApplied(t, o.subscription, lsn, { timeoutMs: Math.max(0, left()), pollMs: 2 });
    if (!w.ok) throw new Error(`the target had not applied ${lsn} within the ${o.budgetMs} ms hold (at ${w.applied ?? 'none'})`);
    await t.query(SNAPSHOT);
    await release();
    const holdMs = Date.now() - started;
    return { ok: true, pair: { source: s, target: t, lsn, holdMs, end } };
  } catch (e) {
    // A hold that arrives after its deadline is released at once.
    if (release) await release().catch(() => undefined);
    else void pending.then((r) => r()).catch(() => undefined);
    const holdMs = Date.now() - started;
    await end();
    return { ok: false, reason: (e as Error).message, holdMs };
  }
}
