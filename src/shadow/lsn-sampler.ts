/**
 * Samples, every few milliseconds, the source's current WAL position and the position its logical
 * subscribers have applied (pg_stat_replication.replay_lsn, reported by the subscriber's apply worker).
 * The gap is the replication lag in bytes: it drives adaptive shadow sampling and marks a mismatch
 * 'lag-suspect' when the target was behind at the transaction's start (DESIGN.md, "Explain").
 */
import pg from 'pg';
import { log } from '../support/log.js';
import { parseLsn } from '../replication/lsn.js';

export interface LsnReading {
  at: number;
  source: number;
  /** Applied on the target, in source LSN terms; null when no subscriber is connected. */
  applied: number | null;
}

/** A WAL position as a plain number (exact below 2^53 bytes, ~9 PB of WAL): the hot path compares numbers. */
export function lsnToNumber(lsn: string): number {
  return Number(parseLsn(lsn));
}

export class LsnSampler {
  last: LsnReading | null = null;
  /** Recent readings, oldest first (about two seconds). */
  private readonly recent: LsnReading[] = [];
  private client: pg.Client | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private closed = false;

  constructor(
    private readonly sourceUrl: pg.ClientConfig,
    private readonly everyMs = 20,
  ) {}

  /** Lag in bytes (0 when unknown: no replication to compare with). */
  get lagBytes(): number {
    const r = this.last;
    if (r === null || r.applied === null) return 0;
    return Math.max(0, r.source - r.applied);
  }

  /**
   * Was replication in motion around this shadow (DESIGN.md, "Explain")? True when, in the readings from the
   * last one before `startedAt` to the first one after `resultAt`, the target was behind the source (it may
   * have lacked what the source had committed when the transaction began) or advanced (it may already have
   * applied the source's own commit of this very statement, as an autocommit write's shadow can run after
   * it). Readings are milliseconds apart, so this leans towards "yes": a suspect difference is explained,
   * not hidden; with replication idle, every difference counts. Undefined until a reading after `resultAt`.
   */
  laggingDuring(startedAt: number, resultAt: number): boolean | undefined {
    let before: LsnReading | null = null;
    const window: LsnReading[] = [];
    let closedAfter = false;
    for (const r of this.recent) {
      if (r.at <= startedAt) before = r;
      else {
        window.push(r);
        if (r.at > resultAt) {
          closedAfter = true;
          break;
        }
      }
    }
    if (!closedAfter) return this.closed ? false : undefined;
    if (before !== null) window.unshift(before);
    let firstApplied: number | null = null;
    for (const r of window) {
      if (r.applied === null) continue;
      if (r.applied < r.source) return true;
      if (firstApplied === null) firstApplied = r.applied;
      else if (r.applied !== firstApplied) return true;
    }
    return false;
  }

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.everyMs);
    this.timer.unref();
  }

  private async sample(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      if (this.client === null) {
        const c = new pg.Client({ ...this.sourceUrl, application_name: 'pg-cutover-lsn' });
        c.on('error', () => {});
        await c.connect();
        this.client = c;
      }
      const r = await this.client.query(
        "select pg_current_wal_lsn()::text as cur, (select min(replay_lsn)::text from pg_stat_replication where application_name not like 'pg-cutover%') as applied",
      );
      const row = r.rows[0] as { cur: string; applied: string | null };
      this.last = { at: Date.now(), source: lsnToNumber(row.cur), applied: row.applied ? lsnToNumber(row.applied) : null };
      this.recent.push(this.last);
      if (this.recent.length > 100) this.recent.shift();
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'lsn sample failed');
      const c = this.client;
      this.client = null;
      void c?.end().catch(() => {});
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.client?.end().catch(() => {});
  }
}
