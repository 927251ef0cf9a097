/**
 * Recorded history for the report's charts and the success conditions: a bounded time series of samples
 * (state, read split, p99 per backend, error rate, replication lag, shadow match rate, slot retention) and the
 * daily p99 per backend. Two stores with one interface, like the cutover state: in-process, or Redis (shared
 * by every sidecar, kept across restarts). Retention is bounded by downsampling: the newest `fineMax` samples
 * at full rate, and every `coarseEvery`-th sample in a second series of `coarseMax`, so a run of months still
 * draws from a few thousand points.
 */
import { Redis } from 'ioredis';
import type { CutoverState } from '../domain/states.js';
import { whenReady } from '../control/redis-connect.js';
import type { Role } from '../domain/role.js';

export interface BackendP99 {
  readonly read: number | null;
  readonly write: number | null;
}

export interface HistorySample {
  readonly at: number;
  readonly state: CutoverState;
  /** Reads sent to the target (%), as routed at that moment (the rollback ramp included). */
  readonly readPercent: number;
  /** p99 of the units in the interval (ms). */
  readonly p99: { readonly source: BackendP99; readonly target: BackendP99 };
  /** Server-side failures / statements through the proxy in the interval (fraction); null without traffic. */
  readonly errorRate: number | null;
  readonly lagSeconds: number | null;
  /** Compared shadow statements that matched, cumulative for the shadow service (fraction); null without shadows. */
  readonly shadowMatchRate: number | null;
  readonly slotRetainedBytes: { readonly source: number | null; readonly target: number | null };
}

export interface DailyP99 {
  /** Day number: floor(epoch ms / day length); the day length is scaled by --time-scale. */
  readonly day: number;
  readonly backend: Role;
  readonly p99Ms: number | null;
  readonly units: number;
}

export interface HistoryStore {
  append(s: HistorySample): Promise<void>;
  /** Oldest first: the coarse series before the fine one. */
  samples(): Promise<HistorySample[]>;
  putDaily(d: DailyP99): Promise<void>;
  daily(): Promise<DailyP99[]>;
  close(): Promise<void>;
}

export interface Retention {
  readonly fineMax: number;
  readonly coarseEvery: number;
  readonly coarseMax: number;
  readonly dailyMax: number;
}

export const DEFAULT_RETENTION: Retention = { fineMax: 720, coarseEvery: 10, coarseMax: 2000, dailyMax: 400 };

/** The coarse samples older than the oldest fine one, then the fine ones. */
export function mergeSeries(coarse: readonly HistorySample[], fine: readonly HistorySample[]): HistorySample[] {
  const first = fine[0]?.at ?? Infinity;
  return [...coarse.filter((s) => s.at < first), ...fine];
}

export class MemoryHistory implements HistoryStore {
  private fine: HistorySample[] = [];
  private coarse: HistorySample[] = [];
  private n = 0;
  private readonly days = new Map<string, DailyP99>();
  constructor(private readonly r: Retention = DEFAULT_RETENTION) {}
  async append(s: HistorySample): Promise<void> {
    this.fine.push(s);
    if (this.fine.length > this.r.fineMax) this.fine.splice(0, this.fine.length - this.r.fineMax);
    if (this.n++ % this.r.coarseEvery === 0) {
      this.coarse.push(s);
      if (this.coarse.length > this.r.coarseMax) this.coarse.splice(0, this.coarse.length - this.r.coarseMax);
    }
  }
  async samples(): Promise<HistorySample[]> {
    return mergeSeries(this.coarse, this.fine);
  }
  async putDaily(d: DailyP99): Promise<void> {
    this.days.set(`${d.backend}:${d.day}`, d);
    if (this.days.size > this.r.dailyMax * 2) {
      const oldest = [...this.days.entries()].sort((a, b) => a[1].day - b[1].day)[0]!;
      this.days.delete(oldest[0]);
    }
  }
  async daily(): Promise<DailyP99[]> {
    return [...this.days.values()].sort((a, b) => a.day - b.day);
  }
  async close(): Promise<void> {}
}

/** Redis lists `<prefix>history:fine|coarse` (RPUSH + LTRIM), a counter for the downsampling, a hash of days. */
export class RedisHistory implements HistoryStore {
  private readonly keys: { fine: string; coarse: string; count: string; daily: string };
  private constructor(private readonly c: Redis, prefix: string, private readonly r: Retention) {
    this.keys = { fine: `${prefix}history:fine`, coarse: `${prefix}history:coarse`, count: `${prefix}history:count`, daily: `${prefix}history:daily` };
  }

  static async open(url: string, prefix: string, r: Retention = DEFAULT_RETENTION): Promise<RedisHistory> {
    const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 2000 });
    c.on('error', () => undefined); // commands report their own failure; the recorder logs it
    await whenReady(c, 5000);
    return new RedisHistory(c, prefix, r);
  }

  async append(s: HistorySample): Promise<void> {
    const json = JSON.stringify(s);
    const n = await this.c.incr(this.keys.count);
    const m = this.c.multi().rpush(this.keys.fine, json).ltrim(this.keys.fine, -this.r.fineMax, -1);
    if ((n - 1) % this.r.coarseEvery === 0) m.rpush(this.keys.coarse, json).ltrim(this.keys.coarse, -this.r.coarseMax, -1);
    await m.exec();
  }

  async samples(): Promise<HistorySample[]> {
    const [coarse, fine] = await Promise.all([this.c.lrange(this.keys.coarse, 0, -1), this.c.lrange(this.keys.fine, 0, -1)]);
    return mergeSeries(parseAll<HistorySample>(coarse), parseAll<HistorySample>(fine));
  }

  async putDaily(d: DailyP99): Promise<void> {
    await this.c.hset(this.keys.daily, `${d.backend}:${d.day}`, JSON.stringify(d));
    const fields = await this.c.hkeys(this.keys.daily);
    if (fields.length > this.r.dailyMax * 2) {
      const old = fields.sort((a, b) => Number(a.split(':')[1]) - Number(b.split(':')[1])).slice(0, fields.length - this.r.dailyMax * 2);
      await this.c.hdel(this.keys.daily, ...old);
    }
  }

  async daily(): Promise<DailyP99[]> {
    const all = await this.c.hvals(this.keys.daily);
    return parseAll<DailyP99>(all).sort((a, b) => a.day - b.day);
  }

  async close(): Promise<void> {
    this.c.disconnect();
  }
}

function parseAll<T>(rows: readonly string[]): T[] {
  const out: T[] = [];
  for (const r of rows) {
    try {
      out.push(JSON.parse(r) as T);
    } catch {
      // a foreign or corrupt entry: skipped, not fatal to a report
    }
  }
  return out;
}
