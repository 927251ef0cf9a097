/**
 * Checking one key range on both sides, with the re-checks DESIGN.md asks for under live writes:
 * a range can differ only because the target has not applied the latest changes yet, so a differing
 * range is read again on the source, the target is given time to apply the source's LSN read after
 * that (`sync`), and the target is read again; a few times. What still differs while the source
 * held still is narrowed to its rows; what kept changing is reported as unstable, not as equal.
 */
import type pg from 'pg';
import type { Db } from './control-conn.js';
import { flushedWalLsn, waitForApplied } from './apply-wait.js';
import { lsnAtLeast } from './lsn.js';
import { chunkChecksum, keysIn, maxKeyIn, planChunks, presentKeys, sameSum, tableKey, type ChunkSum } from './checksum.js';
import { mapLimit } from '../support/map-limit.js';
import { describeKey, tableLabel, type KeyRange, type TableKey } from './key-range.js';
import { narrowDifferences, type RowDifference } from './narrow.js';
import type { QualifiedName } from './sql.js';
import type { PointResult } from './consistent-point.js';

export type ChunkVerdict =
  /** `atPoint`: compared inside one consistent point on both sides (see consistent-point.ts). */
  | { readonly kind: 'equal'; readonly rechecks: number; readonly atPoint?: boolean }
  | { readonly kind: 'unstable' }
  | { readonly kind: 'differs'; readonly rows: readonly RowDifference[]; readonly truncated: boolean };

export interface ChunkResult {
  /** The range as compared last (an open last range is capped at the source's largest key on re-checks). */
  readonly range: KeyRange;
  readonly source: ChunkSum;
  readonly target: ChunkSum;
  readonly verdict: ChunkVerdict;
}

/** Equal chunks of an earlier, interrupted run (implemented by checksum-state.ts, a state file). */
export interface ChecksumProgressStore {
  /** A stored equal result for this chunk, if any. */
  lookup(table: string, range: KeyRange): ChunkResult | undefined;
  record(table: string, r: ChunkResult): void;
  /** Writes pending records; call at the end (and it runs at most every second meanwhile). */
  flush(): Promise<void>;
  /** The check finished: the file is no longer needed. */
  complete(): Promise<void>;
  readonly resumed: number;
}

export interface TableComparison {
  readonly table: string;
  readonly key: TableKey;
  readonly chunks: readonly ChunkResult[];
  readonly sourceRows: number;
  readonly targetRows: number;
}

export interface CompareContext {
  readonly source: pg.Pool;
  readonly target: pg.Pool;
  readonly concurrency: number;
  readonly chunkRows: number;
  readonly rechecks: number;
  readonly maxRows: number;
  /** Make the target as current as the source is now (`src`: the source session to read the LSN on). */
  readonly sync: (src: Db, tgt: Db) => Promise<boolean>;
  readonly onChunk?: (rows: number) => void;
  /** Chunks found equal by an earlier, interrupted run (see checksum-state.ts). */
  readonly store?: ChecksumProgressStore;
  /** Chunks still unstable or differing after the re-checks are judged at consistent points (a short write hold). */
  readonly consistent?: ConsistentRounds;
}

export interface ConsistentRounds {
  readonly point: () => Promise<PointResult>;
  /** Points to try at most. */
  readonly rounds: number;
  /** Pause between points, so writes flow again between two holds. */
  readonly delayMs: number;
  /** Every attempt, taken or not (for the gate's evidence). */
  readonly onPoint?: (p: { ok: boolean; holdMs: number; reason?: string; chunks: number }) => void;
}

/**
 * Native sync: read the source's LSN, wait until the subscription has applied it. Narrowing syncs
 * many times over a quiet source; a position already known applied needs no round of waiting.
 */
export function subscriptionSync(subscription: string, timeoutMs: number) {
  let applied: string | null = null;
  return async (src: Db, tgt: Db): Promise<boolean> => {
    const lsn = await flushedWalLsn(src);
    if (lsnAtLeast(applied, lsn)) return true;
    const w = await waitForApplied(tgt, subscription, lsn, { timeoutMs });
    if (w.ok && !lsnAtLeast(applied, w.applied!)) applied = w.applied;
    return w.ok;
  };
}

async function withClients<T>(ctx: CompareContext, fn: (s: pg.PoolClient, t: pg.PoolClient) => Promise<T>): Promise<T> {
  const s = await ctx.source.connect();
  let t: pg.PoolClient | undefined;
  try {
    t = await ctx.target.connect();
    return await fn(s, t);
  } finally {
    s.release();
    t?.release();
  }
}

/**
 * After an open last range compared equal up to the source's largest key `top`: rows the target
 * has beyond `top` that the source does not. Rows inserted on the source meanwhile are on both;
 * a key only the target has after a sync is a real difference (a lagging delete is not: it goes
 * away with the sync).
 */
async function extraBeyond(ctx: CompareContext, s: Db, t: Db, key: TableKey, top: readonly string[]): Promise<RowDifference[]> {
  const beyond = { lo: top, hi: null };
  const onTarget = await keysIn(t, key, beyond, 1000);
  if (onTarget.length === 0) return [];
  const onSource = await presentKeys(s, key, onTarget);
  const suspects = onTarget.filter((k) => !onSource.has(JSON.stringify(k)));
  if (suspects.length === 0) return [];
  await ctx.sync(s, t);
  const still = await presentKeys(t, key, suspects);
  const nowOnSource = await presentKeys(s, key, suspects);
  return suspects
    .filter((k) => still.has(JSON.stringify(k)) && !nowOnSource.has(JSON.stringify(k)))
    .slice(0, ctx.maxRows)
    .map((k) => ({ key: describeKey(key, k), kind: 'extra on target' as const }));
}

export async function checkChunk(ctx: CompareContext, key: TableKey, range: KeyRange): Promise<ChunkResult> {
  return withClients(ctx, async (s, t) => {
    // First look: both sides at once (the common case is equal, and this halves its cost).
    let [a, b] = await Promise.all([chunkChecksum(s, key, range), chunkChecksum(t, key, range)]);
    if (sameSum(a, b)) return { range, source: a, target: b, verdict: { kind: 'equal', rechecks: 0 } };
    let r = range;
    for (let i = 1; i <= ctx.rechecks; i++) {
      if (i > 1) await new Promise((res) => setTimeout(res, 20 * i));
      // An open last range grows with every insert; compare it up to the source's largest key.
      const top = range.hi === null ? await maxKeyIn(s, key, range) : null;
      r = top ? { lo: range.lo, hi: top } : range;
      a = await chunkChecksum(s, key, r);
      await ctx.sync(s, t);
      b = await chunkChecksum(t, key, r);
      if (sameSum(a, b)) {
        const extra = top ? await extraBeyond(ctx, s, t, key, top) : [];
        if (extra.length > 0) return { range: { lo: top, hi: null }, source: a, target: b, verdict: { kind: 'differs', rows: extra, truncated: false } };
        return { range: r, source: a, target: b, verdict: { kind: 'equal', rechecks: i } };
      }
    }
    // Did the source hold still over the last comparison? If not, lag and difference look alike.
    const again = await chunkChecksum(s, key, r);
    if (!sameSum(again, a)) return { range: r, source: a, target: b, verdict: { kind: 'unstable' } };
    const n = await narrowDifferences(s, t, key, r, { sync: () => ctx.sync(s, t), maxRows: ctx.maxRows });
    // Narrowing found nothing: the difference went away meanwhile (a late apply): equal now.
    if (n.rows.length === 0 && !n.truncated) return { range: r, source: a, target: b, verdict: { kind: 'equal', rechecks: ctx.rechecks + 1 } };
    return { range: r, source: a, target: b, verdict: { kind: 'differs', rows: n.rows, truncated: n.truncated } };
  });
}

function rowsSignature(rows: readonly RowDifference[]): string {
  return JSON.stringify(rows.map((r) => [r.key, r.kind]));
}

/**
 * Judges chunks that the re-checks could not settle, all together, inside consistent points: equal there is
 * equal; a difference there is narrowed inside the same snapshots, and called real once a second point shows
 * the same rows (a write from outside the proxy can slip into one point, not into two alike). A chunk no
 * point could judge keeps the verdict it had.
 */
async function settleAtPoints(ctx: CompareContext, c: ConsistentRounds, items: { key: TableKey; range: KeyRange; r: ChunkResult }[]): Promise<ChunkResult[]> {
  const out = items.map((x) => x.r);
  const seen = new Map<number, string>();
  let pending = items.map((_, i) => i);
  for (let round = 1; round <= c.rounds && pending.length > 0; round++) {
    if (round > 1) await new Promise((res) => setTimeout(res, c.delayMs));
    const p = await c.point();
    c.onPoint?.({ ok: p.ok, holdMs: p.ok ? p.pair.holdMs : p.holdMs, chunks: pending.length, ...(p.ok ? {} : { reason: p.reason }) });
    if (!p.ok) continue;
    const { pair } = p;
    const next: number[] = [];
    try {
      for (const i of pending) {
        // The planned range, an open last one included: inside the snapshots nothing grows.
        const { key, range } = items[i]!;
        const [a, b] = [await chunkChecksum(pair.source, key, range), await chunkChecksum(pair.target, key, range)];
        if (sameSum(a, b)) {
          out[i] = { range, source: a, target: b, verdict: { kind: 'equal', rechecks: ctx.rechecks + round, atPoint: true } };
          continue;
        }
        const n = await narrowDifferences(pair.source, pair.target, key, range, { sync: async () => true, maxRows: ctx.maxRows });
        const sig = rowsSignature(n.rows);
        out[i] = { range, source: a, target: b, verdict: { kind: 'differs', rows: n.rows, truncated: n.truncated } };
        if (seen.get(i) !== sig) {
          seen.set(i, sig);
          next.push(i);
        }
      }
    } finally {
      await pair.end();
    }
    pending = next;
  }
  return out;
}

/** Plans chunks on the source, then checks every chunk of every table with bounded concurrency. */
export async function compareTables(ctx: CompareContext, tables: readonly QualifiedName[], onPlanned?: (total: number) => void): Promise<TableComparison[]> {
  const planner = await ctx.source.connect();
  const plans: { key: TableKey; ranges: KeyRange[] }[] = [];
  try {
    for (const table of tables) {
      const key = await tableKey(planner, table);
      plans.push({ key, ranges: await planChunks(planner, key, ctx.chunkRows) });
    }
  } finally {
    planner.release();
  }
  const work = plans.flatMap((p, ti) => p.ranges.map((range) => ({ ti, key: p.key, range })));
  onPlanned?.(work.length);
  const results = await mapLimit(work, ctx.concurrency, async (w) => {
    const label = tableLabel(w.key);
    const r = ctx.store?.lookup(label, w.range) ?? (await checkChunk(ctx, w.key, w.range));
    ctx.store?.record(label, r);
    ctx.onChunk?.(r.source.rows);
    return { ti: w.ti, key: w.key, range: w.range, r };
  });
  const c = ctx.consistent;
  const open = results.filter((x) => x.r.verdict.kind !== 'equal');
  if (c && open.length > 0) {
    const settled = await settleAtPoints(ctx, c, open);
    open.forEach((x, i) => {
      x.r = settled[i]!;
      if (x.r.verdict.kind === 'equal') ctx.store?.record(tableLabel(x.key), x.r);
    });
  }
  return plans.map((p, ti) => {
    const chunks = results.filter((x) => x.ti === ti).map((x) => x.r);
    return {
      table: tableLabel(p.key),
      key: p.key,
      chunks,
      sourceRows: chunks.reduce((n, c) => n + c.source.rows, 0),
      targetRows: chunks.reduce((n, c) => n + c.target.rows, 0),
    };
  });
}
