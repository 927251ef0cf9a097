/** `npm run bench` options, and what the machine was (printed beside every result). */
import { Command } from 'commander';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { PG_BIN, WORKLOADS, type Workload } from './pgbench.js';
import { DEFAULT_TARGETS, TARGETS, type Target } from './targets.js';

export interface Options {
  duration: number;
  rounds: number;
  clients: number[];
  workloads: Workload[];
  only: Target[];
  scale: number;
  warmup: number;
  memoryConnections: number;
  /** A compiled checkout of the old build: the `-old` targets run it (before/after in one run). */
  baseline: string | null;
  /** The state the split targets run in. */
  splitState: string;
  /** The pg-cutover targets run under `node --cpu-prof`, profiles written under <dir>/<target>. */
  cpuProfDir: string | null;
}

function list<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) if (!allowed.includes(i as T)) throw new Error(`unknown ${what} "${i}" (one of ${allowed.join(', ')})`);
  return items as T[];
}

export function parseOptions(argv: string[]): Options {
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
    .option('--baseline <dir>', 'a compiled checkout of the old build: the pg-cutover-old and pg-cutover-split-old targets run it')
    .option('--split-state <state>', 'the state the split targets run in', 'READS_50PCT_AURORA')
    .option('--cpu-prof-dir <dir>', 'run the pg-cutover targets under node --cpu-prof, profiles written under <dir>/<target>')
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
    baseline: typeof o.baseline === 'string' ? resolve(o.baseline) : null,
    splitState: String(o.splitState),
    cpuProfDir: typeof o.cpuProfDir === 'string' ? resolve(o.cpuProfDir) : null,
  };
}

export function machineInfo(): Record<string, string | number> {
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
