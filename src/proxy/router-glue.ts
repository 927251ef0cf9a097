/**
 * Binds the pure router (src/router/route.ts) to a client session's frames and backend links: extracts what
 * routing needs from Query/Parse/Bind/Describe/Close frames, remembers named prepared statements and SQL
 * session state per session, and builds the catch-up bytes a backend needs before a unit can run there
 * (session SETs replayed, named statements re-Parsed from their original bytes).
 */
import { Frontend, TargetKind } from '../protocol/codes.js';
import { parseHead, queryText } from '../protocol/frontend-decode.js';
import type { Classifier, Classification } from '../router/classify.js';
import { routeUnit, sessionPoint, summarize, uniformRole, type RoutePolicy } from '../router/route.js';
import type { Role } from '../domain/role.js';
import { SessionStateLog } from '../router/session-state.js';
import { newSessionFreshness, readerFresh, type FreshnessBook, type SessionFreshness } from '../router/freshness.js';
import { splitStatements } from '../router/split.js';
import { mayHaveFacts } from '../router/fact-gate.js';
import type { BackendLink, CatchUp, LinkNote } from './backend-link.js';
import { buildCatchUp, parsedBy, statementUsed } from './catch-up.js';
import type { Frame } from '../protocol/framer.js';

export type { Frame };

/** A named prepared statement of the session: its text, the client's Parse frame, its classification once known. */
export interface NamedStatement {
  text: string;
  parse: Buffer;
  /** Classified at its first Bind, then reused by every Bind of it (the text never changes under one entry). */
  c?: Classification;
}

/** What the proxy knows of one client frame's SQL: its text (null: it runs none) and classification. */
export interface FrameFact {
  text: string | null;
  c: Classification | null;
}

/** What the router remembers of one client session. */
export interface SessionRouting {
  readonly point: number;
  pinnedTo: Role | null;
  /** Read-your-writes: the sample covering the session's last commit, until the reader has applied it. */
  readonly fresh: SessionFreshness;
  /** The unit in flight is a write (for read-your-writes). */
  unitWrite: boolean;
  /** The unit in flight on the writer may change data: its commit starts a read-your-writes wait. */
  unitData: boolean;
  /**
   * The unit in flight was a read cut by a Flush (or the size cap) and sent to the writer for safety: what
   * the client sends next in it decides whether it changed data (router.continued), not the cut alone.
   */
  unitCut: boolean;
  readonly log: SessionStateLog;
  /** Named prepared statements: name → text and the client's original Parse frame. */
  readonly named: Map<string, NamedStatement>;
  /** Bytes `named` holds (Parse frames and their text), bounded by the session's --max-prepared-bytes. */
  namedBytes: number;
}

export interface RouterOptions {
  policy(): RoutePolicy;
  classifier: Classifier;
  /**
   * Read-your-writes by LSN and the staleness bound (./../router/freshness.ts); null turns both off: reads
   * split without regard to the session's own writes.
   */
  freshness: { book: FreshnessBook; maxStalenessMs: number } | null;
  /** A read was kept on the writer for freshness. */
  onRedirected?(): void;
  split: 'random' | 'session-hash';
  /** After a target failure, reads skip the target for this long. Default 2000 ms. */
  targetBackoffMs?: number;
  /** A read meant for the target went to the source because the target is backed off. */
  onDiverted?(): void;
  now?: () => number;
  rand?: () => number;
}

const yes = (): boolean => true;

export class Router {
  private targetDownUntil = 0;
  private readonly now: () => number;
  private readonly rand: () => number;

  constructor(private readonly o: RouterOptions) {
    this.now = o.now ?? Date.now;
    this.rand = o.rand ?? Math.random;
  }

  policy(): RoutePolicy {
    return this.o.policy();
  }

  newSession(key: string): SessionRouting {
    return { point: sessionPoint(key), pinnedTo: null, fresh: newSessionFreshness(), unitWrite: false, unitData: false, unitCut: false, log: new SessionStateLog(), named: new Map(), namedBytes: 0 };
  }

  /** The one backend every statement goes to in this state, or null when statements must be classified. */
  uniform(s: SessionRouting): Role | null {
    // A session pinned to a fenced source is classified, so it cannot switch read-only off there.
    if (s.pinnedTo !== null) return s.pinnedTo === 'source' && this.o.policy().sourceFenced ? null : s.pinnedTo;
    return uniformRole(this.o.policy());
  }

  /**
   * Fencing (DESIGN.md): a unit that tries to turn read-only off (SET default_transaction_read_only = off,
   * SET transaction_read_only = off, BEGIN READ WRITE …) on a fenced backend is refused with 25006.
   */
  refusal(s: SessionRouting, unit: readonly Frame[], role: Role): string | null {
    const p = this.o.policy();
    if (role !== 'source' || !p.sourceFenced) return null;
    if (this.turnsReadOnlyOff(s, unit)) return 'cannot turn read-only mode off: the source is fenced during the cutover (pg-cutover)';
    return null;
  }

  /** Some statement of the unit may turn read-only off (SET TRANSACTION READ WRITE, set_config, …). */
  turnsReadOnlyOff(s: SessionRouting, unit: readonly Frame[]): boolean {
    for (const f of unit) if (this.factOf(s, f).c?.setsReadOnlyOff === true) return true;
    return false;
  }

  /** The link can take the session's statements as they are: no catch-up needed. */
  ready(s: SessionRouting, link: BackendLink): boolean {
    if (link.sessionVersion !== s.log.version) return false;
    if (link.prepared.size < s.named.size) return false;
    for (const [name, st] of s.named) if (link.prepared.get(name) !== st.text) return false;
    return true;
  }

  unitStart(s: SessionRouting, link: BackendLink, write: boolean): void {
    s.unitWrite = write || link.role === this.o.policy().writesTo;
    // Not classified, so not known to write: covered by the flip guard in route() instead (armed here too: the
    // last routed unit may date from a splitting state, READS → SOURCE_PRIMARY → READS).
    this.wasUniform = true;
    s.unitData = false;
    s.unitCut = false;
  }

  /**
   * Writes forwarded unclassified (the fast path, in a state where everything goes to the writer) start no
   * session wait. Instead, when the state starts splitting reads, every read to the other side waits once
   * until it has applied the writer position sampled after the change; where the reader's position is not
   * visible at all (no replication connection on the writer) there is nothing to wait for.
   */
  readonly flip: SessionFreshness = newSessionFreshness(); // read by the target readers' choice too
  private wasUniform: boolean | null = null;

  private freshFor(s: SessionRouting, writer: Role, now: number): boolean {
    const f = this.o.freshness!;
    if (!readerFresh(s.fresh, f.book, writer, now, f.maxStalenessMs)) return false;
    return this.flip.need === 0 || f.book.last?.readerLsn === null || readerFresh(this.flip, f.book, writer, now, 0);
  }

  /** Decides a unit's backend. */
  route(s: SessionRouting, unit: readonly Frame[]): Role {
    const policy = this.o.policy();
    const uniform = uniformRole(policy) !== null;
    // A sidecar that starts in a splitting state has forwarded nothing unclassified: no flip to guard.
    if (this.wasUniform === true && !uniform) this.o.freshness?.book.commitSeen(this.flip);
    this.wasUniform = uniform;
    const cs: Classification[] = [];
    for (const f of unit) {
      const c = this.factOf(s, f).c;
      if (c !== null) cs.push(c);
    }
    let sum = cs.length === 0 ? { write: true, pins: false } : summarize(cs);
    // A unit cut before its Sync (by a Flush the client waits on, or the size cap) may go on with anything:
    // only a whole unit can be known to be a read, so a cut one goes to the writer (issue 14: a read ended
    // by Flush, then an INSERT and Sync, wrote on the replica target).
    const last = unit[unit.length - 1].type;
    const cutRead = !sum.write && last !== Frontend.Query && last !== Frontend.Sync;
    if (cutRead) sum = { write: true, pins: sum.pins };
    const f = this.o.freshness;
    let role = routeUnit(
      sum,
      policy,
      {
        pinnedTo: s.pinnedTo,
        fresh: f === null ? yes : (now) => this.freshFor(s, policy.writesTo, now),
        redirected: this.o.onRedirected,
        split: this.o.split,
        sessionPoint: s.point,
      },
      this.now(),
      this.rand(),
    );
    if (role === 'target' && role !== policy.writesTo && this.now() < this.targetDownUntil) {
      role = 'source';
      this.o.onDiverted?.();
    }
    if (sum.pins && s.pinnedTo === null) s.pinnedTo = role;
    s.unitWrite = role === policy.writesTo && sum.write;
    // A cut read changed no data (yet): its end starts no read-your-writes wait unless what followed did
    // (a cursor read page by page would otherwise keep the session's reads on the writer).
    s.unitData = s.unitWrite && sum.sessionOnly !== true && !cutRead;
    s.unitCut = s.unitWrite && cutRead;
    return role;
  }

  /**
   * A frame of a cut unit (see unitCut) on its way to the writer: a statement that is not a plain read makes
   * the unit one that changed data. Called only while unitCut is set.
   */
  continued(s: SessionRouting, f: Frame): void {
    if (s.unitData) return;
    switch (f.type) {
      case Frontend.Query:
      case Frontend.Parse:
      case Frontend.FunctionCall:
      case Frontend.Bind: {
        const c = this.factOf(s, f).c;
        // A Bind of the unnamed statement runs what the last Parse defined, judged there; any other frame
        // whose statement is unknown counts as a write.
        if (c === null) {
          if (f.type !== Frontend.Bind || (statementUsed(f) ?? '') !== '') s.unitData = true;
        } else if (c.cls !== 'read' && c.cls !== 'session') s.unitData = true;
        return;
      }
      default:
        return;
    }
  }

  /**
   * The frame's SQL and its classification, decoded and classified once per frame (kept on the frame): routing,
   * the fencing refusal, the pin watch and the session-state bookkeeping all read these same facts.
   */
  factOf(s: SessionRouting, f: Frame): FrameFact {
    const ff = f as Frame & { fact?: FrameFact };
    if (ff.fact !== undefined) return ff.fact;
    if (f.type === Frontend.Bind) {
      // A prepared statement runs many times: classified once per statement, not per execution.
      const st = s.named.get(statementUsed(f) ?? '');
      if (st === undefined) return (ff.fact = { text: null, c: null });
      st.c ??= this.o.classifier.classify(st.text);
      return (ff.fact = { text: st.text, c: st.c });
    }
    const text = this.textOf(s, f);
    return (ff.fact = { text, c: text === null ? null : this.o.classifier.classify(text) });
  }

  /** The frame's facts are known (it was routed): no gate before using them. */
  private classified(f: Frame): boolean {
    return (f as Frame & { fact?: FrameFact }).fact !== undefined;
  }

  /** The SQL text a frame runs, when it runs one: Query, Parse, or Bind/Describe of a named statement. */
  private textOf(s: SessionRouting, f: Frame): string | null {
    const body = f.buf.subarray(f.start + 5, f.end);
    switch (f.type) {
      case Frontend.Query:
        return queryText(body);
      case Frontend.Parse:
        return parseHead(body)?.text ?? null;
      case Frontend.Bind: {
        const z = body.indexOf(0);
        const z2 = z < 0 ? -1 : body.indexOf(0, z + 1);
        if (z2 <= z + 1) return null;
        return s.named.get(body.toString('utf8', z + 1, z2))?.text ?? null;
      }
      case Frontend.FunctionCall:
        return 'SELECT pg_catalog.pg_current_xact_id()'; // a fastpath call can do anything: route as a write
      default:
        return null;
    }
  }

  /**
   * Bytes to send before `unit` so `link` has the session's state and the named statements the unit uses,
   * with what the link will have once they ran (for BackendLink.inject). Mutates nothing.
   */
  catchUp(s: SessionRouting, link: BackendLink, unit: readonly Frame[]): CatchUp | null {
    return buildCatchUp(s, link, unit, this.setsReadOnlyOff);
  }

  private readonly setsReadOnlyOff = (sql: string): boolean => this.o.classifier.classify(sql).setsReadOnlyOff === true;

  /** The named statements `unit` parses: when it failed on a link and runs elsewhere, they do not exist there. */
  parsedBy(unit: readonly Frame[]): string[] {
    return parsedBy(unit);
  }

  /**
   * Bookkeeping for a client frame about to go to a backend: the session's SQL state log and named
   * statements; returns what the frame does to that backend's session, for the link to record.
   */
  sent(s: SessionRouting, f: Frame): LinkNote | null {
    const { type, buf, start, end } = f;
    const at = start + 5;
    if (type === Frontend.Query) {
      if (!this.classified(f) && !mayHaveFacts(buf, at, end)) return null;
      const { text, c } = this.factOf(s, f);
      if (text === null || c?.changesSession !== true) return null;
      if (!c.multi) return s.log.record(text, c.sessionKey) ? { ran: { log: s.log, added: 1 } } : null;
      // Only the session statements of a multi-statement string are kept, never the rest (issue 14 item 4).
      let added = 0;
      for (const st of splitStatements(text)) if (s.log.record(st, this.o.classifier.classify(st).sessionKey)) added++;
      return added > 0 ? { ran: { log: s.log, added } } : null;
    }
    if (type === Frontend.Parse) {
      const named = buf[at] !== 0;
      if (!named && !this.classified(f) && !mayHaveFacts(buf, at + 1, end)) return null;
      const { text, c } = this.factOf(s, f);
      if (text === null) return null;
      // A SET (RESET, DISCARD...) sent over the extended protocol changes the session like a simple one: it is
      // logged for replay on the other backend too (8 of 20 later reads there saw it unset).
      const note: LinkNote | null = c?.changesSession === true && s.log.record(text, c.sessionKey) ? { ran: { log: s.log, added: 1 } } : null;
      const name = statementUsed(f);
      if (name === null) return note; // unnamed statement: lives until the next Parse, nothing to remember
      const old = s.named.get(name);
      if (old) s.namedBytes -= old.parse.length + old.text.length;
      s.named.set(name, { text, parse: Buffer.from(buf.subarray(start, end)) });
      s.namedBytes += end - start + text.length;
      return { ...note, defined: { name, text } };
    }
    if (type === Frontend.Close && buf[at] === TargetKind.Statement) {
      const z = buf.indexOf(0, at + 1);
      if (z <= at + 1 || z >= end) return null;
      const name = buf.toString('utf8', at + 1, z);
      const old = s.named.get(name);
      if (old) s.namedBytes -= old.parse.length + old.text.length;
      s.named.delete(name);
      return { closed: name };
    }
    return null;
  }

  /**
   * Fast path (units not routed): a statement that pins the session (temp table, LISTEN, session advisory
   * lock) is still found from the frame's facts (classified once, when the byte gate lets it through: sent()
   * reads the same facts), so the session stays pinned when the state later starts splitting reads.
   */
  watchPins(s: SessionRouting, link: BackendLink, f: Frame): void {
    if (s.pinnedTo !== null || (f.type !== Frontend.Query && f.type !== Frontend.Parse)) return;
    if (!mayHaveFacts(f.buf, f.start + 5, f.end)) return;
    // A SQL PREPARE is replayed with the session state (its `prep:` key), so it pins only a routed unit.
    const pin = this.factOf(s, f).c?.pins;
    if (pin !== undefined && pin !== 'prepare') s.pinnedTo = link.role;
  }

  unitDone(s: SessionRouting, _link: BackendLink): void {
    if (s.unitData) this.o.freshness?.book.commitSeen(s.fresh);
    s.unitWrite = false;
    s.unitData = false;
    s.unitCut = false;
  }

  backendFailed(role: Role): void {
    if (role === 'target') this.targetDownUntil = this.now() + (this.o.targetBackoffMs ?? 2000);
  }
}
