// `npm run bench`: pgbench through each target on the same PostgreSQL in one
// run, interleaved so machine noise hits every target alike; prints a
// markdown table and writes JSON to bench/results/.
// Targets: targets.ts; options: options.ts; the report: report.ts; stopping everything: cleanup.ts.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../src/demo/embedded.js';
import {
  pgbenchInit, psql, runPgbench, runPgbenchSplit, summarize, waitForBackendsBelow, waitForSql, type Endpoint, type PgbenchResult, type RunRecord,
} from './pgbench.js';
import { measureIdleMemory, type IdleMemoryResult } from './memory.js';
import { Cleanup, say } from './cleanup.js';
import { machineInfo, parseOptions, type Options } from './options.js';
import { report } from './report.js';
import { repoRoot, startTarget, type Running, type Target, type TargetSetup } from './targets.js';

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

/** USER_HZ of /proc/<pid>/stat times (100 on Linux). */
const TICKS_PER_SEC = 100;

/** utime + stime of a process in clock ticks, or null (no process, not Linux). */
function cpuTicks(pid: number): number | null {
  if (pid <= 0) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return null;
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

  const setup: TargetSetup = { splitScale: opts.scale, baseline: opts.baseline, splitState: opts.splitState, cpuProfDir: opts.cpuProfDir };
  const running = new Map<Target, Running>();
  const unavailable: Record<string, string> = {};
  for (const target of opts.only) {
    try {
      const r = await startTarget(target, pg.host, pg.port, pg.url(db), db, cleanup, setup);
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
    for (const t of targets) {
      const r = running.get(t)!;
      const run = { workload: 'select-simple', clients: 16, durationSec: opts.warmup } as const;
      // A warm-up that ran no transaction (16 logins took the whole run on a loaded machine) warmed up anyway.
      await (r.splitPort === undefined ? runPgbench(ep(r.port), run) : runPgbenchSplit(ep(r.port), ep(r.splitPort), run))
        .catch((err: Error) => say(`warm-up of ${t}: ${err.message.split('\n')[0]}`));
    }
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
          const cpuBefore = cpuTicks(r.pid);
          try {
            const run = { workload, clients, durationSec: opts.duration };
            res = r.splitPort === undefined ? await runPgbench(ep(r.port), run) : await runPgbenchSplit(ep(r.port), ep(r.splitPort), run);
            // The proxy's own CPU per transaction: far steadier than tps on a shared machine.
            const cpuAfter = cpuTicks(r.pid);
            if (cpuBefore !== null && cpuAfter !== null && res.transactions > 0) res.proxyCpuUsPerTx = ((cpuAfter - cpuBefore) * 1e6) / TICKS_PER_SEC / res.transactions;
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
    for (const target of targets.filter((t) => t !== 'direct' && t !== 'direct-split')) {
      await waitForBackendsBelow(admin, 20);
      say(`memory: ${opts.memoryConnections} idle connections through a fresh ${target}`);
      const r = await startTarget(target, pg.host, pg.port, pg.url(db), db, cleanup, setup);
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

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
