// Read-your-writes benchmark (issue 15 item 1): PostgreSQL 14 → 15 native logical replication, one
// pg-cutover sidecar in-process at READS_100PCT_AURORA (and READS_50PCT_AURORA), run once with
// --read-your-writes=false and once with it on (the default). Sessions of two kinds run together:
//   writers: INSERT … RETURNING id, then SELECT that row, then --reads more reads of older rows;
//   readers: reads of older rows only.
// Reports per run: own-row misses, share of reads served by the target (all reads, and the writers'),
// reads kept on the writer for freshness, read latency p50/p99, operations per second, the reader staleness
// seen. Prints a markdown table and writes JSON to bench/results/<date>-read-your-writes.json.
//   npx tsc -p tsconfig.json && node dist/bench/read-your-writes.js [--seconds 10] [--writers 4] [--readers 4] [--reads 4]
import { Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedPg } from '../src/demo/embedded.js';
import { loadStartConfig } from '../src/config/load.js';
import { startSidecar } from '../src/sidecar.js';
import type { CutoverState } from '../src/domain/states.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const say = (msg: string): void => void process.stderr.write(`[ryw] ${msg}\n`);

const opts = new Command()
  .option('--seconds <n>', 'duration of each run', '10')
  .option('--writers <n>', 'sessions that write then read', '4')
  .option('--readers <n>', 'sessions that only read', '4')
  .option('--reads <n>', 'reads per write in a writer session (the first reads its own row)', '4')
  .parse()
  .opts<{ seconds: string; writers: string; readers: string; reads: string }>();
const SECONDS = Number(opts.seconds);
const WRITERS = Number(opts.writers);
const READERS = Number(opts.readers);
const READS = Number(opts.reads);

async function q(url: string, sql: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

function quantile(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

interface Row {
  state: CutoverState;
  ryw: boolean;
  ops: number;
  opsPerSec: number;
  ownReads: number;
  ownMisses: number;
  reads: number;
  readsOnTarget: number;
  writerSessionReads: number;
  writerSessionReadsOnTarget: number;
  redirects: number;
  readP50Ms: number;
  readP99Ms: number;
  maxStalenessMs: number;
}

const SERVER = "select current_setting('server_version_num')::int / 10000 as major, v from ryw_bench where id = $1";

async function run(source: EmbeddedPg, target: EmbeddedPg, state: CutoverState, ryw: boolean): Promise<Row> {
  const cfg = loadStartConfig({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', source: source.url(), target: target.url(), state, readYourWrites: ryw, logLevel: 'warn' }, {});
  if (!cfg.ok) throw new Error(cfg.errors.join('\n'));
  const started = await startSidecar(cfg.value, {});
  if (!started.ok) throw new Error(started.errors.join('\n'));
  const sc = started.value;
  const url = `postgresql://postgres:${source.password}@127.0.0.1:${sc.listen.port}/postgres`;
  const maxId = Number((await q(source.url(), 'select max(id) as m from ryw_bench')).rows[0].m);
  const latencies: number[] = [];
  const row = { ops: 0, ownReads: 0, ownMisses: 0, reads: 0, readsOnTarget: 0, writerSessionReads: 0, writerSessionReadsOnTarget: 0 };
  const redirects0 = sc.proxy.stats.freshnessRedirects;
  const end = Date.now() + SECONDS * 1000;
  const read = async (c: pg.Client, id: number, writer: boolean): Promise<boolean> => {
    const t0 = performance.now();
    const r = await c.query({ name: 'rd', text: SERVER, values: [id] });
    latencies.push(performance.now() - t0);
    row.reads++;
    // A miss has no row to tell the server by: count it as the target's (only the target can miss).
    const onTarget = r.rowCount === 0 || r.rows[0].major === 15;
    if (onTarget) row.readsOnTarget++;
    if (writer) {
      row.writerSessionReads++;
      if (onTarget) row.writerSessionReadsOnTarget++;
    }
    return r.rowCount === 1;
  };
  const session = async (writer: boolean) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      while (Date.now() < end) {
        if (writer) {
          const id = Number((await c.query({ name: 'ins', text: 'insert into ryw_bench (v) values ($1) returning id', values: ['w'] })).rows[0].id);
          row.ops++;
          row.ownReads++;
          if (!(await read(c, id, true))) row.ownMisses++;
          for (let i = 1; i < READS; i++) await read(c, 1 + Math.floor(Math.random() * maxId), true);
        } else {
          await read(c, 1 + Math.floor(Math.random() * maxId), false);
        }
        row.ops++;
      }
    } finally {
      await c.end();
    }
  };
  await Promise.all([...Array.from({ length: WRITERS }, () => session(true)), ...Array.from({ length: READERS }, () => session(false))]);
  const out: Row = {
    state,
    ryw,
    ...row,
    opsPerSec: Math.round(row.ops / SECONDS),
    redirects: sc.proxy.stats.freshnessRedirects - redirects0,
    readP50Ms: Number(quantile(latencies, 0.5).toFixed(3)),
    readP99Ms: Number(quantile(latencies, 0.99).toFixed(3)),
    maxStalenessMs: sc.proxy.stats.readerStalenessMaxMs,
  };
  await sc.stop(2000);
  return out;
}

async function main(): Promise<void> {
  const source = await startEmbeddedPostgres({ major: 14, logical: true });
  const target = await startEmbeddedPostgres({ major: 15 });
  try {
    const ddl = 'create table ryw_bench (id bigint generated always as identity primary key, v text not null)';
    await q(source.url(), ddl);
    await q(target.url(), ddl);
    await q(source.url(), "insert into ryw_bench (v) select 'seed' from generate_series(1, 10000)");
    await q(source.url(), 'create publication ryw_pub for table ryw_bench');
    await q(target.url(), `create subscription ryw_sub connection 'host=127.0.0.1 port=${source.port} user=postgres password=${source.password} dbname=postgres' publication ryw_pub`);
    for (let i = 0; i < 300; i++) {
      const n = Number((await q(target.url(), 'select count(*) as n from ryw_bench')).rows[0].n);
      if (n >= 10000) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const rows: Row[] = [];
    for (const state of ['READS_100PCT_AURORA', 'READS_50PCT_AURORA'] as CutoverState[]) {
      for (const ryw of [false, true]) {
        say(`${state} read-your-writes ${ryw ? 'on' : 'off'}: ${SECONDS} s, ${WRITERS} writers, ${READERS} readers`);
        rows.push(await run(source, target, state, ryw));
      }
    }
    const pct = (a: number, b: number) => (b === 0 ? '–' : `${((100 * a) / b).toFixed(1)}%`);
    const lines = [
      '| state | read-your-writes | own-row misses | reads on target (all) | reads on target (writer sessions) | kept on writer for freshness | read p50 / p99 ms | ops/s | max staleness ms |',
      '|---|---|---|---|---|---|---|---|---|',
      ...rows.map((r) => `| ${r.state} | ${r.ryw ? 'on' : 'off'} | ${r.ownMisses} / ${r.ownReads} | ${pct(r.readsOnTarget, r.reads)} | ${pct(r.writerSessionReadsOnTarget, r.writerSessionReads)} | ${r.redirects} | ${r.readP50Ms} / ${r.readP99Ms} | ${r.opsPerSec} | ${r.maxStalenessMs} |`),
    ];
    process.stdout.write(lines.join('\n') + '\n');
    const dir = join(repoRoot, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${new Date().toISOString().slice(0, 10)}-read-your-writes.json`), JSON.stringify({ seconds: SECONDS, writers: WRITERS, readers: READERS, reads: READS, rows }, null, 2));
  } finally {
    await q(target.url(), 'drop subscription if exists ryw_sub').catch(() => undefined);
    await target.stop();
    await source.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    say(String((e as Error).stack ?? e));
    process.exit(1);
  },
);
