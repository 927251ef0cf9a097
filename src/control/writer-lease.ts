/**
 * The Redis lease of a writer change (issue 14 Deliver 3: "a Redis lease plus a record in both databases"). A
 * switchover takes it before it holds a single write, so a second request on any sidecar is refused at once
 * with the holder's name; a rollback runner takes it too while it runs (best effort: the rollback goes on
 * without it). The lease is renewed while its holder lives and expires `ttlMs` after it dies (kill -9). The
 * databases' writer lock (src/replication/writer-record.ts) stays the source of truth: when Redis cannot be
 * reached the change goes on under that lock alone.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { log } from '../support/log.js';

export interface LeaseStore {
  /** Takes the lease if it is free; else returns who holds it. Rejects when the store cannot be reached. */
  acquire(holder: string, token: string, ttlMs: number): Promise<{ ok: true } | { ok: false; holder: string }>;
  /** Extends the lease while `token` still holds it; false when it was lost (expired, taken). */
  renew(token: string, ttlMs: number): Promise<boolean>;
  release(token: string): Promise<void>;
  close(): Promise<void>;
}

export type LeaseResult =
  | { readonly ok: true; readonly release: () => Promise<void>; /** Why it runs without a lease (Redis unreachable). */ readonly unleased?: string }
  | { readonly ok: false; readonly holder: string; readonly reason: string };

export const DEFAULT_LEASE_TTL_MS = 15_000;

/** Takes and keeps the lease for one writer change. */
export class WriterLease {
  constructor(private readonly store: LeaseStore, private readonly ttlMs = DEFAULT_LEASE_TTL_MS) {}

  async take(holder: string, what: string): Promise<LeaseResult> {
    const token = randomUUID();
    let got: Awaited<ReturnType<LeaseStore['acquire']>>;
    try {
      got = await this.store.acquire(holder, token, this.ttlMs);
    } catch (e) {
      const why = `Redis unreachable (${(e as Error).message}): the databases' writer lock alone guards this ${what}`;
      log.warn({ what }, why);
      return { ok: true, release: async () => undefined, unleased: why };
    }
    if (!got.ok) return { ok: false, holder: got.holder, reason: `another writer change is running: ${got.holder} holds the writer lease (expires ${Math.round(this.ttlMs / 1000)} s after its holder dies)` };
    const timer = setInterval(() => {
      this.store.renew(token, this.ttlMs).then(
        (held) => held || log.warn({ what }, 'the writer lease was lost (expired or taken); the databases\' writer lock still guards the change'),
        () => undefined, // Redis away: the lease may expire; the databases' lock holds.
      );
    }, Math.max(50, Math.floor(this.ttlMs / 3)));
    timer.unref();
    return {
      ok: true,
      release: async () => {
        clearInterval(timer);
        await this.store.release(token).catch(() => undefined);
      },
    };
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** One sidecar without Redis: the lease lives in this process. */
export class MemoryLeaseStore implements LeaseStore {
  private held: { holder: string; token: string; until: number } | null = null;
  constructor(private readonly now: () => number = Date.now) {}
  async acquire(holder: string, token: string, ttlMs: number) {
    if (this.held && this.held.until > this.now()) return { ok: false as const, holder: this.held.holder };
    this.held = { holder, token, until: this.now() + ttlMs };
    return { ok: true as const };
  }
  async renew(token: string, ttlMs: number) {
    if (this.held?.token !== token || this.held.until <= this.now()) return false;
    this.held.until = this.now() + ttlMs;
    return true;
  }
  async release(token: string) {
    if (this.held?.token === token) this.held = null;
  }
  async close() {}
}

// Compare-and-extend and compare-and-delete on the token (https://redis.io/docs/latest/develop/use/patterns/distributed-locks/).
const RENEW = `local v = redis.call('GET', KEYS[1]) if v and cjson.decode(v)['token'] == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE = `local v = redis.call('GET', KEYS[1]) if v and cjson.decode(v)['token'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** `<prefix>writer-lease`: `{holder, token}` with a TTL (SET NX PX). */
export class RedisLeaseStore implements LeaseStore {
  private readonly c: Redis;
  private readonly key: string;
  constructor(url: string, prefix = 'pgcutover:') {
    this.key = `${prefix}writer-lease`;
    this.c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: true, commandTimeout: 1000, connectTimeout: 1000, retryStrategy: (n: number) => Math.min(50 * n, 1000) });
    this.c.on('error', (e: Error) => log.debug({ err: e.message }, 'writer lease connection error'));
  }
  private async ready(): Promise<void> {
    if (this.c.status === 'wait') await this.c.connect();
  }
  async acquire(holder: string, token: string, ttlMs: number) {
    await this.ready();
    const set = await this.c.set(this.key, JSON.stringify({ holder, token }), 'PX', ttlMs, 'NX');
    if (set === 'OK') return { ok: true as const };
    const cur = await this.c.get(this.key);
    let who = 'another sidecar';
    try {
      who = (JSON.parse(cur ?? '{}') as { holder?: string }).holder ?? who;
    } catch {
      // not ours: name it generically
    }
    return { ok: false as const, holder: who };
  }
  async renew(token: string, ttlMs: number) {
    return Number(await this.c.eval(RENEW, 1, this.key, token, String(ttlMs))) === 1;
  }
  async release(token: string) {
    await this.c.eval(RELEASE, 1, this.key, token);
  }
  async close() {
    this.c.disconnect();
  }
}
