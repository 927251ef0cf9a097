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

  /**
   * Records `sql` under `key`, the session state it sets (the classifier's Classification.sessionKey: `set:x`,
   * `set:*`, `prep:p`, `prep:*`, `*`); returns false, recording nothing, when there is no key.
   */
  record(sql: string, key: string | undefined): boolean {
    const k = key;
    if (k === undefined) return false;
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

/** What a backend lacks of the session's log: the statements to run there, and the state it reaches after. */
export interface SessionCatchUp {
  /** [key, statement] in log order, each to run on the backend. */
  readonly statements: readonly (readonly [string, string])[];
  /** The log version the backend is at once they ran. */
  readonly version: number;
}

/**
 * Per backend: which version of the log it has seen, and the statement text applied for each key. Owned by
 * the BackendLink; `plan` is pure, `apply` and `ranHere` are the only writers.
 */
export class AppliedState {
  private v = 0;
  private readonly applied = new Map<string, string>();

  get version(): number {
    return this.v;
  }

  /** Statements to run on this backend to catch up with `log` (mutates nothing); null when it is up to date. */
  plan(log: SessionStateLog): SessionCatchUp | null {
    if (this.v === log.version) return null;
    const statements: [string, string][] = [];
    for (const [k, sql] of log.entries) if (this.applied.get(k) !== sql) statements.push([k, sql]);
    return { statements, version: log.version };
  }

  /** A planned catch-up was sent to this backend. */
  apply(c: SessionCatchUp): void {
    for (const [k, sql] of c.statements) this.applied.set(k, sql);
    this.v = c.version;
  }

  /** The last `added` statements of the log ran here directly (the client sent them to this backend). */
  ranHere(log: SessionStateLog, added = 1): void {
    if (this.v >= log.version - added && this.v <= log.version) {
      for (const [k, sql] of log.entries) this.applied.set(k, sql);
      this.v = log.version;
    }
  }
}
