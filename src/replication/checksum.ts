/**
 * Chunked table checksums (DESIGN.md gate 2): the source's primary key is cut into ranges of about
 * `chunkRows` rows by keyset pagination (index-only, no full sort), and each range is summarised
 * on either side as `count(*)` and `md5(string_agg(row::text, '' ORDER BY key))`. The same query
 * text runs on both sides, in sessions with pinned output settings (TimeZone, DateStyle, ...), so
 * equal rows give equal text on PostgreSQL 14 and 15.
 */
import type { Db } from './control-conn.js';
import { fromClause, keyOfRow, keySelect, orderBy, rangePredicate, ROW, type KeyRange, type TableKey } from './key-range.js';
import { quoteIdent, type QualifiedName } from './sql.js';

/** Session settings that decide how values print as text; pinned for checksum sessions. */
export const CHECKSUM_SESSION_SETTINGS: Readonly<Record<string, string>> = {
  TimeZone: 'UTC',
  DateStyle: 'ISO, MDY',
  IntervalStyle: 'postgres',
  extra_float_digits: '1',
  bytea_output: 'hex',
  lc_monetary: 'C',
  statement_timeout: '0',
};

/**
 * The primary key of `table` (columns in index order), else its replica identity index (REPLICA IDENTITY
 * USING INDEX: unique, not null), or null when it has neither.
 */
export async function tableKey(db: Db, table: QualifiedName): Promise<TableKey> {
  const r = await db.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_index i
       JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos) ON true
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)
        AND i.indexrelid = (SELECT x.indexrelid FROM pg_index x WHERE x.indrelid = i.indrelid AND (x.indisprimary OR x.indisreplident)
                             ORDER BY x.indisprimary DESC LIMIT 1)
      ORDER BY k.pos`,
    [table.schema, table.name],
  );
  return { table, columns: r.rows.length ? r.rows : null };
}

/**
 * Ranges of about `chunkRows` rows covering the whole key space: (-∞, k1], (k1, k2], ..., (kn, +∞).
 * The last range is open, so rows only the target has (beyond the source's last key) are covered.
 */
export async function planChunks(db: Db, key: TableKey, chunkRows: number): Promise<KeyRange[]> {
  if (!key.columns) return [{ lo: null, hi: null }];
  const out: KeyRange[] = [];
  let lo: readonly string[] | null = null;
  for (;;) {
    const pred = rangePredicate(key, { lo, hi: null }, 2);
    const r: { rows: Record<string, unknown>[] } = await db.query(
      `SELECT ${keySelect(key)} FROM ${fromClause(key)} WHERE ${pred.sql} ORDER BY ${orderBy(key)} OFFSET $1 LIMIT 1`,
      [chunkRows - 1, ...pred.params],
    );
    const row = r.rows[0];
    if (!row) {
      out.push({ lo, hi: null });
      return out;
    }
    const hi = keyOfRow(key, row);
    out.push({ lo, hi });
    lo = hi;
  }
}

export interface ChunkSum {
  readonly rows: number;
  /** md5 of the rows' text in key order; null for an empty range. */
  readonly md5: string | null;
}

export function sameSum(a: ChunkSum, b: ChunkSum): boolean {
  return a.rows === b.rows && a.md5 === b.md5;
}

export async function chunkChecksum(db: Db, key: TableKey, range: KeyRange): Promise<ChunkSum> {
  const pred = rangePredicate(key, range);
  const r = await db.query<{ n: string; h: string | null }>(
    `SELECT count(*) AS n, md5(string_agg(${ROW}::text, '' ORDER BY ${orderBy(key)})) AS h FROM ${fromClause(key)} WHERE ${pred.sql}`,
    pred.params,
  );
  return { rows: Number(r.rows[0]!.n), md5: r.rows[0]!.h };
}

/** Rows in a range, key and whole-row text, in key order (for narrowing to the differing rows). */
export async function chunkRows(db: Db, key: TableKey, range: KeyRange, limit: number): Promise<{ key: readonly string[]; text: string }[]> {
  const pred = rangePredicate(key, range, 2);
  const ks = keySelect(key);
  const r: { rows: Record<string, unknown>[] } = await db.query(
    `SELECT ${ks ? `${ks}, ` : ''}${ROW}::text AS _row FROM ${fromClause(key)} WHERE ${pred.sql} ORDER BY ${orderBy(key)} LIMIT $1`,
    [limit, ...pred.params],
  );
  return r.rows.map((row) => ({ key: key.columns ? keyOfRow(key, row) : [String(row._row)], text: String(row._row) }));
}

/** The key at 0-based position `offset` within a range (for bisecting it); null past the end. */
export async function keyAt(db: Db, key: TableKey, range: KeyRange, offset: number): Promise<readonly string[] | null> {
  if (!key.columns) return null;
  const pred = rangePredicate(key, range, 2);
  const r: { rows: Record<string, unknown>[] } = await db.query(
    `SELECT ${keySelect(key)} FROM ${fromClause(key)} WHERE ${pred.sql} ORDER BY ${orderBy(key)} OFFSET $1 LIMIT 1`,
    [offset, ...pred.params],
  );
  return r.rows[0] ? keyOfRow(key, r.rows[0]) : null;
}

/** The largest key in a range (null when empty). */
export async function maxKeyIn(db: Db, key: TableKey, range: KeyRange): Promise<readonly string[] | null> {
  if (!key.columns) return null;
  const pred = rangePredicate(key, range);
  const desc = key.columns.map((c) => `${ROW}.${quoteIdent(c.name)} DESC`).join(', ');
  const r: { rows: Record<string, unknown>[] } = await db.query(
    `SELECT ${keySelect(key)} FROM ${fromClause(key)} WHERE ${pred.sql} ORDER BY ${desc} LIMIT 1`,
    pred.params,
  );
  return r.rows[0] ? keyOfRow(key, r.rows[0]) : null;
}

/** Keys in a range, in key order, at most `limit`. */
export async function keysIn(db: Db, key: TableKey, range: KeyRange, limit: number): Promise<(readonly string[])[]> {
  if (!key.columns) return [];
  const pred = rangePredicate(key, range, 2);
  const r: { rows: Record<string, unknown>[] } = await db.query(
    `SELECT ${keySelect(key)} FROM ${fromClause(key)} WHERE ${pred.sql} ORDER BY ${orderBy(key)} LIMIT $1`,
    [limit, ...pred.params],
  );
  return r.rows.map((row) => keyOfRow(key, row));
}

/** Which of `keys` exist (as JSON of the key text tuple). */
export async function presentKeys(db: Db, key: TableKey, keys: readonly (readonly string[])[]): Promise<Set<string>> {
  const cols = key.columns;
  if (!cols || keys.length === 0) return new Set();
  const arrays = cols.map((_, i) => keys.map((k) => k[i]!));
  const unnest = cols.map((c, i) => `$${i + 1}::text[]`).join(', ');
  const join = cols.map((c, i) => `${ROW}.${quoteIdent(c.name)} = w.k${i}::${c.type}`).join(' AND ');
  const r: { rows: Record<string, unknown>[] } = await db.query(
    `SELECT ${keySelect(key)} FROM unnest(${unnest}) AS w(${cols.map((_, i) => `k${i}`).join(', ')}) JOIN ${fromClause(key)} ON ${join}`,
    arrays,
  );
  return new Set(r.rows.map((row) => JSON.stringify(keyOfRow(key, row))));
}
