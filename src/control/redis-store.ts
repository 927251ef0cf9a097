/**
 * The cutover state shared through Redis (shared/DESIGN.md "Shared state"): one key holding the
 * snapshot JSON, transitions as a compare-and-set on its version in a Lua script that also appends
 * the audit record to a capped stream and publishes the snapshot. Every sidecar subscribes and
 * also polls, so a lost message leaves it behind by one poll at most.
 *
 * Redis unreachable: commands fail fast (no offline queue), the last known snapshot stays in
 * force, health turns degraded, and CAS returns 'unavailable' — except a rollback (and its
 * completion), which is committed locally, because a rollback must run where it is started
 * (DESIGN.md: the fence, not the store, keeps the writes from splitting). When Redis answers
 * again, the poll reconciles: local changes are written back, or yield to newer ones.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { log } from '../support/log.js';
import { parseAuditEntry, type AuditEntry } from '../domain/audit.js';
import { initialSnapshot, type CutoverSnapshot } from '../domain/cutover-machine.js';
import { redactUrl, whenReady } from './redis-connect.js';
import { CAS_LUA, RESTORE_LUA, type ScriptReply, type StoreCommands } from './redis-scripts.js';
import { Subscribers, casPrecondition, parseSnapshot, type CasResult, type StateStore, type StoreHealth } from './store.js';

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]`. */
  readonly url: string;
  /** Key and channel prefix, so several clusters can share one Redis. Default `pgcutover:`. */
  readonly prefix?: string;
  /** Poll interval, the bound on how long a lost pub/sub message can leave this sidecar behind. Default 1000. */
  readonly pollMs?: number;
  /** Without a successful contact for this long the store reports degraded. Default 3 × pollMs. */
  readonly leaseMs?: number;
  /** Per-command timeout: a hung Redis must not hang a transition. Default 1000. */
  readonly commandTimeoutMs?: number;
  /** How long `open` waits for the first connection. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Approximate cap of the audit stream (XADD MAXLEN ~). Default 10000. */
  readonly auditMaxLen?: number;
  /** Written when the key does not exist yet. Default: SOURCE_PRIMARY, version 0. */
  readonly initial?: CutoverSnapshot;
  /** Who this sidecar is, for reconcile audit records. Default `sidecar:<pid>`. */
  readonly by?: string;
  readonly now?: () => number;
  /** Extra ioredis options (TLS, auth). */
  readonly redis?: RedisOptions;
}

const AUDIT_BUFFER_MAX = 1000;

export class RedisStore implements StateStore {
  readonly keys: { readonly state: string; readonly audit: string; readonly channel: string };
  private readonly cmd: Redis & StoreCommands;
  private readonly sub: Redis;
  private readonly subs = new Subscribers((err) => log.error({ err }, 'state subscriber threw'));
  private readonly now: () => number;
  private readonly pollMs: number;
  private readonly leaseMs: number;
  private readonly maxLen: number;
  private readonly by: string;
  private known: CutoverSnapshot;
  /** Local commits made while Redis was unreachable: `base` is the last version Redis confirmed. */
  private pending: { base: number; rollback: CutoverSnapshot } | null = null;
  private buffered: AuditEntry[] = [];
  private lastContact = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private opened = false;
  private closed = false;

  private constructor(opts: RedisStoreOptions) {
    const prefix = opts.prefix ?? 'pgcutover:';
    this.keys = { state: `${prefix}state`, audit: `${prefix}audit`, channel: `${prefix}state-changed` };
    this.now = opts.now ?? Date.now;
    this.pollMs = opts.pollMs ?? 1000;
    this.leaseMs = opts.leaseMs ?? 3 * this.pollMs;
    this.maxLen = opts.auditMaxLen ?? 10_000;
    this.by = opts.by ?? `sidecar:${process.pid}`;
    this.known = opts.initial ?? initialSnapshot(this.now());
    const ioOpts: RedisOptions = {
      ...opts.redis,
      // Fail fast instead of queueing while disconnected; keep reconnecting in the background.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 1000,
      connectTimeout: opts.connectTimeoutMs ?? 5000,
      retryStrategy: (times) => Math.min(50 * times, 1000),
    };
    this.cmd = new Redis(opts.url, { ...ioOpts, lazyConnect: true }) as Redis & StoreCommands;
    this.cmd.defineCommand('pgcutoverCas', { numberOfKeys: 2, lua: CAS_LUA });
    this.cmd.defineCommand('pgcutoverRestore', { numberOfKeys: 2, lua: RESTORE_LUA });
    // Subscribing is queued until connected; ioredis resubscribes after every reconnect.
    this.sub = new Redis(opts.url, { ...ioOpts, lazyConnect: true, enableOfflineQueue: true, commandTimeout: undefined });
    for (const [name, c] of [['command', this.cmd], ['subscriber', this.sub]] as const) {
      c.on('error', (err: Error) => this.markError(`${name} connection: ${err.message}`));
      c.on('close', () => this.markError(`${name} connection closed`));
    }
    this.cmd.on('ready', () => void this.poll());
    this.sub.on('message', (channel: string, message: string) => {
      if (channel !== this.keys.channel) return;
      const s = parseSnapshot(message);
      if (s) this.adopt(s);
      else log.warn({ channel }, 'ignoring an invalid snapshot published on the state channel');
    });
  }

  /** Connect, create the state key if missing, read the current snapshot, start polling. Rejects if Redis cannot be reached. */
  static async open(opts: RedisStoreOptions): Promise<RedisStore> {
    const store = new RedisStore(opts);
    try {
      await Promise.all([store.cmd, store.sub].map((c) => whenReady(c, opts.connectTimeoutMs ?? 5000)));
      await store.sub.subscribe(store.keys.channel);
      const created = { kind: 'transition', by: store.by, at: store.known.since, to: store.known.state, version: store.known.version, reason: 'state key created' };
      await store.restore(store.known, created);
    } catch (err) {
      store.cmd.disconnect();
      store.sub.disconnect();
      throw new Error(`cannot open the Redis state store at ${redactUrl(opts.url)}: ${(err as Error).message}`);
    }
    store.opened = true;
    store.timer = setInterval(() => void store.poll(), store.pollMs);
    store.timer.unref();
    return store;
  }

  current(): CutoverSnapshot {
    return this.known;
  }

  async get(): Promise<CutoverSnapshot> {
    await this.poll();
    return this.known;
  }

  async compareAndSet(expectedVersion: number, next: CutoverSnapshot, audit: AuditEntry): Promise<CasResult> {
    const bad = casPrecondition(expectedVersion, next);
    if (bad) return { ok: false, code: 'invalid', current: this.known, reason: bad };
    if (this.pending) await this.poll(); // write local changes back before anything new
    if (!this.pending) {
      try {
        const [status, stored] = await this.script('pgcutoverCas', expectedVersion, next, audit);
        if (status === 1) {
          this.adopt(next);
          return { ok: true, snapshot: next };
        }
        if (status === 0) {
          const winner = parseSnapshot(stored);
          if (winner) this.adopt(winner);
          return { ok: false, code: 'version-conflict', current: this.known, reason: `version is ${winner?.version ?? '?'}, not ${expectedVersion}` };
        }
        await this.restore(this.known, null); // key lost (Redis restarted empty): put back what we know
        return { ok: false, code: 'version-conflict', current: this.known, reason: 'state key was missing; restored, decide again' };
      } catch (err) {
        this.markError((err as Error).message);
      }
    }
    return this.commitLocally(expectedVersion, next, audit);
  }

  subscribe(cb: (s: CutoverSnapshot) => void): () => void {
    return this.subs.add(cb);
  }

  async audit(limit = 100): Promise<AuditEntry[]> {
    if (limit <= 0) return [];
    const rows = (await this.cmd.xrevrange(this.keys.audit, '+', '-', 'COUNT', limit)) as [string, string[]][];
    this.contact();
    const out: AuditEntry[] = [];
    for (let i = rows.length - 1; i >= 0; i--) {
      const [id, fields] = rows[i]!;
      const at = fields.indexOf('entry');
      const e = at >= 0 ? parseAuditEntry(fields[at + 1] ?? '', id) : null;
      if (e) out.push(e);
    }
    return out;
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    if (!this.pending) {
      try {
        await this.cmd.xadd(this.keys.audit, 'MAXLEN', '~', this.maxLen, '*', 'entry', JSON.stringify(entry));
        this.contact();
        return;
      } catch (err) {
        this.markError((err as Error).message);
      }
    }
    this.buffer(entry);
  }

  health(): StoreHealth {
    const stale = this.now() - this.lastContact > this.leaseMs;
    const down = this.cmd.status !== 'ready';
    const unsent = this.pending !== null || this.buffered.length > 0;
    const degraded = this.lastError !== null || stale || down || unsent;
    const reason =
      this.lastError ??
      (down ? `connection ${this.cmd.status}` : stale ? 'no contact within lease' : unsent ? 'local changes not yet written back' : undefined);
    return { degraded, lastContactMs: this.lastContact, pendingLocal: this.pending !== null, ...(degraded && reason ? { reason } : {}) };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.subs.clear();
    await this.polling?.catch(() => undefined);
    for (const c of [this.sub, this.cmd]) {
      if (c.status === 'ready') await c.quit().catch(() => c.disconnect());
      else c.disconnect();
    }
  }

  /** Read the key and converge: adopt a newer snapshot, restore a lost or older one, reconcile local changes. */
  private poll(): Promise<void> {
    if (this.closed || !this.opened) return Promise.resolve();
    this.polling ??= this.pollOnce().finally(() => (this.polling = null));
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    try {
      const raw = await this.cmd.get(this.keys.state);
      this.contact();
      const remote = raw === null ? null : parseSnapshot(raw);
      if (raw !== null && remote === null) {
        this.lastError = `key ${this.keys.state} does not hold a valid snapshot; keeping version ${this.known.version}`;
        return;
      }
      if (this.pending) await this.reconcile(remote);
      else if (!remote || remote.version < this.known.version) await this.restore(this.known, null);
      else this.adopt(remote);
      await this.flushAudit();
    } catch (err) {
      this.markError((err as Error).message);
    }
  }

  /** Write back a rollback committed during an outage, or yield to what others did meanwhile. */
  private async reconcile(remote: CutoverSnapshot | null): Promise<void> {
    const p = this.pending!;
    const local = this.known;
    let outcome: string;
    if (!remote || remote.version <= p.base) {
      if ((await this.restore(local, null)) !== 1) return; // someone wrote meanwhile: next poll decides again
      outcome = 'local state written back';
    } else if (remote.state === 'ROLLBACK' && local.state === 'SOURCE_PRIMARY') {
      // Our rollback ran to completion during the outage (the databases record the source as writer): a remote
      // ROLLBACK (e.g. a compare-and-set Redis executed after it timed out) must not start a second one.
      const next: CutoverSnapshot = { ...local, version: remote.version + 1, reason: `${local.reason} (rollback completed during a Redis outage, reconciled)` };
      const entry = { at: this.now(), by: this.by, kind: 'transition', from: remote.state, to: next.state, version: next.version, reason: next.reason };
      const [status] = await this.script('pgcutoverCas', remote.version, next, entry);
      if (status !== 1) return; // someone moved again: next poll decides again
      outcome = `wrote back the completed rollback (${local.state}) over ${remote.state} v${remote.version}`;
      this.pending = null;
      this.known = remote; // let adopt see the version step
      this.adopt(next);
    } else if (remote.state === 'ROLLBACK' || remote.state === 'SOURCE_PRIMARY') {
      this.pending = null;
      this.adopt(remote, true);
      outcome = `others already moved to ${remote.state}; adopted`;
    } else {
      // Others moved on without seeing our rollback: a rollback outranks any forward step.
      const next: CutoverSnapshot = { ...p.rollback, version: remote.version + 1, reason: `${p.rollback.reason} (rollback during a Redis outage, reconciled)` };
      const entry = { at: this.now(), by: this.by, kind: 'transition', from: remote.state, to: next.state, version: next.version, reason: next.reason };
      const [status] = await this.script('pgcutoverCas', remote.version, next, entry);
      if (status !== 1) return; // someone moved again: next poll retries
      outcome = `re-applied the rollback over ${remote.state} v${remote.version}`;
      this.pending = null;
      this.known = remote; // let adopt see the version step
      this.adopt(next);
    }
    this.pending = null;
    this.buffer({ at: this.now(), by: this.by, kind: 'reconcile', reason: outcome, detail: { local, remote } });
    log.warn({ local, remote, outcome }, 'reconciled the cutover state after a Redis outage');
  }

  private commitLocally(expectedVersion: number, next: CutoverSnapshot, audit: AuditEntry): CasResult {
    const k = this.known;
    const allowed = next.state === 'ROLLBACK' || (k.state === 'ROLLBACK' && next.state === 'SOURCE_PRIMARY');
    if (!allowed || expectedVersion !== k.version) {
      const reason = `shared state store unreachable (${this.lastError ?? 'unknown'}); only a rollback can be committed locally`;
      return { ok: false, code: 'unavailable', current: k, reason };
    }
    this.pending ??= { base: k.version, rollback: next };
    this.buffer({ ...audit, detail: { ...audit.detail, local: true } });
    this.adopt(next, true);
    log.warn({ state: next.state, version: next.version }, 'Redis unreachable: committed the rollback locally; it is written back when Redis returns');
    return { ok: true, snapshot: next, local: true };
  }

  /** Write `s` unless Redis holds the same or a higher version; adopt whichever stands. Returns the script status. */
  private async restore(s: CutoverSnapshot, audit: AuditEntry | null): Promise<number> {
    const [status, stored] = await this.script('pgcutoverRestore', s.version, s, audit);
    if (status === 1) this.pending = null;
    const winner = status === 1 ? s : parseSnapshot(stored);
    // Redis's snapshot is authoritative unless a local rollback still waits to be written back.
    if (winner && (status === 1 || !this.pending)) this.adopt(winner, true);
    return status;
  }

  private script(name: 'pgcutoverCas' | 'pgcutoverRestore', version: number, s: CutoverSnapshot, audit: AuditEntry | null): Promise<ScriptReply> {
    const { state, audit: auditKey, channel } = this.keys;
    const p = this.cmd[name](state, auditKey, version, JSON.stringify(s), channel, audit ? JSON.stringify(audit) : '', this.maxLen);
    return p.then((r) => {
      this.contact();
      return [Number(r[0]), String(r[1])];
    });
  }

  /** Take `s` if it is newer than what we know (or, with `force`, if it differs) and tell subscribers. */
  private adopt(s: CutoverSnapshot, force = false): void {
    if (this.pending && !force) return; // our local rollback stands until reconciled
    const k = this.known;
    const newer = s.version > k.version || (force && (s.version !== k.version || s.state !== k.state || s.since !== k.since));
    if (!newer) return;
    this.known = s;
    this.subs.emit(s);
  }

  private async flushAudit(): Promise<void> {
    while (this.buffered.length > 0 && !this.pending) {
      const e = this.buffered[0]!;
      await this.cmd.xadd(this.keys.audit, 'MAXLEN', '~', this.maxLen, '*', 'entry', JSON.stringify(e));
      this.buffered.shift();
    }
  }

  private buffer(entry: AuditEntry): void {
    this.buffered.push(entry);
    if (this.buffered.length > AUDIT_BUFFER_MAX) {
      const dropped = this.buffered.splice(0, this.buffered.length - AUDIT_BUFFER_MAX);
      log.error({ dropped: dropped.length }, 'audit buffer full while Redis is unreachable; oldest entries dropped');
    }
  }

  private contact(): void {
    this.lastContact = this.now();
    this.lastError = null;
  }

  private markError(message: string): void {
    if (this.closed) return;
    if (this.lastError === null) log.warn({ err: message }, 'Redis state store unreachable; keeping the last known state');
    this.lastError = message;
  }
}
