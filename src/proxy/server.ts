/**
 * The listening side of the proxy: accepts clients, runs login, hands them to ClientSession, routes
 * CancelRequests by the proxy's own BackendKeyData, and drains on shutdown.
 */
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { log } from '../support/log.js';
import * as enc from '../protocol/backend-encode.js';
import { SqlState } from '../protocol/sqlstate.js';
import { backendLoginFor, credentialFromLogin } from '../auth/backend-credential.js';
import { LoginThrottle } from '../auth/login-throttle.js';
import { login } from './login.js';
import { ClientSession } from './client-session.js';
import { ProxyStats } from './stats.js';
import { checkStartupParams, type StartupParamsPolicy } from '../protocol/startup-params.js';
import type { Role } from '../domain/role.js';

import { DEFAULT_LOGIN_TIMEOUT_MS, DEFAULT_MAX_PENDING_LOGINS, DEFAULT_THROTTLE, EVICTABLE_AFTER_MS, type ProxyOptions } from './server-options.js';

export { DEFAULT_LOGIN_TIMEOUT_MS, DEFAULT_MAX_PENDING_LOGINS, DEFAULT_THROTTLE, EVICTABLE_AFTER_MS, type ProxyOptions };

export class ProxyServer {
  readonly stats = new ProxyStats();
  private readonly server: net.Server;
  private readonly sessions = new Map<number, ClientSession>();
  /** Connections still in login, oldest first (their own limit, not maxClients; closed on shutdown). */
  private readonly loggingIn = new Map<net.Socket, number>();
  private readonly tls: (() => SecureContext) | null;
  readonly throttle: LoginThrottle;
  private nextId = 1;
  private stopping = false;

  /** The databases served (the backends' own) and the parameters dropped silently. */
  private get startupPolicy(): StartupParamsPolicy {
    const b = this.opts.backends;
    return { databases: new Set([b.source.database, b.target.database]), ignore: new Set(this.opts.ignoreStartupParameters ?? []) };
  }

  constructor(private readonly opts: ProxyOptions) {
    const t = opts.tls;
    if (t && 'context' in t) this.tls = () => t.context();
    else if (t) {
      const ctx = createSecureContext({ cert: t.cert, key: t.key });
      this.tls = () => ctx;
    } else this.tls = null;
    this.throttle = new LoginThrottle(opts.throttle ?? DEFAULT_THROTTLE);
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

  /** Connections that have not logged in yet. */
  get pendingLogins(): number {
    return this.loggingIn.size;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    socket.on('error', () => socket.destroy());
    const refuse = (code: string, message: string) => refuseLogin(socket, code, message);
    if (this.stopping) return refuse(SqlState.AdminShutdown, 'the proxy is shutting down');
    if (this.sessions.size >= this.opts.maxClients) {
      this.stats.clientsRejected++;
      return refuse(SqlState.TooManyConnections, `sorry, too many clients already (max_clients=${this.opts.maxClients})`);
    }
    const address = socket.remoteAddress ?? 'unknown';
    const blockedMs = this.throttle.blockedFor(address);
    if (blockedMs > 0) {
      this.stats.clientsRejected++;
      return refuse(SqlState.InvalidAuthorization, `too many failed login attempts from this address; try again in ${Math.ceil(blockedMs / 1000)} s`);
    }
    // Slowloris: connections that have not logged in have their own, smaller limit. At the limit, the oldest
    // ones that have been at it for EVICTABLE_AFTER_MS are closed: a genuine login takes milliseconds, so they are
    // the least likely to be genuine, and silent sockets can never keep a new client out. A burst of genuine
    // clients, all younger, is let in above the limit (up to --max-clients pending) rather than cut.
    const maxPending = this.opts.maxPendingLogins ?? DEFAULT_MAX_PENDING_LOGINS;
    const now = Date.now();
    while (this.loggingIn.size >= maxPending) {
      const [oldest, since] = this.loggingIn.entries().next().value as [net.Socket, number];
      if (now - since < EVICTABLE_AFTER_MS) break;
      this.loggingIn.delete(oldest);
      this.stats.loginsEvicted++;
      oldest.destroy();
    }
    if (this.loggingIn.size >= Math.max(maxPending, this.opts.maxClients)) {
      this.stats.clientsRejected++;
      return refuse(SqlState.TooManyConnections, 'sorry, too many clients are logging in already');
    }
    this.stats.clientsAccepted++;
    this.loggingIn.set(socket, now);
    void this.runLogin(socket, address).finally(() => this.loggingIn.delete(socket));
  }

  /** Answers a failed password check after the throttle's delay (the connection still counts as logging in). */
  private async passwordFailed(address: string): Promise<void> {
    const v = this.throttle.failed(address);
    if (v.log) {
      const line = { address, failures: v.log.failures, suppressed: v.log.suppressed };
      if (v.blocked) log.warn({ ...line, blockedMs: this.opts.throttle?.blockMs ?? DEFAULT_THROTTLE.blockMs }, 'client address blocked after repeated failed logins');
      else log.warn(line, 'failed client login');
    }
    if (v.delayMs > 0) await new Promise((r) => setTimeout(r, v.delayMs).unref());
  }

  private async runLogin(raw: net.Socket, address: string): Promise<void> {
    const r = await login(raw, {
      users: this.opts.users,
      tls: this.tls ? this.tls() : null,
      requireTls: this.opts.requireTls,
      remoteAddress: address,
      timeoutMs: this.opts.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS,
      onCancel: (pid, secret) => this.cancel(pid, secret),
    });
    // Logged in (or not): from here the connection is a session, or is being answered.
    if (r.kind === 'ok') this.loggingIn.delete(raw);
    switch (r.kind) {
      case 'cancel':
        return;
      case 'fail':
        if (r.sqlstate.startsWith('28')) this.stats.authFailures++;
        else if (r.sqlstate === SqlState.ProtocolViolation) this.stats.protocolErrors++;
        if (r.sqlstate === SqlState.InvalidPassword) await this.passwordFailed(address);
        if (r.legacy) {
          log.info({ code: r.sqlstate, msg: r.message }, 'client login refused');
          r.socket.end(enc.legacyFatal(r.message));
        } else if (r.silent) {
          // As PostgreSQL: logged, and the connection closes without a word.
          log.info({ code: r.sqlstate, msg: r.message }, 'client closed before its StartupMessage could be read');
          r.socket.end();
        } else if (!r.quiet) {
          if (r.sqlstate !== SqlState.InvalidPassword) log.info({ code: r.sqlstate, msg: r.message }, 'client login refused');
          if (!r.socket.destroyed) r.socket.end(enc.errorResponse({ severity: 'FATAL', code: r.sqlstate, message: r.message }));
        }
        setTimeout(() => r.socket.destroy(), 1000).unref();
        return;
      case 'ok': {
        if (this.stopping || this.sessions.size >= this.opts.maxClients) {
          const [code, message] = this.stopping
            ? [SqlState.AdminShutdown, 'the proxy is shutting down']
            : [SqlState.TooManyConnections, `sorry, too many clients already (max_clients=${this.opts.maxClients})`];
          if (!this.stopping) this.stats.clientsRejected++;
          return refuseLogin(r.socket, code, message);
        }
        // Only allow-listed startup parameters reach the backends (issue 14 item 5).
        const checked = checkStartupParams(r.params, this.startupPolicy);
        if (!checked.ok) {
          if (checked.sqlstate === SqlState.ProtocolViolation) this.stats.protocolErrors++;
          log.info({ user: r.user, code: checked.sqlstate, msg: checked.message }, 'client startup parameters refused');
          return refuseLogin(r.socket, checked.sqlstate, checked.message);
        }
        const backendLogin = backendLoginFor(this.opts.backendLogin ?? 'auto', r.entry, credentialFromLogin(r.entry, r.scram), this.opts.backends.source);
        const id = this.nextId++;
        let pid = randomInt(1, 0x7fffffff);
        while (this.sessions.has(pid)) pid = randomInt(1, 0x7fffffff);
        const secret = randomInt(-0x80000000, 0x7fffffff);
        const session = new ClientSession(id, r.socket, r.user, checked.params, pid, secret, {
          backends: this.opts.backends,
          login: backendLogin,
          maxMessageBytes: this.opts.maxMessageBytes,
          maxPreparedBytes: this.opts.maxPreparedBytes,
          stats: this.stats,
          router: this.opts.router,
          readers: this.opts.readers ?? null,
          shadower: this.opts.shadower ?? (() => null),
          writesHolding: () => this.holdingWrites,
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
          rekey: (s, next) => {
            if (this.sessions.has(next) || this.sessions.get(s.pid) !== s) return false;
            this.sessions.delete(s.pid);
            this.sessions.set(next, s);
            return true;
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
  private readonly parkedSessions = new Set<{ releaseParked(): void }>();

  /** Waits until no session has a transaction in flight on `writer`, at most `maxMs`; returns how many still have one. */
  async writesDrained(writer: Role, maxMs: number): Promise<number> {
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
  retireLinks(role: Role, reason: string): void {
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
  async drainRole(role: Role, maxMs: number): Promise<{ waitedMs: number; cancelled: number }> {
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
    for (const s of this.loggingIn.keys()) s.destroy();
    for (const s of this.sessions.values()) s.drain();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const s of [...this.sessions.values()]) s.fatal(SqlState.AdminShutdown, 'terminating connection due to administrator command');
    await closed;
  }
}

/** FATAL `code` to a client at login, then the socket closes shortly after. */
function refuseLogin(socket: net.Socket, code: string, message: string): void {
  socket.end(enc.errorResponse({ severity: 'FATAL', code, message }));
  // A client that never closes its side would otherwise keep the socket, and server.close() in shutdown, forever.
  setTimeout(() => socket.destroy(), 1000).unref();
}
