/**
 * CPU cost of starting the CLI (issue 16: every call cost ~1 s of CPU, `--help` too, because the AWS SDK,
 * libpg-query, ioredis and pg loaded up front). Runs `pg-cutover --help`, `pg-cutover status` (against a
 * closed port: the cost of getting as far as the request) and `pg-cutover gate --help` several times each, and
 * prints the child processes' user+system CPU (process.cpuUsage() at exit, reported through a preload module)
 * beside a bare `node -e 0` baseline. Target: under 150 ms per command on top of nothing.
 *
 *   npm run build && node dist/bench/cli-startup.js [runs]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
// dist/bench/cli-startup.js → repository root; also works from the sources (bench/cli-startup.ts).
const root = [resolve(here, '..', '..'), resolve(here, '..')].find((d) => {
  try {
    return readFileSync(join(d, 'bin', 'pg-cutover.js')).length > 0;
  } catch {
    return false;
  }
})!;
const dir = mkdtempSync(join(tmpdir(), 'pgc-cli-bench-'));
// process.on('exit') handlers must be synchronous: a CommonJS preload writes the total.
const preloadCjs = join(dir, 'cpu.cjs');
writeFileSync(preloadCjs, `process.on('exit', () => { const u = process.cpuUsage(); require('node:fs').appendFileSync(process.env.PGC_CPU_OUT, String((u.user + u.system) / 1000) + '\\n'); });\n`);

function cpuMs(args: string[], runs: number): number[] {
  const out = join(dir, `out-${Math.random().toString(36).slice(2)}`);
  for (let i = 0; i < runs; i++) {
    spawnSync(process.execPath, ['--require', preloadCjs, ...args], { cwd: root, env: { ...process.env, PGC_CPU_OUT: out, PGCUTOVER_ADMIN: '127.0.0.1:1' }, stdio: 'ignore' });
  }
  return readFileSync(out, 'utf8').trim().split('\n').map(Number);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const runs = Number(process.argv[2] ?? 7);
const bin = join(root, 'bin', 'pg-cutover.js');
const cases: [string, string[]][] = [
  ['node -e 0 (baseline)', ['-e', '0']],
  ['pg-cutover --help', [bin, '--help']],
  ['pg-cutover status', [bin, 'status', '--timeout', '200']],
  ['pg-cutover gate --help', [bin, 'gate', '--help']],
  ['pg-cutover validate --help', [bin, 'validate', '--help']],
];
const base = median(cpuMs(cases[0]![1], runs));
console.log(`CLI start-up CPU (user+system, median of ${runs} runs)`);
for (const [name, args] of cases) {
  const m = median(cpuMs(args, runs));
  console.log(`${name.padEnd(28)} ${m.toFixed(0).padStart(5)} ms   (${(m - base).toFixed(0).padStart(5)} ms over bare node)`);
}
rmSync(dir, { recursive: true, force: true });
