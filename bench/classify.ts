// Micro-benchmark of statement classification (src/router): the lexical shape key alone, the
// classifier on a cache hit (same shape, new literals: what pgbench -M simple sends), and on a miss
// (the WASM parser). Prints a table and writes JSON to bench/results/classify-<date>.json.
//   npx tsc -p tsconfig.json && node dist/bench/classify.js
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSync } from 'libpg-query';
import { createClassifier, initClassifier } from '../src/router/classify.js';
import { shapeKey } from '../src/router/shape.js';

const ROUNDS = 7;
/** Targets from the hot-path budget in shared/DESIGN.md. */
const TARGET_US = { shapeKey100: 1, cached: 2 };

interface Result {
  name: string;
  statements: number;
  avgChars: number;
  /** µs of this process's CPU time per statement (robust when other processes share the cores): median and best of ROUNDS. */
  cpuMedianUs: number;
  cpuMinUs: number;
  /** µs of wall-clock time per statement: median and best of ROUNDS. */
  wallMedianUs: number;
  wallMinUs: number;
}

let sink = 0;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

/**
 * Times `fn` over every input, ROUNDS times after warming up, from whole batches (a timer
 * call per statement would cost more than a cache hit). `setup` runs before every pass.
 */
function measure(name: string, inputs: string[], fn: (s: string) => number, reps = 1, setup?: () => void): Result {
  // Warm-up as long as two rounds, so the JIT has reached its optimising tier before timing.
  for (let w = 0; w < 2; w++) {
    setup?.();
    for (let k = 0; k < reps; k++) for (const s of inputs) sink += fn(s);
  }
  const cpu: number[] = [];
  const wall: number[] = [];
  const ops = inputs.length * reps;
  for (let r = 0; r < ROUNDS; r++) {
    setup?.();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let k = 0; k < reps; k++) for (const s of inputs) sink += fn(s);
    wall.push(Number(process.hrtime.bigint() - t0) / 1000 / ops);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / ops);
  }
  const avgChars = Math.round(inputs.reduce((n, s) => n + s.length, 0) / inputs.length);
  return {
    name, statements: ops, avgChars,
    cpuMedianUs: median(cpu), cpuMinUs: Math.min(...cpu), wallMedianUs: median(wall), wallMinUs: Math.min(...wall),
  };
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

const rand = (n: number): number => Math.floor(Math.random() * n);
const N = 2000;
const selectOnly = Array.from({ length: N }, () => `SELECT abalance FROM pgbench_accounts WHERE aid = ${1 + rand(10_000_000)};`);
const tpcb = Array.from({ length: N }, (_, i) => {
  const aid = 1 + rand(10_000_000), tid = 1 + rand(1000), bid = 1 + rand(100), delta = rand(10_001) - 5000;
  return [
    `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`,
    `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`,
    `UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid};`,
    `UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid};`,
    `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP);`,
  ][i % 5]!;
});
const orm = Array.from({ length: N }, () =>
  `SELECT "users"."id", "users"."email", "users"."created_at" FROM "users" WHERE "users"."email" = 'user${rand(1e6)}@example.com' AND "users"."deleted_at" IS NULL /* controller='users',traceparent='00-${rand(1e9).toString(16)}-01' */ LIMIT 1`);
// Every statement a new shape (a new table name), so every classify() parses.
const distinct = Array.from({ length: N }, (_, i) => `SELECT abalance FROM pgbench_accounts_${i} WHERE aid = ${1 + rand(10_000_000)};`);

await initClassifier();
const results: Result[] = [];
results.push(measure('shapeKey, pgbench -S SELECT', selectOnly, (s) => shapeKey(s).length, 50));
results.push(measure('shapeKey, pgbench tpcb mix', tpcb, (s) => shapeKey(s).length, 50));
results.push(measure('shapeKey, ORM query + trace comment', orm, (s) => shapeKey(s).length, 50));

const warm = createClassifier();
results.push(measure('classify cached, pgbench -S SELECT', selectOnly, (s) => warm.classify(s).cls.length, 50));
results.push(measure('classify cached, pgbench tpcb mix', tpcb, (s) => warm.classify(s).cls.length, 50));
results.push(measure('classify cached, ORM query + trace comment', orm, (s) => warm.classify(s).cls.length, 50));
const cachedStats = warm.stats();

// Misses: a fresh classifier before every pass, so every statement is new to its cache.
let cold = createClassifier();
results.push(measure('classify uncached (parse + walk)', distinct, (s) => cold.classify(s).cls.length, 1, () => {
  cold = createClassifier();
}));
const off = createClassifier({ cacheSize: 0 });
results.push(measure('classify, caching off', selectOnly.slice(0, 500), (s) => off.classify(s).cls.length));
results.push(measure('libpg-query parseSync alone', selectOnly.slice(0, 500), (s) => parseSync(s).stmts?.length ?? 0));

const f = (n: number, w: number) => n.toFixed(3).padStart(w);
console.log(`| ${'case'.padEnd(44)} | chars | cpu µs median | cpu µs best | wall µs median | wall µs best |`);
console.log(`|${'-'.repeat(46)}|-------|---------------|-------------|----------------|--------------|`);
for (const r of results) {
  console.log(`| ${r.name.padEnd(44)} | ${String(r.avgChars).padStart(5)} | ${f(r.cpuMedianUs, 13)} | ${f(r.cpuMinUs, 11)} | ${f(r.wallMedianUs, 14)} | ${f(r.wallMinUs, 12)} |`);
}
const byName = (n: string) => results.find((r) => r.name === n)!;
// CPU time: on a shared machine wall time mostly measures the other processes.
const checks = {
  shapeKeyUnder1us: byName('shapeKey, pgbench tpcb mix').cpuMedianUs <= TARGET_US.shapeKey100,
  cachedUnder2us: byName('classify cached, pgbench -S SELECT').cpuMedianUs <= TARGET_US.cached,
};
console.log(`cache after the cached runs: ${JSON.stringify(cachedStats)}; load average: ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(`targets (cpu median): ${JSON.stringify(checks)}`);

const date = new Date().toISOString().slice(0, 10);
const outDir = join(repoRoot(), 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `classify-${date}.json`);
writeFileSync(file, JSON.stringify({
  date: new Date().toISOString(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cpus: os.cpus().length,
  loadAverage: os.loadavg(),
  rounds: ROUNDS,
  targetsUs: TARGET_US,
  checks,
  cachedStats,
  results,
  sink,
}, null, 2) + '\n');
console.log(`wrote ${file}`);
