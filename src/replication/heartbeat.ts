/**
 * End-to-end lag probe (DESIGN.md "Replication state machine"): a one-row table the sidecar updates
 * every second on the current primary and reads on the other side. Timestamps come from the
 * sidecar's clock on both ends, so server clock skew does not enter the measurement. The table is
 * published like any other, so the measured path is exactly the replicated one.
 */
import { log } from '../support/log.js';
import type { Db } from './control-conn.js';
import { errorText } from './control-conn.js';
import { heartbeatLagMs } from './heartbeat-lag.js';

export const HEARTBEAT_TABLE = 'pgcutover_heartbeat';

/** Creates the heartbeat table (schema public) if missing. Same DDL on both sides. */
export async function ensureHeartbeatTable(db: Db): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS public.${HEARTBEAT_TABLE} (id int PRIMARY KEY, at timestamptz NOT NULL)`);
}

export interface HeartbeatOptions {
  /** Session on the current primary (a control session: it must write while the other side is fenced). */
  primary: Db;
  /** Session on the replica. */
  replica: Db;
  /** Default 1000 ms. */
  intervalMs?: number;
  /** Row id; several sidecars may share one row. Default 1. */
  id?: number;
  /** Injected clock (ms). Default Date.now. */
  now?: () => number;
  /** Called after each read with the lag in seconds (null: unknown). */
  onSample?: (lagSeconds: number | null) => void;
}

export interface HeartbeatProbe {
  /** Lag in seconds as of now (age of the oldest unreplicated heartbeat); null until measurable. */
  lagSeconds(): number | null;
  /** The last error writing or reading, if the last tick failed. */
  lastError(): string | null;
  /** The writer changed (switchover or rollback): write on `primary`, read on `replica` from now on. */
  setPrimary(primary: Db, replica: Db): void;
  /** One write and one read now (also what the timer runs). */
  tick(): Promise<void>;
  stop(): void;
}

const KEEP = 600;

export function startHeartbeat(opts: HeartbeatOptions): HeartbeatProbe {
  const now = opts.now ?? Date.now;
  const id = opts.id ?? 1;
  let primary = opts.primary;
  let replica = opts.replica;
  let written: number[] = [];
  let replicatedAt: number | null = null;
  let error: string | null = null;
  let running: Promise<void> | null = null;
  let stopped = false;

  const tickOnce = async (): Promise<void> => {
    try {
      const at = now();
      await primary.query(
        `INSERT INTO public.${HEARTBEAT_TABLE} (id, at) VALUES ($1, to_timestamp($2 / 1000.0))
         ON CONFLICT (id) DO UPDATE SET at = EXCLUDED.at`,
        [id, at],
      );
      written.push(at);
      if (written.length > KEEP) written = written.slice(-KEEP);
      const r = await replica.query<{ ms: string | null }>(
        `SELECT (extract(epoch FROM at) * 1000)::float8 AS ms FROM public.${HEARTBEAT_TABLE} WHERE id = $1`,
        [id],
      );
      const ms = r.rows[0]?.ms;
      replicatedAt = ms === undefined || ms === null ? null : Math.round(Number(ms));
      error = null;
      opts.onSample?.(probe.lagSeconds());
    } catch (err) {
      error = errorText(err);
      log.debug({ err: error }, 'heartbeat tick failed');
    }
  };

  const probe: HeartbeatProbe = {
    lagSeconds() {
      const ms = heartbeatLagMs(written, replicatedAt, now());
      return ms === null ? null : ms / 1000;
    },
    lastError: () => error,
    setPrimary(p, r) {
      primary = p;
      replica = r;
      // Old writes went to the other side; comparing them with the new replica would mislead.
      written = [];
      replicatedAt = null;
    },
    tick() {
      running ??= tickOnce().finally(() => (running = null));
      return running;
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
  const timer = setInterval(() => {
    if (!stopped && !running) void probe.tick();
  }, opts.intervalMs ?? 1000);
  timer.unref();
  return probe;
}
