/**
 * The listening side of the proxy: accepts clients, runs login, hands them to ClientSession, routes
 * CancelRequests by the proxy's own BackendKeyData, and drains on shutdown.
 */
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { log } from '../log.js';
import * as enc from '../protocol/backend-encode.js';
import { SqlState } from '../protocol/sqlstate.js';
import type { UserEntry } from './auth/users.js';
import type { BackendTarget } from './database-url.js';
import { login } from './login.js';
import { ClientSession } from './client-session.js';
import type { Router } from './router-glue.js';
import type { Shadower } from '../shadow/shadower.js';
import { ProxyStats } from './stats.js';

export interface ProxyOptions {
  listen: { host: string; port: number };
  backends: { source: BackendTarget; target: BackendTarget };
  users: ReadonlyMap<string, UserEntry>;
  tls?: { cert: Buffer; key: Buffer };
  maxClients: number;
  maxMessageBytes: number;
  loginTimeoutMs?: number;
  router: Router;
  shadower?: () => Shadower | null;
}

export class ProxyServer {
  readonly stats = new ProxyStats();
  private readonly server: net.Server;
  private readonly sessions = new Map<number, ClientSession>();
  /** Connections still in login (counted against maxClients, closed on shutdown). */
  private readonly loggingIn = new Set<net.Socket>();
  private readonly tls: SecureContext | null;
  private nextId = 1;
  private stopping = false;

  constructor(private readonly opts: ProxyOptions) {
    this.tls = opts.tls ? createSecureContext({ cert: opts.tls.cert, key: opts.tls.key }) : null;
    this.server = net.createServer({ noDelay: true, pauseOnConnect: false }, (s) => this.accept(s));
  }

  listen(): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.listen.port, this.opts.listen.host, () => {
        this.server.removeListener('error', reject);
        this.server.on('error', (e) => log.error({ err: e }, 'listener error'));
        const a = this.server.address() as net.AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  get clientCount(): number {
    return this.sessions.size + this.loggingIn.size;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    const refuse = (code: string, message: string) => {
      socket.end(enc.errorResponse({ severity: 'FATAL', code, message }));
      // A client that never closes its side would otherwise keep the socket, and server.close() in shutdown, forever.
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    if (this.stopping) return refuse(SqlState.AdminShutdown, 'the proxy is shutting down');
    if (this.clientCount >= this.opts.maxClients) {
      this.stats.clientsRejected++;
      return refuse(SqlState.TooManyConnections, `sorry, too many clients already (max_clients=${this.opts.maxClients})`);
    }
    this.stats.clientsAccepted++;
    this.loggingIn.add(socket);
    void this.runLogin(socket).finally(() => this.loggingIn.delete(socket));
  }

  private async runLogin(raw: net.Socket): Promise<void> {
    const r = await login(raw, {
      users: this.opts.users,
      tls: this.tls,
      maxMessageBytes: this.opts.maxMessageBytes,
      timeoutMs: this.opts.loginTimeoutMs ?? 60_000,
      onCancel: (pid, secret) => this.cancel(pid, secret),
    });
    switch (r.kind) {
      case 'cancel':
        return;
      case 'fail':
        if (r.sqlstate.startsWith('28')) this.stats.authFailures++;
        else if (r.sqlstate === SqlState.ProtocolViolation) this.stats.protocolErrors++;
        if (!r.quiet) {
          log.info({ code: r.sqlstate, msg: r.message }, 'client login refused');
          if (!r.socket.destroyed) r.socket.end(enc.errorResponse({ severity: 'FATAL', code: r.sqlstate, message: r.message }));
        }
        setTimeout(() => r.socket.destroy(), 1000).unref();
        return;
      case 'ok': {
        if (this.stopping) {
          r.socket.end(enc.errorResponse({ severity: 'FATAL', code: SqlState.AdminShutdown, message: 'the proxy is shutting down' }));
          setTimeout(() => r.socket.destroy(), 1000).unref();
          return;
        }
        const id = this.nextId++;
        let pid = randomInt(1, 0x7fffffff);
        while (this.sessions.has(pid)) pid = randomInt(1, 0x7fffffff);
        const secret = randomInt(-0x80000000, 0x7fffffff);
        const session = new ClientSession(id, r.socket, r.user, r.params, pid, secret, {
          backends: this.opts.backends,
          maxMessageBytes: this.opts.maxMessageBytes,
          stats: this.stats,
          router: this.opts.router,
          shadower: this.opts.shadower ?? (() => null),
          writesHeld: (sess) => {
            if (!this.holdingWrites) return false;
            this.parkedSessions.add(sess);
            return true;
          },
          onClosed: (s) => {
            if (this.sessions.get(s.pid) === s) {
              this.sessions.delete(s.pid);
              this.stats.clientsActive--;
            }
          },
        });
        this.sessions.set(pid, session);
        this.stats.clientsActive++;
        await session.start(r.rest);
        return;
      }
      default: {
        const never: never = r;
        throw new Error(`unknown login result ${JSON.stringify(never)}`);
      }
    }
  }

  /** CancelRequest: the key is the proxy's own BackendKeyData; a wrong secret is ignored, as PostgreSQL does. */
  private cancel(pid: number, secret: number): void {
    const s = this.sessions.get(pid);
    if (s && s.secret === secret) s.cancel();
    else log.debug({ pid }, 'cancel request for unknown session ignored');
  }

  private holdingWrites = false;
  private readonly parkedSessions = new Set<ClientSession>();

  /**
   * Write switchover / rollback pause (DESIGN.md step 1): new write units are parked, not failed; resolves
   * once no session has a transaction in flight on `writer`, or rejects after `drainMs` (the caller releases).
   */
  async holdWrites(writer: 'source' | 'target', drainMs: number): Promise<void> {
    this.clearHoldTimer();
    this.holdingWrites = true;
    this.retireLinks(writer, 'write hold before a writer change (fence)');
    const busy = await this.writesDrained(writer, drainMs);
    if (busy > 0) throw new Error(`${busy} write transactions still open after ${drainMs} ms`);
  }

  /** Waits until no session has a transaction in flight on `writer`, at most `maxMs`; returns how many still have one. */
  async writesDrained(writer: 'source' | 'target', maxMs: number): Promise<number> {
    const started = Date.now();
    for (;;) {
      let busy = 0;
      for (const s of this.sessions.values()) if (s.busyOn(writer)) busy++;
      if (busy === 0 || Date.now() - started > maxMs) return busy;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * The proxy's fence is about to end its backend sessions on `role` (DESIGN.md "Fencing"): mark them, so an
   * idle one's end is repaired silently instead of reaching the client as an operator's termination would.
   */
  retireLinks(role: 'source' | 'target', reason: string): void {
    for (const s of this.sessions.values()) s.retireLink(role, reason);
  }

  /** The state changed: sessions open their target links now if the new state splits reads. */
  prewarmLinks(): void {
    for (const s of this.sessions.values()) s.prewarm();
  }

  /** Every logged-in client session (GET /clients), oldest first, at most `limit`. */
  describeSessions(limit = 1000): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const s of this.sessions.values()) {
      if (out.length >= limit) break;
      out.push(s.describe());
    }
    return out;
  }

  /** True while new write units are parked. */
  holding(): boolean {
    return this.holdingWrites;
  }

  private holdTimer: NodeJS.Timeout | null = null;

  private clearHoldTimer(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
  }

  /** Holds new writes for at most `maxMs` unless a release (or another hold) comes first. */
  holdWritesFor(maxMs: number): void {
    this.clearHoldTimer();
    this.holdingWrites = true;
    this.retireLinks(this.opts.router.policy().writesTo, 'write hold before a writer change (fence)');
    this.holdTimer = setTimeout(() => this.releaseWrites(), maxMs);
    this.holdTimer.unref();
  }

  /** Ends the hold: parked units are routed by the state in force now. */
  releaseWrites(): void {
    this.clearHoldTimer();
    this.holdingWrites = false;
    for (const s of this.sessions.values()) s.replaceRetired();
    const parked = [...this.parkedSessions];
    this.parkedSessions.clear();
    for (const s of parked) s.releaseParked();
  }

  /**
   * Waits until no session has a transaction or statement in flight on `role` (max `maxMs`), then cancels
   * what is left (rollback step 2). Returns how long it waited and how many sessions were cancelled.
   */
  async drainRole(role: 'source' | 'target', maxMs: number): Promise<{ waitedMs: number; cancelled: number }> {
    const started = Date.now();
    const busy = () => [...this.sessions.values()].filter((s) => s.busyOn(role));
    while (busy().length > 0 && Date.now() - started < maxMs) await new Promise((r) => setTimeout(r, 20));
    const left = busy();
    for (const s of left) s.cancelOn(role);
    return { waitedMs: Date.now() - started, cancelled: left.length };
  }

  /**
   * Graceful shutdown: stop accepting, close idle sessions now and others when their transaction ends;
   * after `timeoutMs` close whatever is left.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.loggingIn) s.destroy();
    for (const s of this.sessions.values()) s.drain();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of [...this.sessions.values()]) s.fatal(SqlState.AdminShutdown, 'terminating connection due to administrator command');
    await closed;
  }
}
