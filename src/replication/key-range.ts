/**
 * Primary-key ranges for chunked checksums: a chunk is the rows whose key lies in (lo, hi], with
 * keys compared as row values in the primary key's index order, so a composite key works like a
 * single one and every chunk query is an index range scan. Pure: SQL text and descriptions.
 */
import { displayName, qualified, quoteIdent, type QualifiedName } from './sql.js';

export interface KeyColumn {
  readonly name: string;
  /** format_type() of the column, used to cast the text bounds back (e.g. `numeric(12,2)`). */
  readonly type: string;
}

export interface TableKey {
  readonly table: QualifiedName;
  /** Primary key columns in index order; null when the table has none (checksummed whole, sorted by row text). */
  readonly columns: readonly KeyColumn[] | null;
}

/** Key values as text (`col::text`), one per key column. */
export type KeyValue = readonly string[];

/** Rows with lo < key <= hi; a null bound is open. */
export interface KeyRange {
  readonly lo: KeyValue | null;
  readonly hi: KeyValue | null;
}

export const WHOLE: KeyRange = { lo: null, hi: null };

/** Alias of the table in our queries; chosen so it cannot shadow a real column name in practice. */
export const ROW = '_pgc_row';

function keyTuple(cols: readonly KeyColumn[]): string {
  const names = cols.map((c) => `${ROW}.${quoteIdent(c.name)}`);
  return names.length === 1 ? names[0]! : `(${names.join(', ')})`;
}

function paramTuple(cols: readonly KeyColumn[], first: number): string {
  const ps = cols.map((c, i) => `$${first + i}::${c.type}`);
  return ps.length === 1 ? ps[0]! : `(${ps.join(', ')})`;
}

/** `WHERE` condition and its parameters for a range, numbering parameters from `first`. */
export function rangePredicate(key: TableKey, range: KeyRange, first = 1): { sql: string; params: string[] } {
  const cols = key.columns;
  if (!cols || (range.lo === null && range.hi === null)) return { sql: 'true', params: [] };
  const parts: string[] = [];
  const params: string[] = [];
  if (range.lo) {
    parts.push(`${keyTuple(cols)} > ${paramTuple(cols, first + params.length)}`);
    params.push(...range.lo);
  }
  if (range.hi) {
    parts.push(`${keyTuple(cols)} <= ${paramTuple(cols, first + params.length)}`);
    params.push(...range.hi);
  }
  return { sql: parts.join(' AND '), params };
}

/** ORDER BY list: the key, or for a keyless table the whole row's text. */
export function orderBy(key: TableKey): string {
  return key.columns ? key.columns.map((c) => `${ROW}.${quoteIdent(c.name)}`).join(', ') : `${ROW}::text`;
}

/** Key columns selected as text, aliased k0, k1, ... */
export function keySelect(key: TableKey): string {
  return (key.columns ?? []).map((c, i) => `${ROW}.${quoteIdent(c.name)}::text AS k${i}`).join(', ');
}

export function keyOfRow(key: TableKey, row: Record<string, unknown>): KeyValue {
  return (key.columns ?? []).map((_, i) => String(row[`k${i}`]));
}

/** `FROM schema.table AS _pgc_row` */
export function fromClause(key: TableKey): string {
  return `${qualified(key.table)} AS ${ROW}`;
}

function showKey(v: KeyValue): string {
  return v.length === 1 ? v[0]! : `(${v.join(', ')})`;
}

/** `id in (1000, 2000]`, `(a, b) in ((1, x), +∞)`, or `whole table`. */
export function describeRange(key: TableKey, range: KeyRange): string {
  if (!key.columns || (range.lo === null && range.hi === null)) return 'whole table';
  const cols = key.columns.map((c) => c.name);
  const name = cols.length === 1 ? cols[0]! : `(${cols.join(', ')})`;
  return `${name} in (${range.lo ? showKey(range.lo) : '-∞'}, ${range.hi ? `${showKey(range.hi)}]` : '+∞)'}`;
}

/** `id=15` or `(a, b)=(1, x)` */
export function describeKey(key: TableKey, v: KeyValue): string {
  const cols = (key.columns ?? []).map((c) => c.name);
  return cols.length === 1 ? `${cols[0]}=${v[0]}` : `(${cols.join(', ')})=(${v.join(', ')})`;
}

export function tableLabel(key: TableKey): string {
  return displayName(key.table);
}
