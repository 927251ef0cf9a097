/**
 * PostgreSQL write-ahead log positions (pg_lsn, printed `X/Y`: high and low 32 bits in hex,
 * https://www.postgresql.org/docs/15/datatype-pg-lsn.html). Pure: parse, compare, subtract.
 */

/** Parses `16/B374D848` into a byte position; throws on anything else (a bug, not input). */
export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`not a pg_lsn: ${JSON.stringify(text)}`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(pos: bigint): string {
  return `${(pos >> 32n).toString(16).toUpperCase()}/${(pos & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** `a - b` in bytes, never negative (b ahead of a counts as 0); null when either is unknown. */
export function lsnDistance(a: string | null | undefined, b: string | null | undefined): number | null {
  if (!a || !b) return null;
  const d = parseLsn(a) - parseLsn(b);
  return d > 0n ? Number(d) : 0;
}

/** True when `a` is at or past `b`. A null `a` (nothing applied yet) is never past anything. */
export function lsnAtLeast(a: string | null | undefined, b: string): boolean {
  return !!a && parseLsn(a) >= parseLsn(b);
}

/** The later of two positions, ignoring nulls. */
export function maxLsn(...xs: (string | null | undefined)[]): string | null {
  let best: string | null = null;
  for (const x of xs) if (x && (best === null || parseLsn(x) > parseLsn(best))) best = x;
  return best;
}
