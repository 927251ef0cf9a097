/**
 * The walkthrough's load: TPC-B-like write transactions (pgbench's, on tpcb_* tables) and point reads, through
 * the proxy with node-postgres, keeping an acknowledged-write ledger: every transaction whose COMMIT the proxy
 * acknowledged, by its history key (client, seq). A transaction whose COMMIT got no answer is "in doubt"
 * (it may or may not have committed) and is not in the ledger; the zero-loss check asks only that every
 * acknowledged one is present.
 */
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';

/** pgbench's scale 10 branches and tellers: hot rows (every chunk keeps changing) without one row serialising every writer. */
export const TPCB_BRANCHES = 10;
export const TPCB_TELLERS = 100;
export const TPCB_ACCOUNTS = 10_000;

/** The tables (created on both sides; filled on the source only, replication copies them). */
export const TPCB_DDL = `
CREATE TABLE tpcb_branches (bid int PRIMARY KEY, bbalance bigint NOT NULL DEFAULT 0);
CREATE TABLE tpcb_tellers  (tid int PRIMARY KEY, bid int NOT NULL, tbalance bigint NOT NULL DEFAULT 0);
CREATE TABLE tpcb_accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance bigint NOT NULL DEFAULT 0);
CREATE TABLE tpcb_history  (client int NOT NULL, seq int NOT NULL, tid int NOT NULL, bid int NOT NULL, aid int NOT NULL,
                            delta int NOT NULL, mtime timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (client, seq));
`;

export async function createTpcb(c: pg.Client, fill: boolean): Promise<void> {
  await c.query(TPCB_DDL);
  if (!fill) return;
  await c.query(`INSERT INTO tpcb_branches SELECT g, 0 FROM generate_series(1, ${TPCB_BRANCHES}) g;
    INSERT INTO tpcb_tellers SELECT g, 1 + (g - 1) % ${TPCB_BRANCHES}, 0 FROM generate_series(1, ${TPCB_TELLERS}) g;
    INSERT INTO tpcb_accounts SELECT g, 1 + (g - 1) % ${TPCB_BRANCHES}, 0 FROM generate_series(1, ${TPCB_ACCOUNTS}) g;
    ANALYZE tpcb_branches, tpcb_tellers, tpcb_accounts`);
}

export interface LoadOptions {
  url: string;
  writers: number;
  readers: number;
  /** Write transactions per second, all writers together (paced; fewer if the database is slower). */
  tps: number;
  /** Reads per second, all readers together. */
  rps: number;
}

export interface LoadStats {
  /** Acknowledged transactions, by `client:seq`. */
  readonly acked: Set<string>;
  /** COMMITs sent without an answer (connection lost): may or may not have committed. */
  inDoubt: number;
  reads: number;
  /** Failures by SQLSTATE (or `connection`), writes and reads together. */
  readonly errors: Map<string, number>;
}

export interface Load {
  readonly stats: LoadStats;
  /** Acknowledged write transactions so far. */
  acked(): number;
  stop(): Promise<void>;
}

const rnd = (n: number) => 1 + Math.floor(Math.random() * n);

export function startLoad(o: LoadOptions): Load {
  const stats: LoadStats = { acked: new Set(), inDoubt: 0, reads: 0, errors: new Map() };
  let stopping = false;
  const count = (e: unknown) => {
    const code = (e as { code?: string }).code ?? 'connection';
    stats.errors.set(code, (stats.errors.get(code) ?? 0) + 1);
  };
  /** One client connection at a time; on a failure it backs off 200 ms and reconnects (a pool would). */
  const loop = async (everyMs: number, body: (c: pg.Client) => Promise<void>) => {
    let next = Date.now();
    while (!stopping) {
      const c = new pg.Client({ connectionString: o.url, connectionTimeoutMillis: 5000, application_name: 'walkthrough-load' });
      c.on('error', () => undefined);
      try {
        await c.connect();
        while (!stopping) {
          await body(c);
          next += everyMs;
          const wait = next - Date.now();
          if (wait > 0) await sleep(wait);
          else next = Date.now();
        }
      } catch (e) {
        count(e);
        await sleep(200);
        next = Date.now();
      } finally {
        await c.end().catch(() => undefined);
      }
    }
  };
  const writer = async (client: number) => {
    let seq = 0;
    await loop((1000 * o.writers) / o.tps, async (c) => {
      const key = `${client}:${++seq}`;
      const aid = rnd(TPCB_ACCOUNTS);
      const tid = rnd(TPCB_TELLERS);
      const bid = rnd(TPCB_BRANCHES);
      const delta = Math.floor(Math.random() * 10_001) - 5000;
      let committing = false;
      try {
        await c.query('BEGIN');
        await c.query('UPDATE tpcb_accounts SET abalance = abalance + $1 WHERE aid = $2', [delta, aid]);
        await c.query('SELECT abalance FROM tpcb_accounts WHERE aid = $1', [aid]);
        await c.query('UPDATE tpcb_tellers SET tbalance = tbalance + $1 WHERE tid = $2', [delta, tid]);
        await c.query('UPDATE tpcb_branches SET bbalance = bbalance + $1 WHERE bid = $2', [delta, bid]);
        await c.query('INSERT INTO tpcb_history (client, seq, tid, bid, aid, delta) VALUES ($1, $2, $3, $4, $5, $6)', [client, seq, tid, bid, aid, delta]);
        committing = true;
        await c.query('COMMIT');
        stats.acked.add(key);
      } catch (e) {
        const code = (e as { code?: string }).code;
        if (committing && (code === undefined || /^(08|57)/.test(code))) stats.inDoubt++;
        await c.query('ROLLBACK').catch(() => undefined);
        throw e;
      }
    });
  };
  const reader = () =>
    loop((1000 * o.readers) / o.rps, async (c) => {
      await c.query('SELECT abalance FROM tpcb_accounts WHERE aid = $1', [rnd(TPCB_ACCOUNTS)]);
      stats.reads++;
    });
  const running = [
    ...Array.from({ length: o.writers }, (_, i) => writer(i + 1)),
    ...Array.from({ length: o.readers }, () => reader()),
  ];
  return {
    stats,
    acked: () => stats.acked.size,
    stop: async () => {
      stopping = true;
      await Promise.all(running);
    },
  };
}
