/**
 * A client connection after login: owns up to two backend connections (source, target) and forwards frames.
 * Phases: connecting (logging in to the first backend) → ready → closed.
 *
 * Client → backend: frames are cut by the FrameReader and forwarded as byte ranges of the received chunk,
 * contiguous frames for the same backend in one write. While a backend owes replies or holds an open
 * transaction, every frame follows it (a transaction is never split). Otherwise the next unit (a Query, or
 * extended messages up to Sync) is routed by the Router; in states where every statement goes to one backend
 * the unit is forwarded without being classified.
 * Backend → client: each received chunk is forwarded whole (BackendLink).
 */
import type { Socket } from 'node:net';
import { Frontend, FRONTEND_TYPES, TxStatus } from '../protocol/codes.js';
import { FrameReader } from '../protocol/framer.js';
import * as enc from '../protocol/backend-encode.js';
import { SqlState } from '../protocol/sqlstate.js';
import { log } from '../support/log.js';
import { connectBackend, sendCancelRequest } from '../net/backend-connect.js';
import type { BackendLogin } from '../auth/backend-credential.js';
import type { BackendTarget } from '../net/database-url.js';
import { BackendLink, type CatchUp, type LinkEvents } from './backend-link.js';
import type { Role } from '../domain/role.js';
import type { ProxyStats } from './stats.js';
import { isServerFault, isTargetFault, SCHEMA_DRIFT_CODES } from '../domain/attribution.js';
import { Router, type Frame } from './router-glue.js';
import { queryFrame } from '../protocol/frontend-encode.js';
import type { Shadower } from '../shadow/shadower.js';
import type { ShadowTx } from '../shadow/shadow-tx.js';

/**
 * Client bytes a session holds for a unit not yet routed (extended messages waiting for their Sync). Past it the
 * unit is routed as it stands, like one of more than 256 messages, and the rest follows it: 200 × 1 MiB Parse
 * without Sync used to be held whole (+198 MB). Backpressure from the backend bounds everything after that.
 */
export const MAX_UNIT_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_PREPARED_BYTES = 32 * 1024 * 1024;

/** Takes the transaction's first snapshot, after which PostgreSQL refuses to make it read-write. */
const SNAPSHOT_QUERY = queryFrame('SELECT 1');

export type SessionPhase = 'connecting' | 'ready' | 'closed';

type OpenResult = { ok: true; parameterStatus: Buffer } | { ok: false; sqlstate: string; message: string };

export interface SessionDeps {
  backends: { source: BackendTarget; target: BackendTarget };
  /** The role and credential to log in to both backends with; null: the URL's (one role for every client). */
  login?: BackendLogin | null;
  maxMessageBytes: number;
  /** Bytes of named prepared statements a session may hold (the proxy keeps each to re-Parse it elsewhere). */
  maxPreparedBytes?: number;
  stats: ProxyStats;
  router: Router;
  /** The shadow-write service while the state shadows writes, else null. */
  shadower(): Shadower | null;
  /** Writes are being held (write switchover / rollback pause): park a write unit until `release`. */
  writesHeld(s: ClientSession): boolean;
  /** Writes are being held (no side effect): the forwarding fast path classifies units meanwhile. */
  writesHolding(): boolean;
  onClosed(s: ClientSession): void;
}

export class ClientSession implements LinkEvents {
  phase: SessionPhase = 'connecting';
  draining = false;
  readonly links: { source: BackendLink | null; target: BackendLink | null } = { source: null, target: null };
  private readonly frames: FrameReader;
  /** The link whose run of client bytes is not written yet (BackendLink.send coalesces, flushRun writes). */
  private runLink: BackendLink | null = null;
  private terminated = false;
  /** Frames of a unit not yet routed (views into received chunks, which are never reused). */
  private unit: Frame[] = [];
  /** Bytes of `unit`: a unit is routed once it holds MAX_UNIT_BYTES, not buffered until its Sync. */
  private unitBytes = 0;
  /** Frames waiting while a backend connects or another one finishes its replies. */
  private held: Frame[] | null = null;
  /** Frames of the last read unit sent to the target, kept until its reply arrives so it can be retried. */
  private retryFrames: Frame[] | null = null;
  private readonly startupParams: Record<string, string> = {};
  /** Lock-step shadow of the write transaction (or dark read) in progress, if it was sampled. */
  private shadow: ShadowTx | null = null;
  readonly state;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    readonly user: string,
    readonly params: Record<string, string>,
    readonly pid: number,
    readonly secret: number,
    private readonly deps: SessionDeps,
  ) {
    this.frames = new FrameReader(deps.maxMessageBytes, FRONTEND_TYPES);
    for (const [k, v] of Object.entries(params)) if (k !== 'user') this.startupParams[k] = v;
    this.state = deps.router.newSession(`${id}:${user}:${params.application_name ?? ''}`);
  }

  /** Connects the writer, greets the client (ParameterStatus, BackendKeyData, ReadyForQuery), starts forwarding. */
  async start(rest: Buffer): Promise<void> {
    // Watch for the client leaving from the start: it may go while the backend connects, or already went
    // during login; a session nobody closes would hold its backend connection forever.
    this.socket.on('close', () => this.close());
    this.socket.on('error', () => this.close());
    if (this.socket.destroyed) return this.close();
    const role = this.deps.router.policy().writesTo;
    this.prewarm();
    const r = await this.openLink(role);
    if (this.phase !== 'connecting') return;
    if (!r.ok) return this.fatal(r.sqlstate, r.message);
    this.phase = 'ready';
    this.socket.cork();
    this.socket.write(r.parameterStatus);
    this.socket.write(enc.backendKeyData(this.pid, this.secret));
    this.socket.write(enc.readyForQuery(TxStatus.Idle));
    this.socket.uncork();
    this.socket.on('data', (c: Buffer) => this.onClientData(c));
    if (rest.length > 0) this.onClientData(rest);
    this.socket.resume();
    if (this.draining) this.maybeFinishDrain();
  }

  /**
   * In the states that split reads, the target link opens now (at login, or on a transition into such a
   * state), not with the first read sent there (+20–30 ms on that query).
   */
  prewarm(): void {
    const p = this.deps.router.policy();
    if (this.phase === 'closed' || p.writesTo !== 'source' || p.readPercent <= 0) return;
    if (this.links.target === null && this.opening.target === null) void this.openLink('target');
  }

  /** Connects in progress, so a read and the prewarm never open two links to one backend. */
  private readonly opening: { source: Promise<OpenResult> | null; target: Promise<OpenResult> | null } = { source: null, target: null };

  private openLink(role: Role): Promise<OpenResult> {
    const busy = this.opening[role];
    if (busy !== null) return busy;
    const p = this.connectLink(role).finally(() => {
      this.opening[role] = null;
    });
    this.opening[role] = p;
    return p;
  }

  private async connectLink(role: Role): Promise<OpenResult> {
    const target = this.deps.backends[role];
    // Links to the non-writer are opened read-only (DESIGN.md "Fencing"): a write that reaches one anyway
    // meets PostgreSQL's own 25006. As a startup parameter it is also the value RESET and DISCARD ALL restore.
    const readOnly = role !== this.deps.router.policy().writesTo;
    const params = readOnly ? { ...this.startupParams, default_transaction_read_only: 'on' } : this.startupParams;
    const r = await connectBackend(target, params, { login: this.deps.login });
    if (this.phase === 'closed') {
      if (r.ok) r.value.socket.destroy();
      return { ok: false, sqlstate: SqlState.ConnectionFailure, message: 'session closed' };
    }
    if (!r.ok) {
      if (r.error.sqlstate.startsWith('28')) {
        // This client's role cannot log in there (missing, another secret): a fact about the role, not a
        // backend fault, so no breaker or backoff for everyone; this session keeps its reads on the writer.
        this.loginRefused[role] = r.error.message;
        log.warn({ session: this.id, backend: role, user: this.deps.login?.user ?? this.deps.backends[role].user, err: r.error.message }, 'backend refused the client role');
        return { ok: false, sqlstate: r.error.sqlstate, message: r.error.message };
      }
      this.deps.stats.connectFailures[role]++;
      this.deps.router.backendFailed(role);
      log.warn({ session: this.id, backend: role, code: r.error.sqlstate, err: r.error.message }, 'backend connect failed');
      // The client gets the server's own refusal (28P01, 3D000...) but never a backend's address.
      const message = r.error.sqlstate.startsWith('08') ? `could not connect to the ${role} database server` : r.error.message;
      return { ok: false, sqlstate: r.error.sqlstate, message };
    }
    const b = r.value;
    this.links[role] = new BackendLink(role, target, b.socket, b.pid, b.secret, this, readOnly);
    return { ok: true, parameterStatus: b.parameterStatus };
  }

  private readonly onFrame = (type: number, buf: Buffer, start: number, end: number): void => {
    if (this.terminated || this.phase === 'closed') return;
    if (this.held !== null) {
      this.held.push({ type, buf, start, end });
      return;
    }
    if (type === Frontend.Terminate) {
      // Not forwarded: the proxy ends its backend sessions itself.
      this.terminated = true;
      return;
    }
    const busy = this.busyLink();
    if (busy !== null && busy.readOnly) return this.toBusyReadOnly(busy, { type, buf, start, end });
    if (busy !== null) {
      // More frames behind a held read: their replies must follow its reply, from the same backend, so the
      // held one can no longer be retried elsewhere.
      if (busy.retryable) {
        busy.releaseHold();
        this.retryFrames = null;
      }
      // A unit inside a transaction may use a statement prepared on the other backend (the writer moved
      // while the session was idle: BEGIN went to the new writer, the next Bind names a statement only the
      // old one has). At a unit's start, nothing owed, prepare it here first.
      if ((type === Frontend.Bind || type === Frontend.Describe) && !busy.inUnit && busy.pending === 0 && !this.deps.router.ready(this.state, busy)) {
        this.catchUpInTransaction(busy, { type, buf, start, end });
      }
      return this.send(busy, type, buf, start, end);
    }
    if (this.unit.length === 0 && !this.darkReadsOn() && !this.deps.writesHolding()) {
      // Fast path: in states where everything goes to one backend, forward without classifying.
      // Not with dark reads on: they need each unit classified to find the reads (SOURCE_PRIMARY). Not while
      // writes are held: a write must be found to be parked (issue 14: one went straight to the source).
      const role = this.deps.router.uniform(this.state);
      if (role !== null) {
        const link = this.links[role];
        if (link !== null && !link.readOnly && this.deps.router.ready(this.state, link)) {
          this.deps.router.unitStart(this.state, link, false);
          this.deps.router.watchPins(this.state, link, type, buf, start, end);
          return this.send(link, type, buf, start, end);
        }
      }
    }
    this.unit.push({ type, buf, start, end });
    this.unitBytes += end - start;
    if (type === Frontend.Query || type === Frontend.Sync || type === Frontend.FunctionCall || type === Frontend.Flush || this.unit.length > 256 || this.unitBytes >= MAX_UNIT_BYTES) {
      const unit = this.unit;
      this.unit = [];
      this.unitBytes = 0;
      const role = this.deps.router.route(this.state, unit);
      const refused = this.deps.router.refusal(this.state, unit, role);
      if (refused !== null) return this.refuse(unit, refused);
      this.dispatch(unit, role);
    }
  };

  /**
   * A frame while a read-only link (the non-writer) is busy. Nothing sent there may write (issue 14), so
   * frames are gathered into units and checked before they go:
   * - outside a transaction (replies still owed), the next unit waits until the link has answered, then is
   *   routed on its own: a write pipelined behind a read goes to the writer, its replies in order;
   * - inside a (read-only) transaction, a unit follows the link; one that would turn read-only off
   *   (SET TRANSACTION READ WRITE, set_config('transaction_read_only', …)) is preceded by a query of the
   *   proxy's own, swallowed, so PostgreSQL itself refuses it ("transaction read-write mode must be set
   *   before any query", 25001), as it would after any query. Writes then meet the read-only transaction.
   */
  private toBusyReadOnly(link: BackendLink, f: Frame): void {
    this.unit.push(f);
    this.unitBytes += f.end - f.start;
    const t = f.type;
    if (t !== Frontend.Query && t !== Frontend.Sync && t !== Frontend.FunctionCall && t !== Frontend.Flush && this.unit.length <= 256 && this.unitBytes < MAX_UNIT_BYTES) return;
    const unit = this.unit;
    this.unit = [];
    this.unitBytes = 0;
    const inTx = link.txStatus !== TxStatus.Idle;
    const off = this.deps.router.turnsReadOnlyOff(this.state, unit);
    if (link.pending > 0 && (!inTx || off || !this.deps.router.ready(this.state, link))) return this.waitFor(link, unit);
    if (link.pending === 0 && link.inUnit) {
      // The rest of a unit cut by a Flush: it must go on here, and no query of ours can go ahead of it.
      if (off) return this.fatal(SqlState.ReadOnlyTransaction, 'cannot set read-write mode inside a read-only transaction on the replica (pg-cutover)');
    } else if (link.pending === 0) {
      if (off) this.inject(link, { bytes: SNAPSHOT_QUERY, replies: 1 });
      const c = this.deps.router.catchUp(this.state, link, unit);
      if (c !== null) this.inject(link, c);
    }
    for (const u of unit) this.send(link, u.type, u.buf, u.start, u.end);
  }

  /** Bytes of the proxy's own sent ahead of the client's frames; their `replies` ReadyForQuery are swallowed. */
  private inject(link: BackendLink, c: CatchUp): void {
    this.flushRun();
    link.inject(c);
    this.runLink = link;
  }

  /** The read-only link a unit waits on: the unit (and what follows it) is fed again once the link has answered. */
  private waitingOn: BackendLink | null = null;

  private waitFor(link: BackendLink, unit: Frame[]): void {
    this.flushRun();
    this.waitingOn = link;
    this.held = unit;
    this.socket.pause();
  }

  /** The awaited link answered everything (or went away): feed the held frames again. */
  private endWait(): void {
    this.waitingOn = null;
    const held = this.held ?? [];
    this.held = null;
    for (const f of held) this.onFrame(f.type, f.buf, f.start, f.end);
    this.flushRun();
    if (this.held === null && this.phase === 'ready') this.socket.resume();
    if (this.terminated && this.held === null) this.close(true);
  }

  /** The link that owes replies or holds a transaction: everything goes there until it is idle again. */
  private busyLink(): BackendLink | null {
    const s = this.links.source;
    if (s !== null && !s.idle) return s;
    const t = this.links.target;
    if (t !== null && !t.idle) return t;
    return null;
  }

  /** A write unit parked while writes are held; re-routed when they are released. */
  private parked: Frame[] | null = null;

  /** Writes were released: route the parked unit by the (possibly new) state, then what queued behind it. */
  releaseParked(): void {
    const unit = this.parked;
    if (unit === null || this.phase !== 'ready') return;
    this.parked = null;
    this.resumeWith(unit, this.deps.router.route(this.state, unit));
  }

  /** Sends a routed unit, after connecting the backend and bringing its session state up to date. */
  private dispatch(unit: Frame[], role: Role): void {
    // A write inside a transaction already open on `role` is part of a write in flight: it must run, or the
    // hold's drain (which waits for that transaction to end) could never finish. Only new ones are parked.
    const open = this.links[role];
    if (this.state.unitWrite && (open === null || open.txStatus === TxStatus.Idle) && this.deps.writesHeld(this)) {
      this.flushRun();
      this.parked = unit;
      this.held ??= [];
      this.socket.pause();
      return;
    }
    const policy = this.deps.router.policy();
    // A write routed under an older state (the writer changed while a backend connected) goes to the writer.
    if (this.state.unitWrite && role !== policy.writesTo && this.state.pinnedTo !== role) role = policy.writesTo;
    let link = this.links[role];
    // A link opened for the other role (the writer changed), or one the backend reports read-write although
    // it was opened read-only, is replaced before it serves this unit; not in a session pinned to it, whose
    // state there (temp tables, LISTEN) cannot be rebuilt.
    if (link !== null && link.idle && this.state.pinnedTo !== role && (link.readOnly !== (role !== policy.writesTo) || link.readWriteSeen)) {
      link.close();
      this.links[role] = link = null;
    }
    if (link === null) return this.connectThenDispatch(unit, role);
    const wasIdle = link.idle;
    // Unit latency (gate 3, metrics): from here to the ReadyForQuery that leaves the link with nothing owed.
    if (link.pending === 0) {
      this.unitAt[role] = performance.now();
      this.unitWrote[role] = this.state.unitWrite;
    }
    const catchUp = this.deps.router.catchUp(this.state, link, unit);
    if (catchUp !== null) this.inject(link, catchUp);
    const isRead = role !== policy.writesTo;
    if (policy.shadow && role === policy.writesTo && this.state.unitWrite && this.shadow === null) this.startShadow();
    // A dark read covers one unit sent outside a transaction: inside one, the target would not see the
    // transaction's own earlier writes (a false mismatch), and later units of it may write.
    else if (role === 'source' && !this.state.unitWrite && !policy.shadow && this.shadow === null && wasIdle) this.startDarkRead();
    // A read on the target is held back until its ReadyForQuery so it can be retried on the source; not one
    // ended by Flush: its replies are due now and no ReadyForQuery may come before the client's next move.
    if (isRead && unit[unit.length - 1].type !== Frontend.Flush) {
      this.retryFrames = unit;
      link.holdReply();
    }
    for (const f of unit) this.send(link, f.type, f.buf, f.start, f.end);
    this.flushRun();
  }

  private catchUpInTransaction(link: BackendLink, f: Frame): void {
    const c = this.deps.router.catchUp(this.state, link, [f]);
    if (c !== null) this.inject(link, c);
  }

  /** A backend that refused this session's role (28xxx), by role: its reads stay on the writer. */
  private readonly loginRefused: { source: string | null; target: string | null } = { source: null, target: null };

  private connectThenDispatch(unit: Frame[], role: Role): void {
    if (role === 'target' && this.loginRefused.target !== null && this.deps.router.policy().writesTo !== 'target') {
      this.deps.stats.targetFallbacks++;
      return this.resumeWith(unit, 'source');
    }
    this.flushRun();
    this.held = [];
    this.socket.pause();
    void this.openLink(role).then((r) => {
      if (this.phase === 'closed') return;
      if (!r.ok) {
        if (role === 'target' && this.deps.router.policy().writesTo !== 'target') {
          // A read that the target cannot serve goes to the source; the client sees nothing (DESIGN.md).
          this.deps.stats.targetFallbacks++;
          this.resumeWith(unit, 'source');
          return;
        }
        return this.fatal(r.sqlstate, r.message);
      }
      this.resumeWith(unit, role);
    });
  }

  private resumeWith(unit: Frame[], role: Role): void {
    const held = this.held ?? [];
    this.held = null;
    this.dispatch(unit, role);
    for (const f of held) this.onFrame(f.type, f.buf, f.start, f.end);
    this.flushRun();
    if (this.held === null && this.phase === 'ready') this.socket.resume();
  }

  /** Answers a refused unit ourselves: ErrorResponse, then ReadyForQuery (its Query or Sync ended it). */
  private refuse(unit: Frame[], message: string): void {
    const last = unit[unit.length - 1];
    this.socket.write(enc.errorResponse({ severity: 'ERROR', code: SqlState.ReadOnlyTransaction, message }));
    if (last.type === Frontend.Query || last.type === Frontend.Sync || last.type === Frontend.FunctionCall) {
      this.socket.write(enc.readyForQuery(TxStatus.Idle));
    }
  }

  /** Dark reads are on: a shadow service exists and samples reads (one call, one null check, one compare). */
  private darkReadsOn(): boolean {
    const sh = this.deps.shadower();
    return sh !== null && sh.darkReadRate > 0;
  }

  private startShadow(): void {
    const sh = this.deps.shadower();
    if (sh === null) return;
    this.shadow = sh.begin(this.shadowPrelude, this.state.named);
  }

  /**
   * A read unit sent to the source: sampled for a dark read on the target (DESIGN.md, "Shadow writes" 6).
   * Not in a session pinned to a backend: its reads may use session state (temp tables) the target lacks.
   */
  private startDarkRead(): void {
    const sh = this.deps.shadower();
    if (sh === null || sh.darkReadRate <= 0 || this.state.pinnedTo !== null) return;
    this.shadow = sh.beginRead(this.shadowPrelude, this.state.named);
    this.shadowIsRead = this.shadow !== null;
  }

  /** The shadow in progress is a dark read: it ends with its unit's ReadyForQuery, whatever the status. */
  private shadowIsRead = false;
  /** performance.now() when the unit in flight on each backend was sent (0: none), and whether it wrote. */
  private readonly unitAt = { source: 0, target: 0 };
  private readonly unitWrote = { source: false, target: false };

  /** The session's settings to replay on a shadow connection first; built only for a sampled unit. */
  private readonly shadowPrelude = (): string[] => {
    const prelude: string[] = [];
    const sets: string[] = [];
    for (const [k, v] of Object.entries(this.startupParams)) {
      if (k === 'database' || k === 'options' || k === 'replication' || k.startsWith('_pq_.')) continue;
      sets.push(`SET "${k.replace(/"/g, '""')}" TO '${v.replace(/'/g, "''")}'`);
    }
    if (sets.length > 0) prelude.push(sets.join('; '));
    for (const sql of this.state.log.entries.values()) prelude.push(sql);
    return prelude;
  };

  private send(link: BackendLink, type: number, buf: Buffer, start: number, end: number): void {
    if (this.phase === 'closed') return;
    if (this.shadow !== null && link.role === 'source') this.shadow.clientFrame(type, buf, start, end);
    const f = { type, buf, start, end };
    if (this.runLink !== link) {
      this.flushRun();
      this.runLink = link;
    }
    switch (type) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        this.deps.stats.statements[link.role]++;
        return link.send(f, this.deps.router.sent(this.state, f));
      case Frontend.Sync:
        this.deps.stats.statements[link.role]++;
        return link.send(f, null);
      case Frontend.Parse:
      case Frontend.Close: {
        const note = this.deps.router.sent(this.state, f);
        const max = this.deps.maxPreparedBytes ?? DEFAULT_MAX_PREPARED_BYTES;
        if (this.state.namedBytes > max) {
          log.warn({ session: this.id, bytes: this.state.namedBytes }, 'prepared statements over --max-prepared-bytes: session ended');
          return this.fatal(SqlState.OutOfMemory, `out of memory: this session's prepared statements exceed ${max} bytes (--max-prepared-bytes)`);
        }
        return link.send(f, note);
      }
      default:
        return link.send(f, null);
    }
  }

  /** Writes the pending run; the client is paused until a backend that asked to wait drains (or goes away). */
  private flushRun(): void {
    const link = this.runLink;
    if (link === null) return;
    this.runLink = null;
    // Backpressure: stop reading the client until the backend drains, or goes away. A backend that closes
    // never drains: waiting for 'drain' alone left the client paused for good after its read was retried on
    // the source (a query hung forever, found when the target was stopped under load). A destroyed one
    // needs no backpressure at all: its loss is handled by onLost.
    if (!link.flush()) {
      this.socket.pause();
      const resume = () => {
        link.socket.off('drain', resume);
        link.socket.off('close', resume);
        if (this.phase === 'ready' && this.held === null) this.socket.resume();
      };
      link.socket.once('drain', resume);
      link.socket.once('close', resume);
    }
  }

  private onClientData(chunk: Buffer): void {
    if (this.phase !== 'ready') return;
    const bad = this.frames.feed(chunk, this.onFrame);
    this.flushRun();
    if (bad) {
      this.deps.stats.protocolErrors++;
      log.warn({ session: this.id, err: bad.message }, 'protocol violation from client');
      return this.fatal(bad.sqlstate, bad.message);
    }
    if (this.terminated) this.close(true);
  }

  // LinkEvents — called by BackendLink.
  onData(link: BackendLink, chunk: Buffer): void {
    if (this.phase === 'closed') return;
    if (!this.socket.write(chunk)) {
      link.socket.pause();
      this.socket.once('drain', () => link.socket.resume());
    }
    if (this.shadow !== null && link.role === 'source') this.shadow.sourceData(chunk);
  }

  onReady(link: BackendLink): void {
    this.cancelRequested = false;
    if (this.drift !== null && link.role === 'source' && link.pending === 0) this.judgeDrift();
    if (link.pending === 0) {
      const at = this.unitAt[link.role];
      if (at > 0) {
        const h = this.deps.stats.latency[link.role];
        (this.unitWrote[link.role] ? h.write : h.read).record(performance.now() - at);
        this.unitAt[link.role] = 0;
      }
    }
    if (this.shadow !== null && link.role === 'source' && (link.idle || (this.shadowIsRead && link.pending === 0))) {
      this.shadow.finish();
      this.shadow = null;
      this.shadowIsRead = false;
    }
    if (this.waitingOn === link && link.pending === 0 && !link.inUnit) this.endWait();
    if (link.idle) {
      this.retryFrames = null;
      this.deps.router.unitDone(this.state, link);
      if (this.draining) this.maybeFinishDrain();
    }
  }

  onError(link: BackendLink, sqlstate: string): void {
    this.deps.stats.errors[link.role]++;
    if (this.drift !== null && link.role === 'source') this.drift.source ??= sqlstate;
    // A 57014 after the client's own CancelRequest is the client's doing, not the server's.
    // On a link our own write hold retired, a 57P01 is our fence ending the session, not the target failing.
    const fault = link.role === 'target' ? isTargetFault(sqlstate, { backend: 'target', clientCancelled: this.cancelRequested, fenced: link.retired !== null }) : isServerFault(sqlstate, this.cancelRequested);
    if (fault) this.deps.stats.backendFaults[link.role]++;
  }

  /**
   * A read the target refused for schema drift (undefined table, privilege...), being retried on the source:
   * its code, and the source's answer (null: none yet, or success).
   */
  private drift: { target: string; source: string | null } | null = null;

  /** The source answered a read the target refused: an error the source did not give is the target's fault. */
  private judgeDrift(): void {
    const d = this.drift!;
    this.drift = null;
    if (isTargetFault(d.target, { backend: 'target', sourceResult: d.source ?? 'ok' })) this.deps.stats.backendFaults.target++;
  }

  /** The client sent a CancelRequest since its last ReadyForQuery. */
  private cancelRequested = false;

  onRetry(link: BackendLink, sqlstate: string): void {
    const frames = this.retryFrames;
    this.retryFrames = null;
    let to: Role = 'source';
    if (sqlstate === SqlState.ReadOnlyTransaction) {
      // A read that wrote (a writing function not in --write-functions) met the read-only link: nothing
      // reached the client and nothing was written; it runs on the writer, counted as a write.
      this.deps.stats.readOnlyRetries++;
      this.state.unitWrite = true;
      this.state.unitData = true;
      to = this.deps.router.policy().writesTo;
      log.debug({ session: this.id, sqlstate }, 'a read wrote on the read-only link; retrying on the writer');
    } else {
      this.deps.stats.targetFallbacks++;
      // Schema drift fails this statement, not the target: no back-off for other reads; whether it counts
      // against the target is judged by the source's answer (judgeDrift).
      if (SCHEMA_DRIFT_CODES.has(sqlstate)) this.drift = { target: sqlstate, source: null };
      else this.deps.router.backendFailed(link.role);
      log.debug({ session: this.id, sqlstate }, 'read failed on the target; retrying on the source');
    }
    if (frames === null) return;
    link.forget(this.deps.router.parsedBy(frames));
    this.dispatch(frames, to);
  }

  mayInterject(link: BackendLink): boolean {
    const other = link.role === 'source' ? this.links.target : this.links.source;
    return other === null || other.idle;
  }

  onLost(link: BackendLink, why: string): void {
    if (this.links[link.role] === link) this.links[link.role] = null;
    if (this.phase === 'closed') return;
    if (this.waitingOn === link) queueMicrotask(() => this.waitingOn === link && this.endWait());
    const retired = link.retired !== null;
    const retryable = link.retryable && this.retryFrames !== null && link.txStatus === TxStatus.Idle;
    // FATAL 57P01 is both a server shutting down and an operator's pg_terminate_backend of this session:
    // only the first is the target failing. A server that still takes logins was not shutting down.
    if (retryable && link.heldFault === SqlState.AdminShutdown) return this.retryUnlessTerminated(link);
    if (!retired) {
      this.deps.stats.backendFaults[link.role]++;
      this.deps.router.backendFailed(link.role);
    } else if (link.txStatus !== TxStatus.Idle) {
      this.deps.stats.fenceEndedTransactions++;
      log.warn({ session: this.id, backend: link.role, retired: link.retired }, 'a transaction open when writes were held did not end within the drain bound: the fence ended it');
    }
    if (retryable) {
      log.debug({ session: this.id, why }, 'target lost during a read; retrying on the source');
      return this.onRetry(link, SqlState.ConnectionFailure);
    }
    // A cut connection may leave the statement running on the server until it next writes: stop it.
    if (link.pending > 0) void sendCancelRequest(link.target, link.pid, link.secret);
    const reason = link.lastError ? `${why} (${link.lastError})` : why;
    log.warn({ session: this.id, backend: link.role, address: link.address, retired: link.retired, why: reason }, 'backend connection lost');
    if (link.idle) {
      // Idle: reconnected on next use, its session state replayed, when the loss is the proxy's own doing
      // (its fence ended the session: retired) or the link is the session's read-only helper on the
      // non-writer; never when session state cannot be rebuilt (temp table, LISTEN, advisory lock).
      // Otherwise the client learns it as it would directly: PostgreSQL's own FATAL, then the close.
      const replayable = this.state.pinnedTo !== link.role;
      if (replayable && (retired || link.role !== this.deps.router.policy().writesTo)) return;
      if (link.lastErrorFrame !== null && !this.socket.destroyed) this.socket.write(link.lastErrorFrame);
      return this.close();
    }
    // Mid-reply: PostgreSQL's FATAL (57P01 terminate, 57P02 crash...) already went to the client: close, as
    // PostgreSQL does, with no second error. A connection cut without a word gets one 08006 (never naming
    // the backend's address: that goes to the log).
    if (link.fatalForwarded) return this.close();
    this.fatal(SqlState.ConnectionFailure, `server closed the connection unexpectedly (${link.role} database)`);
  }

  /**
   * A read on the target ended with FATAL 57P01. If the target still accepts a login, an operator ended this
   * session: the client gets PostgreSQL's FATAL (held so far) and the close, as it would directly. If not,
   * the server is going down: the read is retried on the source. Client frames wait meanwhile.
   */
  private retryUnlessTerminated(link: BackendLink): void {
    this.flushRun();
    this.held ??= [];
    this.socket.pause();
    void connectBackend(link.target, this.startupParams, { login: this.deps.login }).then((r) => {
      if (r.ok) r.value.socket.destroy();
      if (this.phase === 'closed') return;
      if (r.ok) {
        // Not the target failing: the 57P01 counted as a fault when it arrived (onError) is taken back; the
        // client sees the termination, as it would directly.
        this.deps.stats.backendFaults[link.role]--;
        log.info({ session: this.id, backend: link.role }, 'read on the target terminated by an operator; told to the client');
        link.releaseHold();
        return this.close();
      }
      this.deps.stats.backendFaults[link.role]++;
      const frames = this.retryFrames;
      this.onRetry(link, SqlState.AdminShutdown);
      if (frames === null) return;
      const held = this.held ?? [];
      this.held = null;
      for (const f of held) this.onFrame(f.type, f.buf, f.start, f.end);
      this.flushRun();
      if (this.held === null && this.phase === 'ready') this.socket.resume();
    });
  }

  /** Shutdown: close now if nothing is in flight, else when the open transaction ends. */
  drain(): void {
    this.draining = true;
    this.maybeFinishDrain();
  }

  private maybeFinishDrain(): void {
    if (this.phase === 'ready' && this.busyLink() === null) {
      this.fatal(SqlState.AdminShutdown, 'terminating connection due to administrator command');
    } else if (this.phase === 'connecting') {
      this.fatal(SqlState.AdminShutdown, 'the proxy is shutting down');
    }
  }

  /** A transaction or statement of this session is in flight on `role`. */
  busyOn(role: Role): boolean {
    const l = this.links[role];
    return l !== null && !l.idle;
  }

  /**
   * The proxy is about to end this session's backend sessions on `role` itself (its fence): their loss is not
   * the client's news. An idle link is replaced on next use when the session state is replayable.
   */
  retireLink(role: Role, reason: string): void {
    this.links[role]?.retire(reason);
  }

  /** After a fence is lifted: an idle retired link is closed, to be opened afresh (and writable) on next use. */
  replaceRetired(): void {
    for (const role of ['source', 'target'] as const) {
      const l = this.links[role];
      if (l === null || l.retired === null || !l.idle || this.state.pinnedTo === role) continue;
      this.links[role] = null;
      l.close();
    }
  }

  /** Cancels what runs on `role` and, inside a transaction, ends the session's connection there. */
  cancelOn(role: Role): void {
    const l = this.links[role];
    if (l === null) return;
    void sendCancelRequest(l.target, l.pid, l.secret);
  }

  /** What this session is doing, for GET /clients (PgBouncer's SHOW CLIENTS / SHOW SERVERS). */
  describe(): Record<string, unknown> {
    const link = (l: BackendLink | null) =>
      l === null ? null : { pid: l.pid, address: l.address, idle: l.idle, txStatus: String.fromCharCode(l.txStatus), pending: l.pending, swallow: l.swallow, inUnit: l.inUnit, holdingReply: l.retryable };
    return {
      id: this.id,
      pid: this.pid,
      user: this.user,
      database: this.params.database ?? this.user,
      applicationName: this.params.application_name ?? '',
      client: `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`,
      phase: this.phase,
      draining: this.draining,
      pinnedTo: this.state.pinnedTo,
      waiting: this.parked !== null ? 'writes held' : this.held !== null ? 'backend connect or reply' : null,
      shadow: this.shadow === null ? null : this.shadowIsRead ? 'dark read' : 'write',
      source: link(this.links.source),
      target: link(this.links.target),
    };
  }

  /** Forwards a CancelRequest to the backend running this session's query. */
  cancel(): void {
    this.cancelRequested = true;
    for (const l of [this.links.source, this.links.target]) {
      if (l && l.pending > 0) {
        this.deps.stats.cancelsForwarded++;
        void sendCancelRequest(l.target, l.pid, l.secret);
      }
    }
  }

  /** Sends a FATAL ErrorResponse and closes the session. */
  fatal(sqlstate: string, message: string): void {
    if (this.phase === 'closed') return;
    if (!this.socket.destroyed) this.socket.write(enc.errorResponse({ severity: 'FATAL', code: sqlstate, message }));
    this.close();
  }

  /**
   * Ends the session. A backend with a statement running is sent a cancel first, so a long query does not
   * keep running for a client that left; closing the backend connection rolls back an open transaction.
   * `graceful`: the client sent Terminate, which PostgreSQL reads only after the statements before it have
   * run, so those are not cancelled (the backend gets its Terminate behind them).
   */
  close(graceful = false): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.shadow?.finish();
    this.shadow = null;
    for (const l of [this.links.source, this.links.target]) {
      if (l === null) continue;
      if (l.pending > 0 && !l.closing && !graceful) void sendCancelRequest(l.target, l.pid, l.secret);
      l.close();
    }
    if (!this.socket.destroyed) this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.deps.onClosed(this);
  }
}
