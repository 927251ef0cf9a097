/**
 * The statements of a multi-statement simple Query, cut where PostgreSQL's parser says they are
 * (RawStmt stmt_location / stmt_len, byte offsets into the text; a zero length runs to the end).
 * Session replay keeps only the SET / PREPARE … of such a string (issue 14: `set application_name='x';
 * insert …` replayed whole wrote the row again on the other backend and after every reconnect).
 */
import { parseSync } from 'libpg-query';

/** True when `sql` has a `;` followed by more than whitespace, i.e. it may hold several statements. */
export function mayBeMulti(sql: string): boolean {
  const i = sql.indexOf(';');
  return i >= 0 && /\S/.test(sql.slice(i + 1).replace(/;/g, ''));
}

/** Each statement's text, trimmed; `[sql]` for a single statement; `[]` when the text does not parse. */
export function splitStatements(sql: string): string[] {
  if (!mayBeMulti(sql)) return [sql];
  let stmts: { stmt_location?: number; stmt_len?: number }[];
  try {
    stmts = (parseSync(sql) as { stmts?: { stmt_location?: number; stmt_len?: number }[] }).stmts ?? [];
  } catch {
    return []; // PostgreSQL runs none of a string that does not parse
  }
  const bytes = Buffer.from(sql, 'utf8');
  const out: string[] = [];
  for (const s of stmts) {
    const from = s.stmt_location ?? 0;
    const to = s.stmt_len ? from + s.stmt_len : bytes.length;
    const text = bytes.toString('utf8', from, to).trim();
    if (text.length > 0) out.push(text);
  }
  return out;
}
