// Running Debian's pgbench and psql against one endpoint and reading their
// results. https://www.postgresql.org/docs/15/pgbench.html
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export const WORKLOADS = ['select-simple', 'select-prepared', 'tpcb'] as const;
export type Workload = (typeof WORKLOADS)[number];

/** pgbench flags per workload: `-S` is the built-in select-only script, the default script is TPC-B-like. */
export function workloadArgs(w: Workload): string[] {
  switch (w) {
    case 'select-simple': return ['-S', '-M', 'simple'];
    case 'select-prepared': return ['-S', '-M', 'prepared'];
    case 'tpcb': return ['-M', 'prepared'];
    default: { const never: never = w; throw new Error(`unknown workload ${String(never)}`); }
  }
}

/** Statements per transaction, to turn per-transaction latency into per-query. */
export function statementsPerTx(w: Workload): number {
  // tpcb-like: BEGIN, 3 UPDATEs, SELECT, INSERT, END.
  return w === 'tpcb' ? 7 : 1;
}

export interface PgbenchResult {
  tps: number;
  transactions: number;
  /** CPU the proxy process used per transaction (µs), where the bench could read it. */
  proxyCpuUsPerTx?: number;
  /** pgbench's own "latency average" (ms). */
  latencyAvgMs: number;
  /** Mean and p99 of per-transaction latencies from the transaction log (ms). */
  logAvgMs: number;
  p99Ms: number;
}

function env(ep: Endpoint): NodeJS.ProcessEnv {
  // No SSL or GSS negotiation: none of the targets offer it, and it keeps the
  // connection setup identical across targets.
  return { ...process.env, PGPASSWORD: ep.password, PGSSLMODE: 'disable', PGGSSENCMODE: 'disable' };
}

const connArgs = (ep: Endpoint): string[] => ['-h', ep.host, '-p', String(ep.port), '-U', ep.user];

function run(bin: string, args: string[], ep: Endpoint, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(join(PG_BIN, bin), args, { env: env(ep), timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${bin} ${args.join(' ')}: ${err.message}\n${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

export async function pgbenchInit(ep: Endpoint, scale: number): Promise<void> {
  await run('pgbench', ['-i', '-q', '-s', String(scale), ...connArgs(ep), ep.database], ep, 600_000);
}

/** One statement through psql; returns its unaligned, tuples-only output. */
export async function psql(ep: Endpoint, sql: string, timeoutMs = 10_000): Promise<string> {
  return (await run('psql', [...connArgs(ep), '-d', ep.database, '-XAtqc', sql], ep, timeoutMs)).trim();
}

/** Resolves once `psql -c 'select 1'` succeeds through the endpoint. */
export async function waitForSql(ep: Endpoint, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const out = await psql(ep, 'select 1', 5_000);
      if (out === '1') return;
      last = out;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no SQL through ${ep.host}:${ep.port} after ${timeoutMs} ms: ${last}`);
}

/** Waits until the server has fewer than `n` client backends (closed connections linger briefly). */
export async function waitForBackendsBelow(ep: Endpoint, n: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const count = Number(await psql(ep, "select count(*) from pg_stat_activity where backend_type = 'client backend'"));
    if (count < n) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function parsePgbenchOutput(out: string): { tps: number; transactions: number; latencyAvgMs: number } {
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out);
  const tx = /number of transactions actually processed: (\d+)/.exec(out);
  const lat = /latency average = ([\d.]+) ms/.exec(out);
  if (!tps || !tx || !lat) throw new Error(`unexpected pgbench output:\n${out}`);
  return { tps: Number(tps[1]), transactions: Number(tx[1]), latencyAvgMs: Number(lat[1]) };
}

/**
 * Per-transaction log lines are `client_id transaction_no time script_no
 * time_epoch time_us`, `time` being the latency in µs.
 */
export function latencyFromLogs(dir: string): { avgMs: number; p99Ms: number } {
  const chunks: Float64Array[] = [];
  let n = 0;
  for (const f of readdirSync(dir)) {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n');
    const arr = new Float64Array(lines.length);
    let k = 0;
    for (const line of lines) {
      const a = line.indexOf(' ');
      const b = line.indexOf(' ', a + 1);
      const c = line.indexOf(' ', b + 1);
      if (a < 0 || b < 0 || c < 0) continue;
      arr[k++] = Number(line.slice(b + 1, c));
    }
    chunks.push(arr.subarray(0, k));
    n += k;
  }
  if (n === 0) return { avgMs: NaN, p99Ms: NaN };
  const all = new Float64Array(n);
  let off = 0;
  let sum = 0;
  for (const c of chunks) { all.set(c, off); off += c.length; for (const v of c) sum += v; }
  all.sort();
  const p99 = all[Math.min(n - 1, Math.ceil(n * 0.99) - 1)]!;
  return { avgMs: sum / n / 1000, p99Ms: p99 / 1000 };
}

export interface PgbenchRun {
  workload: Workload;
  clients: number;
  durationSec: number;
}

export async function runPgbench(ep: Endpoint, r: PgbenchRun): Promise<PgbenchResult> {
  return runPgbenchOn([{ ep, clients: r.clients, threads: r.clients >= 2 ? 2 : 1 }], r);
}

/**
 * The split baselines: the clients shared between two servers (ceil(c/2) on `a`, the rest on `b`), two
 * pgbench processes at once with one thread each (as many threads as one pgbench with `-j 2`); tps and
 * transactions summed, latencies from both logs together.
 */
export async function runPgbenchSplit(a: Endpoint, b: Endpoint, r: PgbenchRun): Promise<PgbenchResult> {
  const onA = Math.ceil(r.clients / 2);
  const parts = [{ ep: a, clients: onA, threads: 1 }, { ep: b, clients: r.clients - onA, threads: 1 }];
  return runPgbenchOn(parts.filter((p) => p.clients > 0), r);
}

async function runPgbenchOn(parts: { ep: Endpoint; clients: number; threads: number }[], r: PgbenchRun): Promise<PgbenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-pgbench-log-'));
  try {
    const outs = await Promise.all(parts.map((p, i) => run('pgbench', [
      '-n', '-T', String(r.durationSec), '-c', String(p.clients), '-j', String(p.threads),
      ...workloadArgs(r.workload),
      '-l', `--log-prefix=${join(dir, `tx${i}`)}`,
      ...connArgs(p.ep), p.ep.database,
    ], p.ep, (r.durationSec + 120) * 1000)));
    const parsed = outs.map(parsePgbenchOutput);
    const transactions = parsed.reduce((n, p) => n + p.transactions, 0);
    const tps = parsed.reduce((n, p) => n + p.tps, 0);
    // pgbench's latency average is per client: weigh each process by its transactions.
    const latencyAvgMs = parsed.reduce((n, p) => n + p.latencyAvgMs * p.transactions, 0) / Math.max(1, transactions);
    const lat = latencyFromLogs(dir);
    return { tps, transactions, latencyAvgMs, logAvgMs: lat.avgMs, p99Ms: lat.p99Ms };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- Reading a set of runs ----
// Ratios pair runs from the same round (all targets run back to back), then
// take the median over rounds: load from other processes drifts over minutes,
// and pairing cancels most of it.

type Ok = { workload: Workload; clients: number; target: string; round: number } & PgbenchResult;
export type RunRecord = Ok | ({ workload: Workload; clients: number; target: string; round: number } & { error: string });

export interface SummaryRow {
  workload: Workload;
  clients: number;
  target: string;
  /** Rounds that completed (errors are excluded from the medians). */
  ok: number;
  errors: number;
  /** Medians over the rounds, each figure on its own. */
  tps: number;
  latencyAvgMs: number;
  logAvgMs: number;
  p99Ms: number;
  /** Median over rounds of tps / direct's tps in the same round; NaN without direct. */
  ratioToDirect: number;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const okRuns = (runs: RunRecord[], w: Workload, c: number, target: string): Ok[] =>
  runs.filter((r): r is Ok => r.workload === w && r.clients === c && r.target === target && !('error' in r));

/** Median over rounds of f(a's run, b's run), using rounds where both completed. */
function paired(runs: RunRecord[], w: Workload, c: number, a: string, b: string, f: (x: Ok, y: Ok) => number): number {
  const bs = okRuns(runs, w, c, b);
  return median(okRuns(runs, w, c, a).flatMap((x) => {
    const y = bs.find((r) => r.round === x.round);
    return y ? [f(x, y)] : [];
  }));
}

/** Paired tps ratio a / b at one (workload, clients). */
export const tpsRatio = (runs: RunRecord[], w: Workload, c: number, a: string, b: string): number =>
  paired(runs, w, c, a, b, (x, y) => x.tps / y.tps);

/**
 * Latency a target adds over direct at 1 client, in µs per transaction and
 * per statement, from the means of the per-transaction log latencies.
 */
export function addedLatencyUs(runs: RunRecord[], w: Workload, target: string): { perTx: number; perStatement: number } {
  const perTx = paired(runs, w, 1, target, 'direct', (x, y) => (x.logAvgMs - y.logAvgMs) * 1000);
  return { perTx, perStatement: perTx / statementsPerTx(w) };
}

export function summarize(runs: RunRecord[], workloads: Workload[], clients: number[], targets: string[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const workload of workloads) {
    for (const c of clients) {
      for (const target of targets) {
        const ok = okRuns(runs, workload, c, target);
        const all = runs.filter((r) => r.workload === workload && r.clients === c && r.target === target);
        rows.push({
          workload, clients: c, target, ok: ok.length, errors: all.length - ok.length,
          tps: median(ok.map((r) => r.tps)),
          latencyAvgMs: median(ok.map((r) => r.latencyAvgMs)),
          logAvgMs: median(ok.map((r) => r.logAvgMs)),
          p99Ms: median(ok.map((r) => r.p99Ms)),
          ratioToDirect: tpsRatio(runs, workload, c, target, 'direct'),
        });
      }
    }
  }
  return rows;
}

const fmt = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

export function markdownTable(rows: SummaryRow[]): string {
  const out = [
    '| workload | clients | target | tps | avg latency ms | p99 ms | × direct |',
    '|---|---:|---|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const tps = r.ok === 0 ? `error (${r.errors})` : fmt(r.tps, 0);
    out.push(`| ${r.workload} | ${r.clients} | ${r.target} | ${tps} | ${fmt(r.latencyAvgMs, 3)} | ${fmt(r.p99Ms, 3)} | ${fmt(r.ratioToDirect, 2)} |`);
  }
  return out.join('\n') + '\n';
}
