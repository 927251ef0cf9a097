/**
 * The write pause's transport over Redis: presence keys with a short TTL (`<prefix>sidecar:<id>`, refreshed every
 * `heartbeatMs`, gone `ttlMs` after a sidecar is killed or loses Redis; a pause stops waiting for it then), pause/release messages on a channel, and
 * acknowledgements in a hash per pause. The pause in force and the last release are also kept under
 * `<prefix>pause:current` / `pause:released`, so a sidecar whose subscription missed a message (reconnect)
 * still sees it on its next poll.
 */
import { Redis } from 'ioredis';
import { log } from '../support/log.js';
import { redactUrl, whenReady } from './redis-connect.js';
import { parsePauseMessage, type AckResult, type PauseBus, type PauseMessage } from './write-pause.js';

export const DEFAULT_HEARTBEAT_MS = 500;
export const DEFAULT_PRESENCE_TTL_MS = 3000;

export interface RedisPauseBusOptions {
  url: string;
  prefix?: string;
  sidecarId: string;
  /** Presence refresh period (default 500 ms). */
  heartbeatMs?: number;
  /** A sidecar silent this long is not waited for (default 3000 ms: six missed beats; a kill -9'd one drops out within it). */
  ttlMs?: number;
  /** Poll of `pause:current` (default 250 ms). */
  pollMs?: number;
}

export class RedisPauseBus implements PauseBus {
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly keys: { presence: string; channel: string; current: string; released: string; acks: (id: string) => string };
  private readonly cbs = new Set<(m: PauseMessage) => void>();
  private readonly seen = new Set<string>();
  private readonly timers: NodeJS.Timeout[] = [];

  private constructor(private readonly o: RedisPauseBusOptions) {
    const prefix = o.prefix ?? 'pgcutover:';
    this.keys = {
      presence: `${prefix}sidecar:`,
      channel: `${prefix}write-pause`,
      current: `${prefix}pause:current`,
      released: `${prefix}pause:released`,
      acks: (id) => `${prefix}pause:${id}:acks`,
    };
    const io = { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, commandTimeout: 1000, retryStrategy: (n: number) => Math.min(50 * n, 1000) };
    this.cmd = new Redis(o.url, io);
    this.sub = new Redis(o.url, { ...io, enableOfflineQueue: true, commandTimeout: undefined });
    for (const c of [this.cmd, this.sub]) c.on('error', (e: Error) => log.debug({ err: e.message }, 'write-pause bus connection error'));
    this.sub.on('message', (channel: string, msg: string) => {
      if (channel === this.keys.channel) this.deliver(msg);
    });
  }

  static async open(o: RedisPauseBusOptions): Promise<RedisPauseBus> {
    const bus = new RedisPauseBus(o);
    try {
      await Promise.all([whenReady(bus.cmd, 5000), whenReady(bus.sub, 5000)]);
      await bus.sub.subscribe(bus.keys.channel);
      await bus.beat();
    } catch (e) {
      bus.cmd.disconnect();
      bus.sub.disconnect();
      throw new Error(`cannot open the write-pause bus at ${redactUrl(o.url)}: ${(e as Error).message}`);
    }
    const every = (ms: number, fn: () => Promise<unknown>) => {
      const t = setInterval(() => void fn().catch(() => {}), ms);
      t.unref();
      bus.timers.push(t);
    };
    every(o.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, () => bus.beat());
    every(o.pollMs ?? 250, async () => {
      const [cur, rel] = await bus.cmd.mget(bus.keys.current, bus.keys.released);
      if (cur) bus.deliver(cur);
      if (rel) bus.deliver(rel);
    });
    return bus;
  }

  private beat(): Promise<unknown> {
    return this.cmd.set(this.keys.presence + this.o.sidecarId, String(Date.now()), 'PX', this.o.ttlMs ?? DEFAULT_PRESENCE_TTL_MS);
  }

  /** Each message once, whether it came by pub/sub or by poll. */
  private deliver(json: string): void {
    const m = parsePauseMessage(json);
    if (m === null) return void log.warn('ignoring an invalid write-pause message');
    const key = `${m.kind}:${m.id}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.seen.size > 1000) this.seen.delete(this.seen.values().next().value!);
    for (const cb of this.cbs) cb(m);
  }

  async live(): Promise<string[]> {
    const ids: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await this.cmd.scan(cursor, 'MATCH', `${this.keys.presence}*`, 'COUNT', 200);
      cursor = next;
      for (const k of keys) ids.push(k.slice(this.keys.presence.length));
    } while (cursor !== '0');
    return [...new Set(ids)];
  }

  async publish(msg: PauseMessage): Promise<void> {
    const json = JSON.stringify(msg);
    if (msg.kind === 'pause') await this.cmd.set(this.keys.current, json, 'PX', msg.maxHoldMs);
    else await this.cmd.multi().del(this.keys.current).set(this.keys.released, json, 'PX', 60_000).exec();
    await this.cmd.publish(this.keys.channel, json);
  }

  onMessage(cb: (m: PauseMessage) => void): () => void {
    this.cbs.add(cb);
    return () => void this.cbs.delete(cb);
  }

  async ack(pauseId: string, sidecarId: string, result: AckResult, detail: string): Promise<void> {
    const key = this.keys.acks(pauseId);
    await this.cmd.multi().hset(key, sidecarId, JSON.stringify({ result, detail })).pexpire(key, 600_000).exec();
  }

  async acks(pauseId: string): Promise<Map<string, { result: AckResult; detail: string }>> {
    const raw = await this.cmd.hgetall(this.keys.acks(pauseId));
    const out = new Map<string, { result: AckResult; detail: string }>();
    for (const [id, v] of Object.entries(raw)) {
      try {
        const p = JSON.parse(v) as { result: AckResult; detail: string };
        if (p.result === 'held' || p.result === 'failed') out.set(id, { result: p.result, detail: String(p.detail) });
      } catch {
        // Not ours: ignore.
      }
    }
    return out;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    await this.cmd.del(this.keys.presence + this.o.sidecarId).catch(() => 0);
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}
