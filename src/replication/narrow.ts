/**
 * Narrows a chunk whose checksums differ to the rows that differ: bisect the key range by row
 * position (on the side with more rows in it), keep the halves whose checksums still differ, and
 * compare rows one by one once a range is small. Each comparison reads the source, lets the
 * target catch up with it (`sync`), then reads the target, as the first check did.
 */
import type { Db } from './control-conn.js';
import { chunkChecksum, chunkRows, keyAt, sameSum, type ChunkSum } from './checksum.js';
import { describeKey, type KeyRange, type TableKey } from './key-range.js';

/** Rows of a table without a primary key we are willing to fetch to compare one by one. */
const KEYLESS_ROW_LIMIT = 50_000;

export type RowDifferenceKind = 'missing on target' | 'extra on target' | 'differs';

export interface RowDifference {
  /** `id=15`, or the row text for a table without a key. */
  readonly key: string;
  readonly kind: RowDifferenceKind;
  readonly source?: string;
  readonly target?: string;
}

export interface NarrowOptions {
  /** Compare row by row at or below this many rows. Default 32. */
  leafRows?: number;
  /** Stop after this many differing rows. Default 20. */
  maxRows?: number;
  /** Make the target as current as the source was just read (wait for apply); resolves false on timeout. */
  sync: () => Promise<boolean>;
}

export interface Narrowed {
  readonly rows: readonly RowDifference[];
  /** The differing rows were more than maxRows; the list is a sample. */
  readonly truncated: boolean;
}

async function compare(src: Db, tgt: Db, key: TableKey, range: KeyRange, sync: () => Promise<boolean>): Promise<{ s: ChunkSum; t: ChunkSum }> {
  const s = await chunkChecksum(src, key, range);
  await sync();
  const t = await chunkChecksum(tgt, key, range);
  return { s, t };
}

async function leaf(src: Db, tgt: Db, key: TableKey, range: KeyRange, limit: number, sync: () => Promise<boolean>): Promise<RowDifference[]> {
  const a = await chunkRows(src, key, range, limit);
  await sync();
  const b = await chunkRows(tgt, key, range, limit);
  // Keyed by key text plus occurrence, so duplicate rows of a keyless table pair up one to one.
  const ids = (rows: typeof a) => {
    const seen = new Map<string, number>();
    return rows.map((r) => {
      const k = JSON.stringify(r.key);
      const n = seen.get(k) ?? 0;
      seen.set(k, n + 1);
      return [`${k}#${n}`, r] as const;
    });
  };
  const show = (k: readonly string[]) => (key.columns ? describeKey(key, k) : k[0]!);
  const tb = new Map(ids(b));
  const out: RowDifference[] = [];
  for (const [id, r] of ids(a)) {
    const other = tb.get(id);
    if (!other) out.push({ key: show(r.key), kind: 'missing on target', source: r.text });
    else if (other.text !== r.text) out.push({ key: show(r.key), kind: 'differs', source: r.text, target: other.text });
    tb.delete(id);
  }
  for (const r of tb.values()) out.push({ key: show(r.key), kind: 'extra on target', target: r.text });
  return out;
}

export async function narrowDifferences(src: Db, tgt: Db, key: TableKey, range: KeyRange, opts: NarrowOptions): Promise<Narrowed> {
  const leafRows = opts.leafRows ?? 32;
  const maxRows = opts.maxRows ?? 20;
  const found: RowDifference[] = [];
  let truncated = false;
  const visit = async (r: KeyRange, sums: { s: ChunkSum; t: ChunkSum }): Promise<void> => {
    if (found.length >= maxRows) {
      truncated = true;
      return;
    }
    const n = Math.max(sums.s.rows, sums.t.rows);
    if (!key.columns && n > KEYLESS_ROW_LIMIT) {
      truncated = true; // a keyless table cannot be bisected, and fetching it whole is not a check's job
      return;
    }
    const mid = n > leafRows && key.columns ? await keyAt(sums.s.rows >= sums.t.rows ? src : tgt, key, r, Math.floor(n / 2) - 1) : null;
    if (!mid) {
      // Small enough (or cannot split): compare rows. A keyless table is compared whole.
      const rows = await leaf(src, tgt, key, r, Math.max(n, leafRows) + 1, opts.sync);
      for (const d of rows) {
        if (found.length >= maxRows) {
          truncated = true;
          break;
        }
        found.push(d);
      }
      return;
    }
    for (const half of [{ lo: r.lo, hi: mid }, { lo: mid, hi: r.hi }]) {
      const h = await compare(src, tgt, key, half, opts.sync);
      if (!sameSum(h.s, h.t)) await visit(half, h);
    }
  };
  const top = await compare(src, tgt, key, range, opts.sync);
  if (!sameSum(top.s, top.t)) await visit(range, top);
  return { rows: found, truncated };
}
