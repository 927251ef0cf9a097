/**
 * Feeds the read-your-writes book (router/freshness.ts): every few milliseconds, one query on the current
 * writer's control connection reads its WAL insert position and what the replicas have applied, in the
 * writer's LSN terms: pg_stat_replication.replay_lsn, which a logical subscriber's apply worker reports as
 * the end of the last transaction it applied (and a physical standby as its replay position), for every
 * replication connection but the proxy's own. The smallest one counts (the reader is only as fresh as the
 * slowest replica). https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-REPLICATION-VIEW
 *
 * The sequence number is taken right before the query is sent, so a session that saw its commit's
 * ReadyForQuery before that knows the reading's writer position covers its commit.
 */
import pg from 'pg';
import { log } from '../support/log.js';
import { parseLsn } from './lsn.js';
import { controlApplicationName } from './control-conn.js';
import type { FreshnessBook, LsnSample } from '../router/freshness.js';
import type { Role } from '../domain/role.js';

const SAMPLE_SQL = `SELECT pg_current_wal_insert_lsn()::text AS w,
  (SELECT min(replay_lsn)::text FROM pg_stat_replication WHERE application_name NOT LIKE 'pg-cutover%') AS r`;

export interface FreshnessSamplerOptions {
  book: FreshnessBook;
  /** The writer now (the cutover state's). */
  writer(): Role;
  /** Control connection settings per backend. */
  control: Record<Role, pg.ClientConfig>;
  everyMs: number;
  /** Each reading's staleness (ms; null unknown), for the metrics. */
  onSample?(stalenessMs: number | null): void;
  /** After each booked reading, before the next one (the target readers' sampler: reader-sampler.ts). */
  afterSample?(x: LsnSample): Promise<void>;
  now?: () => number;
}

export class FreshnessSampler {
  private client: pg.Client | null = null;
  private clientRole: Role | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private closed = false;
  private readonly now: () => number;
  /** The last failure, logged once until a sample succeeds again. */
  private failing = false;

  constructor(private readonly o: FreshnessSamplerOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => void this.sample(), this.o.everyMs);
    this.timer.unref();
  }

  private async connect(role: Role): Promise<pg.Client> {
    if (this.client !== null && this.clientRole === role) return this.client;
    const old = this.client;
    this.client = null;
    void old?.end().catch(() => {});
    const c = new pg.Client({ ...this.o.control[role], application_name: controlApplicationName('freshness') });
    c.on('error', () => {});
    await c.connect();
    this.client = c;
    this.clientRole = role;
    return c;
  }

  private async sample(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    const writer = this.o.writer();
    try {
      const c = await this.connect(writer);
      const seq = this.o.book.begin();
      const r = await c.query(SAMPLE_SQL);
      const row = r.rows[0] as { w: string; r: string | null };
      const at = this.now();
      const x: LsnSample = { seq, writer, writerLsn: parseLsn(row.w), readerLsn: row.r === null ? null : parseLsn(row.r), at };
      this.o.book.add(x);
      this.o.onSample?.(this.o.book.staleness(at));
      this.failing = false;
      await this.o.afterSample?.(x);
    } catch (e) {
      if (!this.failing && !this.closed) log.warn({ err: (e as Error).message, writer }, 'read-your-writes sample failed; reads after writes stay on the writer');
      this.failing = true;
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
