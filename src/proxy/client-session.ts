/**
 * A client connection after login: owns up to two backend connections (source, target, SessionLinks) and
 * forwards frames between them and the client.
 *
 * Client → backend: SessionForwarder (./session-forward.ts), a state machine over connecting, idle, busy on
 * one link, waiting (held frames), parked (writes held) and closed.
 * Backend → client: each received chunk is forwarded whole by its BackendLink, which calls back here
 * (LinkEvents) for replies done, errors, retries of held reads and lost connections.
 */
import type { Socket } from 'node:net';
import { FRONTEND_TYPES, TxStatus } from '../protocol/codes.js';
import { FrameReader } from '../protocol/framer.js';
import * as enc from '../protocol/backend-encode.js';
import { SqlState } from '../protocol/sqlstate.js';
import { log } from '../support/log.js';
import { connectBackend, sendCancelRequest } from '../net/backend-connect.js';
import type { BackendLink, LinkEvents } from './backend-link.js';
import type { Role } from '../domain/role.js';
import type { ShadowTap } from './shadow-tap.js';
import { SessionForwarder, type ForwardDeps } from './session-forward.js';
import { SessionLinks, type LinksDeps } from './session-links.js';
import { SessionTap } from './session-tap.js';
import { describeSession } from './session-describe.js';
import { SessionFaults } from './session-faults.js';

export { MAX_UNIT_BYTES } from './unit-assembler.js';
export { DEFAULT_MAX_PREPARED_BYTES } from './session-output.js';

export type SessionPhase = 'connecting' | 'ready' | 'closed';

export interface SessionDeps extends ForwardDeps, LinksDeps {
  maxMessageBytes: number;
  /** The shadow-write service while the state shadows writes, else null. */
  shadower(): ShadowTap | null;
  onClosed(s: ClientSession): void;
  /**
   * Asks to key the session by `pid` (its writer backend's process id) instead of the one drawn at login;
   * false when another session already holds that number (then the drawn one stays).
   */
  rekey?(s: ClientSession, pid: number): boolean;
}

export class ClientSession extends SessionForwarder implements LinkEvents {
  /** Shutdown asked: the session closes as soon as nothing is in flight. */
  draining = false;
  private readonly frames: FrameReader;
  private readonly startupParams: Record<string, string> = {};
  private readonly faults: SessionFaults;

  constructor(
    id: number,
    socket: Socket,
    readonly user: string,
    readonly params: Record<string, string>,
    /** The process id in BackendKeyData: the writer backend's own once it is connected (see start()). */
    public pid: number,
    readonly secret: number,
    private readonly deps: SessionDeps,
  ) {
    const startupParams: Record<string, string> = {};
    for (const [k, v] of Object.entries(params)) if (k !== 'user') startupParams[k] = v;
    const routing = deps.router.newSession(`${id}:${user}:${params.application_name ?? ''}`);
    super(
      id,
      socket,
      deps,
      (self) => new SessionLinks(id, deps, startupParams, self as ClientSession, () => self.st.kind === 'closed'),
      () => new SessionTap({ shadower: deps.shadower, stats: deps.stats, named: routing.named, log: routing.log, startupParams, role: deps.login?.user ?? null }),
      routing,
    );
    this.startupParams = startupParams;
    this.faults = new SessionFaults(id, deps.stats, deps.router, routing, deps.readers ?? null);
    this.frames = new FrameReader(deps.maxMessageBytes, FRONTEND_TYPES);
  }

  get phase(): SessionPhase {
    return this.st.kind === 'connecting' || this.st.kind === 'closed' ? this.st.kind : 'ready';
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
    const r = await this.links.open(role);
    if (this.st.kind !== 'connecting') return;
    if (!r.ok) return this.fatal(r.sqlstate, r.message);
    // BackendKeyData carries the writer backend's own pid, as PostgreSQL's equals pg_backend_pid(): clients
    // use it to find or end their own session (postgres.js's listen reconnect, pg_terminate_backend(pid)).
    // The secret stays the proxy's, so a CancelRequest still comes here and is routed to the busy link.
    const writerPid = this.links[role]?.pid;
    if (writerPid !== undefined && writerPid > 0 && writerPid !== this.pid && this.deps.rekey?.(this, writerPid)) this.pid = writerPid;
    this.st = { kind: 'idle' };
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
    if (this.st.kind !== 'closed') this.links.prewarm();
  }

  private onClientData(chunk: Buffer): void {
    if (this.st.kind === 'connecting' || this.st.kind === 'closed') return;
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
    if (this.st.kind === 'closed') return;
    if (!this.socket.write(chunk)) {
      link.socket.pause();
      this.socket.once('drain', () => link.socket.resume());
    }
    this.tap.replyData(link.role, chunk);
  }

  onReady(link: BackendLink): void {
    this.faults.ready(link);
    this.tap.ready(link);
    this.settle();
    const st = this.st;
    // The unit this link answered is done before a unit waiting for it is dispatched (possibly to another link,
    // after plan-check.ts's probe): its retry frames must not be cleared by this answer.
    if (link.idle) {
      this.retryFrames = null;
      this.deps.router.unitDone(this.routing, link);
    }
    if (st.kind === 'waiting' && st.on === 'answer' && st.link === link && link.pending === 0 && !link.inUnit) this.endWait();
    if (link.idle && this.draining) this.maybeFinishDrain();
  }

  onError(link: BackendLink, sqlstate: string): void {
    this.faults.error(link, sqlstate);
  }

  onRetry(link: BackendLink, sqlstate: string): void {
    const frames = this.retryFrames;
    this.retryFrames = null;
    const to = this.faults.retryRole(link, sqlstate);
    if (frames === null) return;
    link.forget(this.deps.router.parsedBy(frames));
    this.settle();
    this.dispatch(frames, to);
  }

  mayInterject(link: BackendLink): boolean {
    return this.links.othersIdle(link);
  }

  onLost(link: BackendLink, why: string): void {
    this.links.drop(link);
    const st = this.st;
    if (st.kind === 'closed') return;
    if (st.kind === 'waiting' && st.on === 'answer' && st.link === link) queueMicrotask(() => this.st === st && this.endWait());
    this.settle();
    const retired = link.retired !== null;
    const retryable = link.retryable && this.retryFrames !== null && link.txStatus === TxStatus.Idle;
    // FATAL 57P01 is both a server shutting down and an operator's pg_terminate_backend of this session:
    // only the first is the target failing. A server that still takes logins was not shutting down.
    if (retryable && link.heldFault === SqlState.AdminShutdown) return this.retryUnlessTerminated(link);
    if (link.reader >= 0) {
      // A target reader lost: skipped for a while; not a fault of the target the breaker judges (reads go on).
      this.deps.stats.readerFaults++;
      this.deps.readers?.failed(link.reader);
    } else if (!retired) {
      this.deps.stats.backendFaults[link.role]++;
      this.deps.router.backendFailed(link.role);
    } else if (link.txStatus !== TxStatus.Idle) {
      this.deps.stats.fenceEndedTransactions++;
      log.warn({ session: this.id, backend: link.role, retired: link.retired }, 'a transaction open when writes were held did not end within the drain bound: the fence ended it');
    }
    if (retryable) {
      log.debug({ session: this.id, why, reader: link.reader }, 'target lost during a read; retrying elsewhere');
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
      const replayable = this.routing.pinnedTo !== link.role || link.reader >= 0;
      if (replayable && (retired || link.reader >= 0 || link.role !== this.deps.router.policy().writesTo)) return;
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
    this.wait('termination-check', link, []);
    void connectBackend(link.target, this.startupParams, { login: this.deps.login }).then((r) => {
      if (r.ok) r.value.socket.destroy();
      if (this.st.kind === 'closed') return;
      if (r.ok) {
        // Not the target failing: the 57P01 counted as a fault when it arrived (onError) is taken back; the
        // client sees the termination, as it would directly.
        if (link.reader >= 0) this.deps.stats.readerFaults--;
        else this.deps.stats.backendFaults[link.role]--;
        log.info({ session: this.id, backend: link.role }, 'read on the target terminated by an operator; told to the client');
        link.releaseHold();
        return this.close();
      }
      if (link.reader >= 0) this.deps.stats.readerFaults++;
      else this.deps.stats.backendFaults[link.role]++;
      const frames = this.retryFrames;
      this.retryFrames = null;
      const to = this.faults.retryRole(link, SqlState.AdminShutdown);
      if (frames !== null) link.forget(this.deps.router.parsedBy(frames));
      this.endWait(frames, to);
    });
  }

  /** Shutdown: close now if nothing is in flight, else when the open transaction ends. */
  drain(): void {
    this.draining = true;
    this.maybeFinishDrain();
  }

  private maybeFinishDrain(): void {
    if (this.st.kind === 'connecting') this.fatal(SqlState.AdminShutdown, 'the proxy is shutting down');
    else if (this.st.kind !== 'closed' && this.links.busy() === null) this.fatal(SqlState.AdminShutdown, 'terminating connection due to administrator command');
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
    for (const l of this.links.all()) {
      if (l.retired === null || !l.idle || this.routing.pinnedTo === l.role) continue;
      this.links.drop(l);
      l.close();
    }
  }

  /** Cancels what runs on `role` and, inside a transaction, ends the session's connection there. */
  cancelOn(role: Role): void {
    const l = this.links[role];
    if (l !== null) void sendCancelRequest(l.target, l.pid, l.secret);
  }

  /** What this session is doing, for GET /clients (PgBouncer's SHOW CLIENTS / SHOW SERVERS). */
  describe(): Record<string, unknown> {
    return describeSession(this, this.links, this.tap);
  }

  /** Forwards a CancelRequest to the backend running this session's query. */
  cancel(): void {
    this.faults.cancelRequested = true;
    for (const l of this.links.all()) {
      if (l.pending > 0) {
        this.deps.stats.cancelsForwarded++;
        void sendCancelRequest(l.target, l.pid, l.secret);
      }
    }
  }

  /** Sends a FATAL ErrorResponse and closes the session. */
  fatal(sqlstate: string, message: string): void {
    if (this.st.kind === 'closed') return;
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
    if (this.st.kind === 'closed') return;
    this.st = { kind: 'closed' };
    this.tap.close();
    for (const l of this.links.all()) {
      if (l.pending > 0 && !l.closing && !graceful) void sendCancelRequest(l.target, l.pid, l.secret);
      l.close();
    }
    if (!this.socket.destroyed) this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.deps.onClosed(this);
  }
}
