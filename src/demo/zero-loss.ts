/**
 * The walkthrough's closing check, on the databases themselves (control-plane logins, not the proxy):
 * once the replica has applied everything the writer flushed, every acknowledged transaction of the ledger is
 * present on both sides, the TPC-B balances add up (branches = tellers = accounts = history), and every
 * application table has the same checksum on both sides.
 */
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';

export const CHECKED_TABLES = ['users', 'orders', 'transactions', 'tpcb_branches', 'tpcb_tellers', 'tpcb_accounts', 'tpcb_history'] as const;

export interface SideCheck {
  readonly side: 'source' | 'target';
  /** Acknowledged transactions missing on this side (keys `client:seq`, at most 10 shown). */
  readonly missing: number;
  readonly missingKeys: string[];
  /** sum(bbalance), sum(tbalance), sum(abalance), sum(delta): equal when every transaction is whole. */
  readonly sums: [string, string, string, string];
  readonly checksums: Record<string, string>;
}

export interface ZeroLossReport {
  readonly writer: 'source' | 'target';
  readonly acked: number;
  readonly replicaCaughtUp: boolean;
  readonly sides: readonly SideCheck[];
  readonly lost: number;
  readonly balancesAddUp: boolean;
  readonly checksumsEqual: boolean;
  /** Tables whose checksums differ. */
  readonly differing: string[];
  readonly ok: boolean;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query("SET TimeZone = 'UTC'; SET extra_float_digits = 3; SET DateStyle = 'ISO, MDY'");
    return await fn(c);
  } finally {
    await c.end();
  }
}

/**
 * Waits (up to `timeoutMs`) until the replica's subscription has applied the writer's flushed WAL position
 * (pg_stat_subscription.latest_end_lsn, https://www.postgresql.org/docs/15/monitoring-stats.html).
 */
export async function waitApplied(writerUrl: string, replicaUrl: string, subscription: string, timeoutMs = 30_000): Promise<boolean> {
  const lsn = await withClient(writerUrl, async (c) => (await c.query<{ l: string }>('SELECT pg_current_wal_flush_lsn()::text AS l')).rows[0]!.l);
  const deadline = Date.now() + timeoutMs;
  return withClient(replicaUrl, async (c) => {
    for (;;) {
      const r = await c.query<{ ok: boolean }>('SELECT latest_end_lsn >= $1::pg_lsn AS ok FROM pg_stat_subscription WHERE subname = $2 AND relid IS NULL', [lsn, subscription]);
      if (r.rows[0]?.ok) return true;
      if (Date.now() > deadline) return false;
      await sleep(100);
    }
  });
}

async function checkSide(side: 'source' | 'target', url: string, acked: ReadonlySet<string>): Promise<SideCheck> {
  return withClient(url, async (c) => {
    const present = new Set((await c.query<{ k: string }>("SELECT client || ':' || seq AS k FROM tpcb_history")).rows.map((r) => r.k));
    const missingKeys: string[] = [];
    let missing = 0;
    for (const k of acked) {
      if (present.has(k)) continue;
      missing++;
      if (missingKeys.length < 10) missingKeys.push(k);
    }
    const s = (await c.query<{ b: string; t: string; a: string; h: string }>(`SELECT
      (SELECT coalesce(sum(bbalance), 0)::text FROM tpcb_branches) AS b, (SELECT coalesce(sum(tbalance), 0)::text FROM tpcb_tellers) AS t,
      (SELECT coalesce(sum(abalance), 0)::text FROM tpcb_accounts) AS a, (SELECT coalesce(sum(delta), 0)::text FROM tpcb_history) AS h`)).rows[0]!;
    const checksums: Record<string, string> = {};
    for (const table of CHECKED_TABLES) {
      const r = await c.query<{ n: string; md5: string }>(
        `SELECT count(*)::text AS n, md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), '')) AS md5 FROM ${table} x`,
      );
      checksums[table] = `${r.rows[0]!.n} rows, md5 ${r.rows[0]!.md5}`;
    }
    return { side, missing, missingKeys, sums: [s.b, s.t, s.a, s.h], checksums };
  });
}

export async function zeroLossCheck(o: {
  writer: 'source' | 'target';
  sourceUrl: string;
  targetUrl: string;
  /** The subscription on the replica that carries the writer's changes. */
  subscription: string;
  acked: ReadonlySet<string>;
}): Promise<ZeroLossReport> {
  const writerUrl = o.writer === 'source' ? o.sourceUrl : o.targetUrl;
  const replicaUrl = o.writer === 'source' ? o.targetUrl : o.sourceUrl;
  const replicaCaughtUp = await waitApplied(writerUrl, replicaUrl, o.subscription);
  const sides = [await checkSide('source', o.sourceUrl, o.acked), await checkSide('target', o.targetUrl, o.acked)];
  const lost = Math.max(...sides.map((s) => s.missing));
  const balancesAddUp = sides.every((s) => s.sums.every((v) => v === s.sums[0]));
  const differing = CHECKED_TABLES.filter((t) => sides[0]!.checksums[t] !== sides[1]!.checksums[t]);
  const checksumsEqual = differing.length === 0;
  return { writer: o.writer, acked: o.acked.size, replicaCaughtUp, sides, lost, balancesAddUp, checksumsEqual, differing, ok: replicaCaughtUp && lost === 0 && balancesAddUp && checksumsEqual };
}
