// Shadow-write benchmark (issue 9): what SHADOW_WRITES costs the primary path and replication.
// PostgreSQL 14 (source, wal_level=logical) replicates pgbench's tables to PostgreSQL 15 (target) by native
// logical replication; one pg-cutover sidecar (in-process, so the shadower's own counters are read directly)
// sits in front. TPC-B at 16 clients runs through it in interleaved rounds, alternating SHADOW_WRITES (default
// 10% sampling) and READS_100PCT_AURORA (same routing, nothing shadowed). Reported: primary-path tps ratio
// (target ≥ 0.95), replication lag p99 in bytes with and without shadowing (sampled every 20 ms from here),
// shadow match rate and shadow latency p99. Markdown on stdout, JSON to bench/results/<date>-shadow.json.
//   npx tsc -p tsconfig.json && node dist/bench/shadow.js [--duration 10] [--rounds 3]
import { Command } from 'commander';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPg } from '../src/demo/embedded.js';
import { loadStartConfig } from '../src/config/load.js';
import { startSidecar } from '../src/sidecar.js';
import { log } from '../src/support/log.js';
import { PG_BIN, median, pgbenchInit, psql, runPgbench, type Endpoint, type PgbenchResult } from './pgbench.js';

const here = dirname(fileURLToPath(import.meta.url));
// bench/shadow.ts run from source, or dist/bench/shadow.js compiled.
const repoRoot = existsSync(join(here, '..', 'package.json')) ? resolve(here, '..') : resolve(here, '../..');
const say = (msg: string): void => void process.stderr.write(`[shadow-bench] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exec = promisify(execFile);

const MODES = { shadow: 'SHADOW_WRITES', reads: 'READS_100PCT_AURORA' } as const;
type Mode = keyof typeof MODES;

interface Options { duration: number; rounds: number; clients: number; scale: number; samplePct: number; lagBudget: number; warmup: number }

interface ShadowFigures {
  sampled: number; shadowed: number; compared: number; matched: number; unexplained: number; abandoned: number;
  notShadowed: Record<string, number>; mismatched: Record<string, number>; latencyP99Ms: number; minRate: number;
}
type Run = { mode: Mode; round: number; lagP99: number; lagMax: number; lagSamples: number; shadow?: ShadowFigures } & (PgbenchResult | { error: string });

function pct(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * q) - 1))]!;
}

const LAG_SQL =
  "select pg_current_wal_lsn()::text as cur, pg_wal_lsn_diff(pg_current_wal_lsn(), min(replay_lsn))::bigint as lag from pg_stat_replication where application_name not like 'pg-cutover%'";

/** Replication lag in bytes every ~20 ms until stopped (source WAL position minus the subscriber's replay). */
function watchLag(src: EmbeddedPg, onSample: () => void = () => {}) {
  const lags: number[] = [];
  let stop = false;
  const done = (async () => {
    const c = new pg.Client({ connectionString: src.url(), application_name: 'pg-cutover-bench-lag' });
    await c.connect();
    try {
      for (; !stop; await sleep(20)) {
        const r = await c.query(LAG_SQL);
        if (r.rows[0].lag !== null) lags.push(Number(r.rows[0].lag));
        onSample();
      }
    } finally {
      await c.end();
    }
  })();
  return { stop: async () => ((stop = true), await done, lags) };
}

/** Waits until the subscriber has replayed what the source had written when called. */
async function waitCaughtUp(src: EmbeddedPg, timeoutMs = 60_000): Promise<void> {
  const c = new pg.Client({ connectionString: src.url() });
  await c.connect();
  try {
    const lsn = (await c.query('select pg_current_wal_lsn()::text as l')).rows[0].l as string;
    for (const end = Date.now() + timeoutMs; Date.now() < end; await sleep(100)) {
      const r = await c.query("select bool_and(replay_lsn >= $1::pg_lsn) as ok from pg_stat_replication where application_name not like 'pg-cutover%'", [lsn]);
      if (r.rows[0].ok) return;
    }
    throw new Error('target did not catch up in time');
  } finally {
    await c.end();
  }
}

/** pgbench tables on the source, empty on the target, then a subscription copies and follows them. */
async function setUpReplication(src: EmbeddedPg, tgt: EmbeddedPg, scale: number): Promise<void> {
  const ep = (p: EmbeddedPg): Endpoint => ({ host: p.host, port: p.port, user: p.user, password: p.password, database: 'postgres' });
  await pgbenchInit(ep(src), scale);
  // -I dtp: drop, create tables, primary keys; no data (https://www.postgresql.org/docs/15/pgbench.html).
  await exec(join(PG_BIN, 'pgbench'), ['-i', '-q', '-I', 'dtp', '-s', String(scale), tgt.url()]);
  await psql(ep(src), 'create publication bench_pub for table pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history');
  await psql(ep(tgt), `create subscription bench_sub connection 'host=127.0.0.1 port=${src.port} user=postgres password=${src.password} dbname=postgres' publication bench_pub`);
  for (const end = Date.now() + 600_000; ; await sleep(250)) {
    if ((await psql(ep(tgt), "select count(*) from pg_subscription_rel where srsubstate <> 'r'")) === '0') break;
    if (Date.now() > end) throw new Error('initial copy did not finish');
  }
  await psql(ep(src), 'vacuum analyze', 300_000);
  await psql(ep(src), 'checkpoint', 300_000);
  await waitCaughtUp(src);
}

function parseOptions(argv: string[]): Options {
  const o = new Command()
    .name('shadow-bench')
    .description('TPC-B through pg-cutover in SHADOW_WRITES vs READS_100PCT_AURORA over a live PG14 → PG15 logical replica')
    .option('--duration <sec>', 'seconds per pgbench run', '10')
    .option('--rounds <n>', 'interleaved rounds (each runs both modes)', '3')
    .option('--clients <n>', 'pgbench clients', '16')
    .option('--scale <n>', 'pgbench -i scale factor', '10')
    .option('--sample-pct <n>', 'requested shadow sampling percent (--shadow-sample-pct)', '10')
    .option('--lag-budget <bytes>', 'shadow lag budget (--shadow-lag-budget-bytes)', '65536')
    .option('--warmup <sec>', 'unrecorded TPC-B run per mode first (0 skips)', '2')
    .parse(argv)
    .opts<Record<string, string>>();
  const int = (k: string, min = 0): number => {
    const n = Number(o[k]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${k} must be an integer ≥ ${min}, got "${o[k]}"`);
    return n;
  };
  return { duration: int('duration', 1), rounds: int('rounds', 1), clients: int('clients', 1), scale: int('scale', 1), samplePct: int('samplePct'), lagBudget: int('lagBudget'), warmup: int('warmup') };
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv);
  log.level = process.env.PGCUTOVER_LOG_LEVEL ?? 'warn';
  const started = new Date();
  const loadAvgStart = os.loadavg()[0]!;
  say(`options: ${JSON.stringify(opts)}`);
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => { for (const s of stops.splice(0).reverse()) await Promise.race([s().catch(() => {}), sleep(15_000)]); };
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.once(sig, () => void stopAll().finally(() => process.exit(code)));
  try {
    const settings = { max_connections: '300', 'pg_stat_statements.track': 'none' };
    const src = await startEmbeddedPostgres({ major: 14, logical: true, settings });
    stops.push(() => src.stop());
    const tgt = await startEmbeddedPostgres({ major: 15, settings });
    stops.push(() => tgt.stop());
    say(`pgbench -i -s ${opts.scale} on PostgreSQL 14 :${src.port}, replicating to PostgreSQL 15 :${tgt.port}`);
    await setUpReplication(src, tgt, opts.scale);

    const cfg = loadStartConfig({
      listen: '127.0.0.1:0', admin: '127.0.0.1:0', source: src.url(), target: tgt.url(), state: MODES.reads,
      shadowSamplePct: opts.samplePct, shadowLagBudgetBytes: opts.lagBudget,
    }, {});
    if (!cfg.ok) throw new Error(cfg.errors.join('\n'));
    const sc = await startSidecar(cfg.value, {});
    if (!sc.ok) throw new Error(sc.errors.join('\n'));
    const proxy = sc.value;
    stops.push(() => proxy.stop(2000));
    const ep: Endpoint = { host: '127.0.0.1', port: proxy.listen.port, user: 'postgres', password: src.password, database: 'postgres' };

    const enter = async (mode: Mode): Promise<void> => {
      if (!(await proxy.setState(MODES[mode], `shadow bench: ${mode}`))) throw new Error(`could not enter ${MODES[mode]}`);
      if (mode === 'shadow') {
        await proxy.shadower()!.sequencesReady;
        await sleep(300); // the shadow pool connects
      }
      await waitCaughtUp(src);
    };
    if (opts.warmup > 0) {
      for (const mode of ['reads', 'shadow'] as const) {
        await enter(mode);
        // Unrecorded; on a busy machine a short warm-up can end before its first transaction (no tps to parse).
        await runPgbench(ep, { workload: 'tpcb', clients: opts.clients, durationSec: opts.warmup }).catch((e: Error) => say(`warm-up ${mode}: ${e.message.split('\n')[0]}`));
      }
      say(`warmed up (${opts.warmup} s per mode)`);
    }

    const runs: Run[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const order: Mode[] = round % 2 === 0 ? ['reads', 'shadow'] : ['shadow', 'reads'];
      for (const mode of order) {
        // A fresh shadower per SHADOW_WRITES run (the state change creates it), so its counters are this run's.
        await enter(mode);
        let minRate = Infinity;
        const w = watchLag(src, () => { const sh = proxy.shadower(); if (sh) minRate = Math.min(minRate, sh.rate); });
        let res: PgbenchResult | { error: string };
        try {
          res = await runPgbench(ep, { workload: 'tpcb', clients: opts.clients, durationSec: opts.duration });
        } catch (err) {
          res = { error: (err as Error).message.split('\n').slice(0, 4).join(' ') };
        }
        const lags = await w.stop();
        let shadow: ShadowFigures | undefined;
        const sh = proxy.shadower();
        if (mode === 'shadow' && sh) {
          await sleep(300); // late comparisons settle
          const st = sh.stats;
          shadow = {
            sampled: st.sampled, shadowed: st.shadowed, compared: st.compared, matched: st.matched, unexplained: st.unexplained,
            abandoned: st.abandoned, notShadowed: { ...st.notShadowed }, mismatched: { ...st.mismatched }, latencyP99Ms: pct(st.latencyMs, 0.99), minRate,
          };
        }
        const run: Run = { mode, round, lagP99: pct(lags, 0.99), lagMax: lags.length ? Math.max(...lags) : NaN, lagSamples: lags.length, ...res, ...(shadow ? { shadow } : {}) };
        runs.push(run);
        say(`round ${round + 1}/${opts.rounds} ${MODES[mode]}: ${'error' in res ? `ERROR ${res.error}` : `${res.tps.toFixed(0)} tps, p99 ${res.p99Ms.toFixed(2)} ms`}, lag p99 ${run.lagP99} B${
          shadow ? `, shadowed ${shadow.shadowed}, match ${f(100 * shadow.matched / Math.max(1, shadow.compared), 1)}%, shadow p99 ${f(shadow.latencyP99Ms, 2)} ms, min rate ${shadow.minRate}` : ''}`);
      }
    }

    const machine = {
      cpu: os.cpus()[0]?.model ?? 'unknown', cpus: os.cpus().length, memGB: Math.round(os.totalmem() / 2 ** 30), node: process.version,
      loadAvgStart, loadAvgEnd: os.loadavg()[0]!,
    };
    const summary = summarize(runs);
    process.stdout.write(report(summary, started, machine, opts));
    const outDir = join(repoRoot, 'bench', 'results');
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-shadow.json`);
    writeFileSync(file, JSON.stringify({ date: started.toISOString(), machine, options: opts, summary, runs }, null, 2) + '\n');
    say(`wrote ${file}`);
    return 0;
  } finally {
    await stopAll();
  }
}

type Ok = Extract<Run, PgbenchResult>;
const ok = (runs: Run[], mode: Mode): Ok[] => runs.filter((r): r is Ok => r.mode === mode && !('error' in r));

function summarize(runs: Run[]) {
  const s = ok(runs, 'shadow');
  const r = ok(runs, 'reads');
  const perMode = (xs: Ok[]) => ({ runs: xs.length, tps: median(xs.map((x) => x.tps)), p99Ms: median(xs.map((x) => x.p99Ms)), lagP99: median(xs.map((x) => x.lagP99)), lagMax: Math.max(...xs.map((x) => x.lagMax)) });
  const sum = (k: 'sampled' | 'shadowed' | 'compared' | 'matched' | 'unexplained' | 'abandoned') => s.reduce((a, x) => a + (x.shadow?.[k] ?? 0), 0);
  return {
    shadow: perMode(s),
    reads: perMode(r),
    // Paired within a round, median over rounds (as bench/run.ts does): drift hits both modes alike.
    tpsRatio: median(s.flatMap((x) => { const y = r.find((q) => q.round === x.round); return y ? [x.tps / y.tps] : []; })),
    sampled: sum('sampled'), shadowed: sum('shadowed'), compared: sum('compared'), matched: sum('matched'), unexplained: sum('unexplained'), abandoned: sum('abandoned'),
    matchRate: sum('matched') / Math.max(1, sum('compared')),
    shadowLatencyP99Ms: median(s.map((x) => x.shadow?.latencyP99Ms ?? NaN)),
    minRate: Math.min(...s.map((x) => x.shadow?.minRate ?? Infinity)),
    lagBudgetSkips: s.reduce((a, x) => a + (x.shadow?.notShadowed['lag-budget'] ?? 0), 0),
    poolExhausted: s.reduce((a, x) => a + (x.shadow?.notShadowed['pool-exhausted'] ?? 0), 0),
    errors: runs.filter((x) => 'error' in x).length,
  };
}

const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const kb = (b: number): string => (Number.isFinite(b) ? `${(b / 1024).toFixed(1)} KiB` : 'n/a');

function report(s: ReturnType<typeof summarize>, started: Date, m: Record<string, string | number>, o: Options): string {
  return [
    `## Shadow-write benchmark ${started.toISOString().slice(0, 10)}`, '',
    `${m.cpus} × ${m.cpu}, ${m.memGB} GB, Node ${m.node}; PostgreSQL 14 → 15 native logical replication, pg-cutover in-process.`,
    `pgbench TPC-B -M prepared, ${o.clients} clients, -T ${o.duration}, ${o.rounds} interleaved round(s), medians; scale ${o.scale}; ` +
      `sampling ${o.samplePct}%, lag budget ${kb(o.lagBudget)}. Load average ${f(Number(m.loadAvgStart), 1)} at start, ${f(Number(m.loadAvgEnd), 1)} at end.`, '',
    '| mode | runs | tps | p99 ms | replication lag p99 | lag max |',
    '|---|---:|---:|---:|---:|---:|',
    `| SHADOW_WRITES | ${s.shadow.runs} | ${f(s.shadow.tps, 0)} | ${f(s.shadow.p99Ms, 2)} | ${kb(s.shadow.lagP99)} | ${kb(s.shadow.lagMax)} |`,
    `| READS_100PCT_AURORA | ${s.reads.runs} | ${f(s.reads.tps, 0)} | ${f(s.reads.p99Ms, 2)} | ${kb(s.reads.lagP99)} | ${kb(s.reads.lagMax)} |`, '',
    '| shadow | value |', '|---|---:|',
    `| sampled / shadowed transactions | ${s.sampled} / ${s.shadowed} |`,
    `| compared units, match rate | ${s.compared}, ${f(100 * s.matchRate, 2)}% |`,
    `| unexplained mismatches | ${s.unexplained} |`,
    `| abandoned | ${s.abandoned} |`,
    `| shadow latency p99 (median over runs) | ${f(s.shadowLatencyP99Ms, 2)} ms |`,
    `| lowest adapted sampling rate | ${f(100 * s.minRate, 2)}% |`,
    `| skipped: lag budget / pool exhausted | ${s.lagBudgetSkips} / ${s.poolExhausted} |`, '',
    '### Targets (issue 9)', '',
    `- ${s.tpsRatio >= 0.95 ? 'PASS' : 'FAIL'} primary-path tps SHADOW_WRITES / READS_100PCT_AURORA: ${f(s.tpsRatio, 3)} (target ≥ 0.95, paired per round)`,
    `- ${s.unexplained === 0 ? 'PASS' : 'FAIL'} unexplained mismatches: ${s.unexplained}`,
    ...(s.errors > 0 ? [`- FAIL ${s.errors} pgbench run(s) failed (see JSON)`] : []), '',
  ].join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[shadow-bench] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
