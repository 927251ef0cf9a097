/**
 * The one sampler of WAL positions: every few milliseconds, one query on the current writer's control
 * connection reads its WAL insert and write positions and what the replicas have applied, in the writer's LSN
 * terms: pg_stat_replication.replay_lsn, which a logical subscriber's apply worker reports as the end of the
 * last transaction it applied (and a physical standby as its replay position), for every replication
 * connection but the proxy's own. The smallest one counts (a reader is only as fresh as the slowest replica).
 * https://www.postgresql.org/docs/15/monitoring-stats.html#MONITORING-PG-STAT-REPLICATION-VIEW
 *
 * Read-your-writes (freshness-sampler.ts) and the shadow's lag explanation (shadow/lag-window.ts) both listen
 * to it: one connection, one reconnect and stop path. It polls only while someone listens.
 */
import type pg from 'pg';
import { log } from '../support/log.js';
import { parseLsn } from './lsn.js';
import { controlServer } from './control-server.js';
import type { ControlSession } from './control-session.js';
import type { Role } from '../domain/role.js';

const SAMPLE_SQL = `SELECT pg_current_wal_insert_lsn()::text AS i, pg_current_wal_lsn()::text AS c,
  (SELECT min(replay_lsn)::text FROM pg_stat_replication WHERE application_name NOT LIKE 'pg-cutover%') AS r`;

export interface WalReading {
  /** When the answer arrived (the sampler's clock). */
  readonly at: number;
  readonly writer: Role;
  /** pg_current_wal_insert_lsn(): covers every commit acknowledged before the query. */
  readonly insertLsn: bigint;
  /** pg_current_wal_lsn(): what the writer has written out (the walsender can send up to here). */
  readonly writeLsn: bigint;
  /** The slowest replica's applied position; null when no replica is connected. */
  readonly replayLsn: bigint | null;
}

export interface WalListener {
  /** Right before the query is sent (read-your-writes numbers its samples here). */
  beforeSample?(): void;
  /** Each answer; the next sample waits for a returned promise. */
  onSample(r: WalReading): void | Promise<void>;
  /** A failed sample (a lost session reconnects on the next one, control-session.ts). */
  onError?(err: Error, writer: Role): void;
}

export interface WalSamplerOptions {
  /** The writer now (the cutover state's): the one sampled. */
  writer(): Role;
  /** Control connection settings per backend. */
  control: Record<Role, pg.ClientConfig>;
  everyMs: number;
  /** application_name suffix after `pg-cutover-control:` (control-conn.ts), e.g. `wal-sampler`. */
  purpose: string;
  now?: () => number;
}

export class WalSampler {
  /** The writer's control session (control-server.ts: reconnect with backoff, statement bound). */
  private session: ControlSession | null = null;
  private sessionRole: Role | null = null;
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private closed = false;
  private readonly listeners = new Set<WalListener>();
  private readonly now: () => number;

  constructor(private readonly o: WalSamplerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Starts polling with the first listener, stops with the last; returns the unsubscribe. */
  listen(l: WalListener): () => void {
    this.listeners.add(l);
    if (this.timer === null && !this.closed) {
      this.timer = setInterval(() => void this.sample(), this.o.everyMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(l);
      if (this.listeners.size === 0) this.pause();
    };
  }

  private pause(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.drop();
  }

  private drop(): void {
    const c = this.session;
    this.session = null;
    this.sessionRole = null;
    void c?.close();
  }

  private sessionFor(role: Role): ControlSession {
    if (this.session !== null && this.sessionRole === role) return this.session;
    this.drop();
    // A failed connect is retried after everyMs, doubling to a second: readings resume within a second of the
    // writer answering again, and a writer that is down is not hammered every few milliseconds.
    const bound = Math.max(5000, this.o.everyMs * 50);
    this.session = controlServer(this.o.control[role], role).session(this.o.purpose, {
      connectTimeoutMs: bound,
      queryTimeoutMs: bound,
      minBackoffMs: this.o.everyMs,
      maxBackoffMs: 1000,
      now: this.now,
    });
    this.sessionRole = role;
    return this.session;
  }

  private async sample(): Promise<void> {
    if (this.busy || this.closed || this.listeners.size === 0) return;
    this.busy = true;
    const writer = this.o.writer();
    const listeners = [...this.listeners];
    try {
      const c = this.sessionFor(writer);
      for (const l of listeners) l.beforeSample?.();
      const r = await c.query<{ i: string; c: string; r: string | null }>(SAMPLE_SQL);
      const row = r.rows[0]!;
      const reading: WalReading = { at: this.now(), writer, insertLsn: parseLsn(row.i), writeLsn: parseLsn(row.c), replayLsn: row.r === null ? null : parseLsn(row.r) };
      for (const l of listeners) await l.onSample(reading);
    } catch (e) {
      if (!this.closed) for (const l of listeners) l.onError?.(e as Error, writer);
      else log.debug({ err: (e as Error).message }, 'wal sample cut by stop');
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const c = this.session;
    this.session = null;
    await c?.close();
  }
}
