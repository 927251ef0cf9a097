/** Gate 2's per-table exceptions: a table excluded, or its differences accepted, always with a reason. Pure. */

export interface TableNote {
  readonly table: string;
  readonly reason: string;
}

/** Parses `schema.table:reason` (or `table:reason`); a missing reason is an error (every exception is explained). */
export function parseTableNote(text: string): TableNote | { error: string } {
  const i = text.indexOf(':');
  const table = (i < 0 ? text : text.slice(0, i)).trim();
  const reason = i < 0 ? '' : text.slice(i + 1).trim();
  if (!table) return { error: `"${text}": expected table:reason` };
  if (!reason) return { error: `"${text}": a reason is required (table:reason)` };
  return { table, reason };
}

/** `a:why; b:why` as given to --gate2-exclude / --gate2-accept / --exclude. */
export function parseTableNotes(text: string | undefined): { notes: TableNote[]; errors: string[] } {
  const notes: TableNote[] = [];
  const errors: string[] = [];
  for (const part of (text ?? '').split(';').map((x) => x.trim()).filter(Boolean)) {
    const n = parseTableNote(part);
    if ('error' in n) errors.push(n.error);
    else notes.push(n);
  }
  return { notes, errors };
}
