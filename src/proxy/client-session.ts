/**
 * A client connection after login: owns its backend connections and forwards frames between them.
 * Phases: connecting (logging in to the first backend) → ready → closing → closed.
 * Client → backend: frames are cut by the FrameReader and forwarded as byte ranges of the received chunk,
 * contiguous frames for the same backend in one write. Backend → client: each received chunk is forwarded
 * whole; only ReadyForQuery and ErrorResponse are read (BackendLink).
 */
import type { Socket } from 'node:net';
import { Frontend, FRONTEND_TYPES, TxStatus } from '../protocol/codes.js';
import { FrameReader } from '../protocol/framer.js';
import * as enc from '../protocol/backend-encode.js';
import { SqlState } from '../protocol/sqlstate.js';
import { log } from '../log.js';
import { connectBackend, sendCancelRequest } from './backend-connect.js';
import type { BackendTarget } from './database-url.js';
import { BackendLink, type LinkEvents, type Role } from './backend-link.js';
import { isServerFault, type ProxyStats } from './stats.js';

export type SessionPhase = 'connecting' | 'ready' | 'closing' | 'closed';

export interface SessionDeps {
  backends: { source: BackendTarget; target: BackendTarget };
  maxMessageBytes: number;
  stats: ProxyStats;
  /** Which backend the session's statements go to; the router replaces this. */
  writeRole(): Role;
  onClosed(s: ClientSession): void;
}

export class ClientSession implements LinkEvents {
  phase: SessionPhase = 'connecting';
  draining = false;
  private link: BackendLink | null = null;
  private readonly frames: FrameReader;
  // The run of contiguous client bytes waiting to be written to `runLink`.
  private runBuf: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;
  private runLink: BackendLink | null = null;
  private terminated = false;

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
  }

  /** Connects the backend, greets the client (ParameterStatus, BackendKeyData, ReadyForQuery) and starts forwarding. */
  async start(rest: Buffer): Promise<void> {
    const role = this.deps.writeRole();
    const target = this.deps.backends[role];
    const startupParams: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.params)) if (k !== 'user') startupParams[k] = v;
    const r = await connectBackend(target, startupParams);
    if (this.phase !== 'connecting') {
      if (r.ok) r.value.socket.destroy();
      return;
    }
    if (!r.ok) {
      this.deps.stats.connectFailures[role]++;
      return this.fatal(r.error.sqlstate, r.error.message);
    }
    const b = r.value;
    this.link = new BackendLink(role, target, b.socket, b.pid, b.secret, this);
    this.phase = 'ready';
    this.socket.cork();
    this.socket.write(b.parameterStatus);
    this.socket.write(enc.backendKeyData(this.pid, this.secret));
    this.socket.write(enc.readyForQuery(TxStatus.Idle));
    if (b.leftover.length > 0) this.socket.write(b.leftover);
    this.socket.uncork();
    this.socket.on('data', (c: Buffer) => this.onClientData(c));
    this.socket.on('close', () => this.onClientGone());
    this.socket.on('error', () => this.onClientGone());
    if (rest.length > 0) this.onClientData(rest);
    this.socket.resume();
    if (this.draining) this.maybeFinishDrain();
  }

  private readonly onFrame = (type: number, buf: Buffer, start: number, end: number): void => {
    if (this.terminated) return;
    const link = this.link!;
    if (type === Frontend.Query || type === Frontend.Sync || type === Frontend.FunctionCall) {
      link.pending++;
      this.deps.stats.statements[link.role]++;
    } else if (type === Frontend.Terminate) {
      // Not forwarded: the proxy ends the backend session itself (and would return it to a pool).
      this.terminated = true;
      return;
    }
    if (this.runLink === link && this.runBuf === buf && this.runEnd === start) {
      this.runEnd = end;
      return;
    }
    this.flushRun();
    this.runLink = link;
    this.runBuf = buf;
    this.runStart = start;
    this.runEnd = end;
  };

  private flushRun(): void {
    const link = this.runLink;
    if (link === null) return;
    const buf = this.runBuf!;
    const view = this.runStart === 0 && this.runEnd === buf.length ? buf : buf.subarray(this.runStart, this.runEnd);
    this.runLink = null;
    this.runBuf = null;
    if (!link.socket.write(view)) {
      this.socket.pause();
      link.socket.once('drain', () => {
        if (this.phase === 'ready') this.socket.resume();
      });
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
    if (this.terminated) this.close();
  }

  // LinkEvents — called by BackendLink.
  onData(link: BackendLink, chunk: Buffer): void {
    if (this.phase === 'closed') return;
    if (!this.socket.write(chunk)) {
      link.socket.pause();
      this.socket.once('drain', () => link.socket.resume());
    }
  }

  onReady(link: BackendLink): void {
    if (this.draining && link.idle) this.maybeFinishDrain();
  }

  onError(link: BackendLink, sqlstate: string): void {
    this.deps.stats.errors[link.role]++;
    if (isServerFault(sqlstate)) this.deps.stats.backendFaults[link.role]++;
  }

  onLost(link: BackendLink, why: string): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    this.deps.stats.backendFaults[link.role]++;
    log.warn({ session: this.id, backend: link.role, why }, 'backend connection lost');
    this.fatal(SqlState.ConnectionFailure, `connection to ${link.role} backend ${link.address} lost: ${why}`);
  }

  /** Shutdown: close now if nothing is in flight, else when the open transaction ends. */
  drain(): void {
    this.draining = true;
    this.maybeFinishDrain();
  }

  private maybeFinishDrain(): void {
    if (this.phase === 'ready' && (this.link === null || this.link.idle)) {
      this.fatal(SqlState.AdminShutdown, 'terminating connection due to administrator command');
    } else if (this.phase === 'connecting') {
      this.fatal(SqlState.AdminShutdown, 'the proxy is shutting down');
    }
  }

  /** Forwards a CancelRequest to the backend running this session's query. */
  cancel(): void {
    const l = this.link;
    if (l && l.pending > 0) {
      this.deps.stats.cancelsForwarded++;
      void sendCancelRequest(l.target, l.pid, l.secret);
    }
  }

  /** Sends a FATAL ErrorResponse and closes the session. */
  fatal(sqlstate: string, message: string): void {
    if (this.phase === 'closed' || this.phase === 'closing') return;
    if (!this.socket.destroyed) this.socket.write(enc.errorResponse({ severity: 'FATAL', code: sqlstate, message }));
    this.close();
  }

  private onClientGone(): void {
    this.close();
  }

  /**
   * Ends the session. A backend with a statement running is sent a cancel first, so a long query does not
   * keep running for a client that left; closing the backend connection rolls back an open transaction.
   */
  close(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    const l = this.link;
    if (l) {
      if (l.pending > 0 && !l.closing) void sendCancelRequest(l.target, l.pid, l.secret);
      l.close();
    }
    if (!this.socket.destroyed) this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.deps.onClosed(this);
  }
}
