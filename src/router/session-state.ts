/**
 * Session state a client built with SQL (SET, RESET, PREPARE, DEALLOCATE, DISCARD) that must also hold on
 * the other backend before a statement runs there. Kept as an ordered map of effective statements keyed by
 * what they set, so a session that SETs the same parameter per request keeps one entry, not thousands.
 * SET LOCAL / SET TRANSACTION / SET CONSTRAINTS are transaction-scoped and not kept.
 */
export class SessionStateLog {
  /** key → statement that establishes it (in order of first appearance). */
  readonly entries = new Map<string, string>();
  version = 0;

  /** Records `sql` if it changes session state; returns true when it did. */
  record(sql: string): boolean {
    const k = sessionKey(sql);
    if (k === null) return false;
    if (k === '*') {
      this.entries.clear();
      this.entries.set('*', sql.trim());
    } else if (k.endsWith(':*')) {
      const prefix = k.slice(0, -1);
      for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
      this.entries.set(k, sql.trim());
    } else {
      this.entries.delete(k);
      this.entries.set(k, sql.trim());
    }
    this.version++;
    return true;
  }
}

/** Per backend: which version of the log it has seen, and the statement text applied for each key. */
export class AppliedState {
  version = 0;
  readonly applied = new Map<string, string>();

  /** Statements to run on this backend to catch up with `log`, and marks them applied. */
  catchUp(log: SessionStateLog): string[] {
    if (this.version === log.version) return [];
    const out: string[] = [];
    for (const [k, sql] of log.entries) {
      if (this.applied.get(k) === sql) continue;
      this.applied.set(k, sql);
      out.push(sql);
    }
    this.version = log.version;
    return out;
  }

  /** The last `added` statements of the log ran here directly (the client sent them to this backend). */
  ranHere(log: SessionStateLog, added = 1): void {
    if (this.version >= log.version - added && this.version <= log.version) {
      for (const [k, sql] of log.entries) this.applied.set(k, sql);
      this.version = log.version;
    }
  }
}

const SET_RE = /^\s*SET\s+(?:SESSION\s+(?!AUTHORIZATION\b|CHARACTERISTICS\b))?("[^"]+"|[A-Za-z_][\w.]*(?:\s+AUTHORIZATION)?)/i;
const RESET_RE = /^\s*RESET\s+("[^"]+"|[A-Za-z_][\w.]*(?:\s+AUTHORIZATION)?)/i;
const PREPARE_RE = /^\s*PREPARE\s+("[^"]+"|[A-Za-z_]\w*)/i;
const DEALLOCATE_RE = /^\s*DEALLOCATE\s+(?:PREPARE\s+)?("[^"]+"|[A-Za-z_]\w*)/i;
const TX_SCOPED = new Set(['local', 'transaction', 'constraints']);

/** The state key a statement sets, '*' for DISCARD ALL, 'set:*' / 'prep:*' for RESET ALL / DEALLOCATE ALL. */
export function sessionKey(sql: string): string | null {
  const norm = (s: string) => (s.startsWith('"') ? s.slice(1, -1) : s.toLowerCase().replace(/\s+/g, ' '));
  let m = SET_RE.exec(sql);
  if (m) {
    const name = norm(m[1]);
    if (TX_SCOPED.has(name)) return null;
    return 'set:' + name;
  }
  m = RESET_RE.exec(sql);
  if (m) {
    const name = norm(m[1]);
    return name === 'all' ? 'set:*' : 'set:' + name;
  }
  m = PREPARE_RE.exec(sql);
  if (m && !/^\s*PREPARE\s+TRANSACTION\b/i.test(sql)) return 'prep:' + norm(m[1]);
  m = DEALLOCATE_RE.exec(sql);
  if (m) {
    const name = norm(m[1]);
    return name === 'all' ? 'prep:*' : 'prep:' + name;
  }
  if (/^\s*DISCARD\s+ALL\b/i.test(sql)) return '*';
  return null;
}
