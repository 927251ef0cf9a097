// `npm run bench`: pgbench through each target on the same PostgreSQL in one
// run, interleaved so machine noise hits every target alike; prints a
// markdown table and writes JSON to bench/results/.
import { Command } from 'commander';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startEmbeddedPostgres } from '../src/demo/embedded.js';
import {
  PG_BIN, WORKLOADS, addedLatencyUs, markdownTable, pgbenchInit, psql, runPgbench, summarize, tpsRatio,
  waitForBackendsBelow, waitForSql, type Endpoint, type PgbenchResult, type RunRecord, type SummaryRow, type Workload,
} from './pgbench.js';
import { startPgbouncer } from './pgbouncer.js';
import { measureIdleMemory, type IdleMemoryResult } from './memory.js';

const TARGETS = ['direct', 'pgbouncer', 'forwarder', 'pg-cutover', 'pg-cutover-split'] as const;
/** Targets measured unless --only says otherwise (the split target starts a second server). */
const DEFAULT_TARGETS = ['direct', 'pgbouncer', 'forwarder', 'pg-cutover'];
type Target = (typeof TARGETS)[number];

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const say = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`); };

// ---- Everything started is stopped: on return, error, Ctrl-C or SIGTERM ----

interface Stoppable { name: string; stop: () => Promise<void>; killSync?: () => void }

class Cleanup {
  private items: Stoppable[] = [];
  private running: Promise<void> | undefined;

  add(name: string, stop: () => Promise<void>, killSync?: () => void): void {
    this.items.push({ name, stop, ...(killSync ? { killSync } : {}) });
  }

  /** Stops in reverse start order, each bounded so one hang cannot block the rest. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      for (const it of [...this.items].reverse()) {
        const timeout = new Promise<void>((r) => setTimeout(r, 15_000).unref());
        await Promise.race([it.stop().catch((e: unknown) => say(`stopping ${it.name}: ${String(e)}`)), timeout]);
      }
    })();
    return this.running;
  }

  installSignalHandlers(): void {
    for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      process.once(sig, () => {
        say(`${sig}: stopping everything`);
        void this.runAll().finally(() => process.exit(code));
      });
    }
    // Last resort if the process exits before the async stops ran.
    process.once('exit', () => { for (const it of this.items) it.killSync?.(); });
  }
}

function portAccepts(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); res(true); });
    s.once('error', () => res(false));
  });
}

interface Running {
  port: number;
  /** Process whose RSS the memory check reads (0 for direct). */
  pid: number;
  exited(): boolean;
  stderrTail(): string;
  /** Idempotent; also registered with Cleanup. */
  stop(): Promise<void>;
}

/** Spawns a Node child, keeps the tail of its output, resolves once its port accepts. */
async function spawnNode(name: string, args: string[], port: number, env: NodeJS.ProcessEnv, cleanup: Cleanup): Promise<Running> {
  // stdin stays an open pipe: the forwarder exits when it closes.
  const child: ChildProcess = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (c: Buffer): void => { tail = (tail + c.toString()).slice(-4000); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const killSync = (): void => { if (!exited()) child.kill('SIGKILL'); };
  const stop = async (): Promise<void> => {
    if (exited()) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
    killSync();
  };
  cleanup.add(name, stop, killSync);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${tail}`);
    if (await portAccepts(port)) return { port, pid: child.pid ?? 0, exited, stderrTail: () => tail, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not listen on ${port} within 20 s: ${tail}`);
}

async function startTarget(t: Target, pgHost: string, pgPort: number, url: string, db: string, cleanup: Cleanup): Promise<Running> {
  switch (t) {
    case 'direct':
      return { port: pgPort, pid: 0, exited: () => false, stderrTail: () => '', stop: async () => undefined };
    case 'pgbouncer': {
      const b = await startPgbouncer({
        listenPort: await freePort(), pgHost, pgPort, database: db, user: 'postgres',
        password: decodeURIComponent(new URL(url).password),
      });
      cleanup.add('pgbouncer', () => b.stop(), () => b.killSync());
      return { port: b.port, pid: b.pid, exited: () => false, stderrTail: () => '', stop: () => b.stop() };
    }
    case 'forwarder': {
      const port = await freePort();
      return spawnNode('forwarder', [join(here, 'forwarder.js'), String(port), pgHost, String(pgPort)], port, process.env, cleanup);
    }
    case 'pg-cutover': {
      const [port, admin] = [await freePort(), await freePort()];
      // Nothing is routed to the target yet, so the source doubles as target.
      const args = [join(repoRoot, 'bin', 'pg-cutover.js'), 'start', '--source', url, '--target', url,
        '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`];
      return spawnNode('pg-cutover', args, port, { ...process.env, PGCUTOVER_LOG_LEVEL: 'warn' }, cleanup);
    }
    case 'pg-cutover-split': {
      // READS_50PCT_AURORA: half the reads go to a PostgreSQL 15 holding the same pgbench data.
      const pg15 = await startEmbeddedPostgres({ major: 15, settings: { max_connections: '300', 'pg_stat_statements.track': 'none' } });
      cleanup.add('postgres-15', () => pg15.stop());
      const ep15 = { host: pg15.host, port: pg15.port, user: pg15.user, password: pg15.password, database: 'postgres' };
      await waitForSql(ep15);
      await psql(ep15, `create database ${db}`);
      await pgbenchInit({ ...ep15, database: db }, splitScale);
      const [port, admin] = [await freePort(), await freePort()];
      const args = [join(repoRoot, 'bin', 'pg-cutover.js'), 'start', '--source', url, '--target', pg15.url(db),
        '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--state', 'READS_50PCT_AURORA'];
      return spawnNode('pg-cutover-split', args, port, { ...process.env, PGCUTOVER_LOG_LEVEL: 'warn' }, cleanup);
    }
    default: { const never: never = t; throw new Error(`unknown target ${String(never)}`); }
  }
}

/** pgbench scale of the split target's second server (set from --scale before targets start). */
let splitScale = 10;

function machineInfo(): Record<string, string | number> {
  const version = (cmd: string, args: string[]): string => {
    try { return execFileSync(cmd, args).toString().split('\n')[0]!.trim(); } catch { return 'unknown'; }
  };
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    pgbench: version(join(PG_BIN, 'pgbench'), ['--version']),
    pgbouncer: version('/usr/sbin/pgbouncer', ['--version']),
  };
}

interface Options {
  duration: number;
  rounds: number;
  clients: number[];
  workloads: Workload[];
  only: Target[];
  scale: number;
  warmup: number;
  memoryConnections: number;
}

function list<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`unknown ${what} "${i}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

function parseOptions(argv: string[]): Options {
  const program = new Command()
    .name('bench')
    .description('pgbench through direct, PgBouncer, a bare Node forwarder and pg-cutover, in one run')
    .option('--duration <sec>', 'seconds per pgbench run', '10')
    .option('--rounds <n>', 'interleaved rounds per (workload, clients); medians are reported', '3')
    .option('--clients <list>', 'client counts', '1,16,64')
    .option('--workloads <list>', `workloads (${WORKLOADS.join(', ')})`, WORKLOADS.join(','))
    .option('--only <list>', `targets (${TARGETS.join(', ')}; pg-cutover-split routes 50% of reads to a PostgreSQL 15 target)`, DEFAULT_TARGETS.join(','))
    .option('--scale <n>', 'pgbench -i scale factor', '10')
    .option('--warmup <sec>', 'unrecorded select-only run per target before measuring (0 skips)', '2')
    .option('--memory-connections <n>', 'idle connections for the memory check (0 skips it)', '1000')
    .option('--quick', 'duration 3, rounds 1, clients 1,16, 200 memory connections (explicit flags win)')
    .parse(argv);
  const o = program.opts<Record<string, string | boolean>>();
  const fromCli = (k: string): boolean => program.getOptionValueSource(k) === 'cli';
  const pick = (k: string, quick: string): string => (o.quick && !fromCli(k) ? quick : String(o[k]));
  const int = (k: string, v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} must be a non-negative integer, got "${v}"`);
    return n;
  };
  return {
    duration: int('duration', pick('duration', '3')),
    rounds: Math.max(1, int('rounds', pick('rounds', '1'))),
    clients: pick('clients', '1,16').split(',').map((c) => int('clients', c.trim())).filter((c) => c > 0),
    workloads: list(String(o.workloads), WORKLOADS, 'workload'),
    only: list(String(o.only), TARGETS, 'target'),
    scale: int('scale', String(o.scale)),
    warmup: int('warmup', pick('warmup', '1')),
    memoryConnections: int('memory-connections', pick('memoryConnections', '200')),
  };
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv);
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  try {
    return await bench(opts, cleanup);
  } finally {
    await cleanup.runAll();
  }
}

async function bench(opts: Options, cleanup: Cleanup): Promise<number> {
  const started = new Date();
  const loadAtStart = os.loadavg()[0]!;
  say(`options: ${JSON.stringify(opts)}`);
  // Every idle client through a forwarding proxy holds its own backend
  // during the memory check; the margin covers psql and slow backend exits.
  const pg = await startEmbeddedPostgres({
    major: 14,
    settings: {
      max_connections: String(Math.max(300, opts.memoryConnections + 200)),
      // The starter preloads pg_stat_statements; tracking would tax every
      // target's queries alike and flatter the ratios to direct.
      'pg_stat_statements.track': 'none',
    },
  });
  cleanup.add('postgres', () => pg.stop());
  const db = 'bench';
  const admin: Endpoint = { host: pg.host, port: pg.port, user: pg.user, password: pg.password, database: 'postgres' };
  await waitForSql(admin);
  await psql(admin, `create database ${db}`);
  const ep = (port: number): Endpoint => ({ ...admin, port, database: db });
  say(`pgbench -i -s ${opts.scale} on PostgreSQL 14 at ${pg.host}:${pg.port}`);
  await pgbenchInit(ep(pg.port), opts.scale);
  // Flush what the load dirtied now rather than during the first measured run.
  await psql(ep(pg.port), 'vacuum analyze', 300_000);
  await psql(ep(pg.port), 'checkpoint', 300_000);
  const serverVersion = await psql(admin, 'show server_version');

  splitScale = opts.scale;
  const running = new Map<Target, Running>();
  const unavailable: Record<string, string> = {};
  for (const target of opts.only) {
    try {
      const r = await startTarget(target, pg.host, pg.port, pg.url(db), db, cleanup);
      await waitForSql(ep(r.port), 30_000);
      running.set(target, r);
      say(`${target} ready on port ${r.port}`);
    } catch (err) {
      unavailable[target] = (err as Error).message;
      say(`${target} unavailable, skipped: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
    }
  }
  const targets = opts.only.filter((t) => running.has(t));
  if (targets.length === 0) throw new Error('no target could be started');
  if (opts.warmup > 0) {
    // Unrecorded: warms caches, PgBouncer's pool and the Node processes' JIT.
    for (const t of targets) await runPgbench(ep(running.get(t)!.port), { workload: 'select-simple', clients: 16, durationSec: opts.warmup });
    say(`warmed up ${targets.join(', ')} (${opts.warmup} s each)`);
  }

  const runs: RunRecord[] = [];
  for (const workload of opts.workloads) {
    for (const clients of opts.clients) {
      for (let round = 0; round < opts.rounds; round++) {
        // Rotate the order each round so no target always runs first or last.
        const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
        for (const target of order) {
          const r = running.get(target)!;
          if (r.exited()) throw new Error(`${target} exited during the run: ${r.stderrTail()}`);
          let res: PgbenchResult | { error: string };
          try {
            res = await runPgbench(ep(r.port), { workload, clients, durationSec: opts.duration });
          } catch (err) {
            res = { error: (err as Error).message.split('\n').slice(0, 4).join(' ') };
          }
          runs.push({ workload, clients, target, round, ...res });
          say(`${workload} c=${clients} round ${round + 1}/${opts.rounds} ${target}: ${
            'error' in res ? `ERROR ${res.error}` : `${res.tps.toFixed(0)} tps, avg ${res.latencyAvgMs.toFixed(3)} ms, p99 ${res.p99Ms.toFixed(3)} ms`}`);
        }
      }
    }
  }

  const memory: Record<string, IdleMemoryResult> = {};
  if (opts.memoryConnections > 0) {
    // A fresh instance of each, so garbage left by the pgbench runs does not
    // move the baseline; the instances used for pgbench stop first.
    for (const r of running.values()) await r.stop();
    for (const target of targets.filter((t) => t !== 'direct')) {
      await waitForBackendsBelow(admin, 20);
      say(`memory: ${opts.memoryConnections} idle connections through a fresh ${target}`);
      const r = await startTarget(target, pg.host, pg.port, pg.url(db), db, cleanup);
      let m: IdleMemoryResult;
      try {
        await waitForSql(ep(r.port), 30_000);
        m = await measureIdleMemory({ pid: r.pid, endpoint: ep(r.port), count: opts.memoryConnections });
      } finally {
        await r.stop();
      }
      memory[target] = m;
      say(`memory ${target}: ${m.perConnKB.toFixed(1)} KB/conn (${m.opened} opened, ${m.failed} failed${m.firstError ? `: ${m.firstError}` : ''})`);
    }
  }

  const summary = summarize(runs, opts.workloads, opts.clients, targets);
  // Other processes on the machine are the main source of noise: say how busy it was.
  const machine = { ...machineInfo(), postgres: serverVersion, loadAvgStart: loadAtStart, loadAvgEnd: os.loadavg()[0]! };
  process.stdout.write(report(summary, runs, memory, unavailable, started, machine, opts));
  const outDir = join(repoRoot, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-proxy.json`);
  writeFileSync(file, JSON.stringify({ date: started.toISOString(), machine, options: opts, unavailable, summary, memory, runs }, null, 2) + '\n');
  say(`wrote ${file}`);
  return 0;
}

const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

function report(
  rows: SummaryRow[], runs: RunRecord[], memory: Record<string, IdleMemoryResult>, unavailable: Record<string, string>,
  started: Date, machine: Record<string, string | number>, opts: Options,
): string {
  const out: string[] = [
    `## Proxy benchmark ${started.toISOString().slice(0, 10)}`, '',
    `${machine.cpus} × ${machine.cpu}, ${machine.memGB} GB, Linux ${machine.kernel}, Node ${machine.node}, PostgreSQL ${machine.postgres}, ${machine.pgbouncer}.`,
    `pgbench -T ${opts.duration}, ${opts.rounds} interleaved round(s), medians; scale ${opts.scale}. ` +
      `1-minute load average ${f(Number(machine.loadAvgStart), 1)} at start, ${f(Number(machine.loadAvgEnd), 1)} at end (${machine.cpus} CPUs).`, '',
    markdownTable(rows),
  ];
  const has = (t: string): boolean => rows.some((r) => r.target === t && r.ok > 0);
  const pairs: [string, string][] = [['pg-cutover', 'direct'], ['pg-cutover', 'pgbouncer'], ['pg-cutover', 'forwarder'], ['forwarder', 'pgbouncer'], ['pg-cutover-split', 'direct'], ['pg-cutover-split', 'pg-cutover']];
  const shown = pairs.filter(([a, b]) => has(a) && has(b));
  if (shown.length > 0) {
    out.push('### tps ratios', '', `| workload | clients | ${shown.map(([a, b]) => `${a} / ${b}`).join(' | ')} |`,
      `|---|---:|${shown.map(() => '---:').join('|')}|`);
    for (const w of opts.workloads) for (const c of opts.clients) {
      out.push(`| ${w} | ${c} | ${shown.map(([a, b]) => f(tpsRatio(runs, w, c, a, b), 2)).join(' | ')} |`);
    }
    out.push('');
  }
  const others = TARGETS.filter((t) => t !== 'direct' && has(t));
  if (opts.clients.includes(1) && has('direct') && others.length > 0) {
    out.push('### Added latency over direct at 1 client (µs, mean of per-transaction latencies)', '',
      `| workload | ${others.map((t) => `${t} per tx | per statement`).join(' | ')} |`, `|---|${others.map(() => '---:|---:').join('|')}|`);
    for (const w of opts.workloads) {
      out.push(`| ${w} | ${others.map((t) => { const a = addedLatencyUs(runs, w, t); return `${f(a.perTx, 1)} | ${f(a.perStatement, 1)}`; }).join(' | ')} |`);
    }
    out.push('');
  }
  if (Object.keys(memory).length > 0) {
    out.push('### Memory per idle client connection', '', '| target | connections | RSS before MB | RSS after MB | KB per connection |', '|---|---:|---:|---:|---:|');
    for (const [t, m] of Object.entries(memory)) {
      out.push(`| ${t} | ${m.opened}${m.failed ? ` (${m.failed} failed)` : ''} | ${f(m.rssBeforeKB / 1024, 1)} | ${f(m.rssAfterKB / 1024, 1)} | ${f(m.perConnKB, 1)} |`);
    }
    out.push('');
  }
  out.push(...targetChecks(runs, memory, opts));
  for (const [t, why] of Object.entries(unavailable)) out.push(`- ${t} was not measured: ${why.split('\n')[0]}`);
  return out.join('\n') + '\n';
}

/** The issue's targets for pg-cutover, where this run measured them. */
function targetChecks(runs: RunRecord[], memory: Record<string, IdleMemoryResult>, opts: Options): string[] {
  const out: string[] = [];
  const check = (ok: boolean, text: string, verdict = ok ? 'PASS' : 'FAIL'): void => { out.push(`- ${verdict} ${text}`); };
  const w: Workload = opts.workloads.includes('select-simple') ? 'select-simple' : opts.workloads[0]!;
  if (opts.clients.includes(16)) {
    const vd = tpsRatio(runs, w, 16, 'pg-cutover', 'direct');
    const vb = tpsRatio(runs, w, 16, 'pg-cutover', 'pgbouncer');
    if (Number.isFinite(vd)) check(vd >= 0.85, `${w} at 16 clients: pg-cutover ${f(vd, 2)}× direct (target ≥ 0.85)`);
    if (Number.isFinite(vb)) check(vb >= 1.0, `${w} at 16 clients: pg-cutover ${f(vb, 2)}× PgBouncer (target ≥ 1.0)`);
  }
  const added = addedLatencyUs(runs, 'select-simple', 'pg-cutover').perStatement;
  if (Number.isFinite(added)) {
    // Below zero the noise is larger than the cost being measured.
    check(added <= 50, `added latency per simple query at 1 client: ${f(added, 1)} µs (target ≤ 50)`, added < 0 ? 'NOISY' : undefined);
  }
  const m = memory['pg-cutover'];
  if (m && Number.isFinite(m.perConnKB)) {
    const at = m.opened < 1000 ? ` (measured at ${m.opened}; the target is stated at 1,000)` : '';
    check(m.perConnKB <= 100, `RSS per idle connection at ${m.opened}: ${f(m.perConnKB, 1)} KB (target ≤ 100)${at}`);
  }
  return out.length > 0 ? ['### Targets (issue 3)', '', ...out, ''] : [];
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
