/**
 * The catch-up a backend needs before a unit can run there: the session's SQL state replayed (SETs and
 * PREPAREs it has not seen), and the named statements the unit uses re-Parsed from the client's original
 * bytes (a stale copy closed first). Pure: it returns the bytes and the state the link reaches once they
 * ran; BackendLink.inject sends them and records that state.
 */
import { Frontend, TargetKind } from '../protocol/codes.js';
import type { Frame } from '../protocol/framer.js';
import { closeStatementFrame, queryFrame, SYNC_FRAME } from '../protocol/frontend-encode.js';
import type { BackendLink, CatchUp } from './backend-link.js';
import type { SessionRouting } from './router-glue.js';

export function buildCatchUp(s: SessionRouting, link: BackendLink, unit: readonly Frame[], setsReadOnlyOff: (sql: string) => boolean): CatchUp | null {
  const parts: Buffer[] = [];
  let replies = 0;
  const session = link.sessionPlan(s.log);
  for (const [, sql] of session?.statements ?? []) {
    // A link opened read-only stays so: a session SET that turns read-only off ran on the writer only.
    if (link.readOnly && setsReadOnlyOff(sql)) continue;
    parts.push(queryFrame(sql));
    replies++;
  }
  /**
   * The link's named statements as the catch-up leaves them (name → text, null: closed). Made on first use:
   * a unit that names no statement (every simple Query) allocates nothing here (the split path runs this per unit).
   */
  let after: Map<string, string | null> | null = null;
  const has = (name: string): string | undefined => (after?.has(name) ? (after.get(name) ?? undefined) : link.prepared.get(name));
  /** Statements the unit parses itself: later frames of it use that one, never a catch-up copy (42P05). */
  let own: Set<string> | null = null;
  for (const f of unit) {
    if (f.type !== Frontend.Parse && f.type !== Frontend.Bind && f.type !== Frontend.Describe) continue;
    const name = statementUsed(f);
    if (name === null || own?.has(name)) continue;
    const st = s.named.get(name);
    const have = has(name);
    if (f.type === Frontend.Parse) {
      (own ??= new Set()).add(name);
      // The client (re)defines it here: drop a stale copy this backend still holds.
      if (have !== undefined) {
        parts.push(closeStatementFrame(name));
        (after ??= new Map()).set(name, null);
      }
      continue;
    }
    if (st === undefined || have === st.text) continue;
    if (have !== undefined) parts.push(closeStatementFrame(name));
    parts.push(st.parse);
    (after ??= new Map()).set(name, st.text);
  }
  if (after !== null && after.size > 0) {
    parts.push(SYNC_FRAME);
    replies++;
  }
  if (parts.length === 0 && session === null) return null;
  return { bytes: parts.length === 1 ? parts[0] : Buffer.concat(parts), replies, session, prepared: after === null ? [] : [...after] };
}

/** The named statements `unit` parses: when it failed on a link and runs elsewhere, they do not exist there. */
export function parsedBy(unit: readonly Frame[]): string[] {
  const out: string[] = [];
  for (const f of unit) {
    if (f.type !== Frontend.Parse) continue;
    const name = statementUsed(f);
    if (name !== null) out.push(name);
  }
  return out;
}

/** Named statement a frame refers to (Parse defines it; Bind and Describe 'S' use it). */
export function statementUsed(f: Frame): string | null {
    const at = f.start + 5;
    switch (f.type) {
      case Frontend.Parse: {
        const z = f.buf.indexOf(0, at);
        return z > at && z < f.end ? f.buf.toString('utf8', at, z) : null;
      }
      case Frontend.Bind: {
        const z = f.buf.indexOf(0, at);
        const z2 = z < 0 ? -1 : f.buf.indexOf(0, z + 1);
        return z2 > z + 1 && z2 < f.end ? f.buf.toString('utf8', z + 1, z2) : null;
      }
      case Frontend.Describe: {
        if (f.buf[at] !== TargetKind.Statement) return null;
        const z = f.buf.indexOf(0, at + 1);
        return z > at + 1 && z < f.end ? f.buf.toString('utf8', at + 1, z) : null;
      }
      default:
        return null;
    }
  }
