/**
 * The router through the real proxy, with a PostgreSQL 14 source and 15 target told apart by
 * server_version_num: read split per state, writes by state, transactions never split, session state and
 * prepared statements on both backends, target failure fallback.
 */
import t from 'tap';
import pg from 'pg';
import { startPg, pgbench } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import type { CutoverState } from '../../src/domain/states.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url());

for (const s of [source, target]) {
  const c = new pg.Client({ connectionString: s.url() });
  await c.connect();
  await c.query('create table marks (id bigint generated always as identity primary key, tag text not null, at_port int default inet_server_port())');
  await c.end();
}

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

const SERVER = "select current_setting('server_version_num')::int / 10000 as major";
const major = async (c: pg.Client, text = SERVER) => (await c.query(text)).rows[0].major as number;
const set = (s: CutoverState) => proxy.setState(s, 'test');

async function count(url: string, tag: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const r = await c.query('select count(*)::int as n from marks where tag = $1', [tag]);
  await c.end();
  return r.rows[0].n;
}

/** Six standard deviations of a binomial share in points: a correct split misses it about once in 10^9 runs. */
const sixSigma = (pct: number, n: number) => 6 * 100 * Math.sqrt(((pct / 100) * (1 - pct / 100)) / n);

t.test('read split follows the state within six standard deviations over 2,000 autocommit reads', async (t) => {
  const c = await client();
  for (const [state, pct] of [['SOURCE_PRIMARY', 0], ['READS_10PCT_AURORA', 10], ['READS_50PCT_AURORA', 50], ['READS_100PCT_AURORA', 100]] as const) {
    set(state);
    let onTarget = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) if ((await major(c)) === 15) onTarget++;
    const share = (onTarget / n) * 100;
    const tol = sixSigma(pct, n);
    t.ok(Math.abs(share - pct) <= tol, `${state}: ${share.toFixed(1)}% of reads on the target (want ${pct}±${tol.toFixed(1)})`);
  }
  // Extended protocol (unnamed and named statements) splits too.
  set('READS_50PCT_AURORA');
  let named = 0;
  for (let i = 0; i < 400; i++) if ((await c.query({ name: 'which', text: SERVER })).rows[0].major === 15) named++;
  t.ok(named > 120 && named < 280, `named prepared read split: ${named}/400 on the target`);
  set('SOURCE_PRIMARY');
});

t.test('writes go to the source until WRITES_TO_AURORA, then only to the target', async (t) => {
  const c = await client();
  const before: CutoverState[] = ['SOURCE_PRIMARY', 'READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES'];
  for (const s of before) {
    set(s);
    for (let i = 0; i < 50; i++) {
      await c.query("insert into marks (tag) values ('before')");
      await c.query({ text: 'insert into marks (tag) values ($1)', values: ['before'] });
      await c.query("select nextval('marks_id_seq')"); // a SELECT that writes
    }
  }
  t.equal(await count(target.url(), 'before'), 0, 'no write reached the target before WRITES_TO_AURORA');
  t.equal(await count(source.url(), 'before'), 500, 'every write landed on the source');
  for (const s of ['WRITES_TO_AURORA', 'SOURCE_READ_ONLY', 'CUTOVER_COMPLETE'] as const) {
    set(s);
    for (let i = 0; i < 20; i++) await c.query({ text: 'insert into marks (tag) values ($1)', values: ['after'] });
  }
  t.equal(await count(source.url(), 'after'), 0, 'no write reached the source after WRITES_TO_AURORA');
  t.equal(await count(target.url(), 'after'), 60, 'every write landed on the target');
  set('SOURCE_PRIMARY');
});

t.test('a transaction never touches both backends, across random mixes and state flips', async (t) => {
  const clients = await Promise.all([client(), client(), client(), client()]);
  const states: CutoverState[] = ['SOURCE_PRIMARY', 'READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'WRITES_TO_AURORA'];
  let rnd = 12345;
  const r = () => ((rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  let split = 0;
  let txs = 0;
  // One state change at a time, each awaited: a timer firing every 3 ms regardless piled up unfinished
  // changes faster than a loaded machine finished them (the run took 2 s or 200 s, by the machine's load).
  let flipping = true;
  const flipper = (async () => {
    while (flipping) {
      await set(states[Math.floor(r() * states.length)]);
      await new Promise((res) => setTimeout(res, 3));
    }
  })();
  await Promise.all(
    clients.map(async (c) => {
      for (let i = 0; i < 300; i++) {
        const seen = new Set<number>();
        const readOnly = r() < 0.2;
        await c.query(readOnly ? 'begin read only' : 'begin');
        const steps = 1 + Math.floor(r() * 4);
        for (let k = 0; k < steps; k++) {
          if (!readOnly && r() < 0.3) await c.query("insert into marks (tag) values ('tx')");
          seen.add(await major(c, r() < 0.5 ? SERVER : { text: SERVER } as never));
        }
        await c.query(r() < 0.7 ? 'commit' : 'rollback');
        txs++;
        if (seen.size > 1) split++;
      }
    }),
  );
  flipping = false;
  await flipper;
  t.equal(split, 0, `none of ${txs} transactions saw two backends`);
  set('SOURCE_PRIMARY');
});

t.test('session state and prepared statements follow the session to the other backend', async (t) => {
  set('SOURCE_PRIMARY');
  const c = await client();
  await c.query("set application_name = 'routing-test'");
  await c.query('set statement_timeout = 12345');
  await c.query({ name: 'stmt', text: "select current_setting('application_name') as app, current_setting('statement_timeout') as st, current_setting('server_version_num')::int / 10000 as major" });
  await c.query("prepare sqlprep as select current_setting('server_version_num')::int / 10000 as major");
  set('READS_100PCT_AURORA');
  const r = await c.query({ name: 'stmt', text: "select current_setting('application_name') as app, current_setting('statement_timeout') as st, current_setting('server_version_num')::int / 10000 as major" });
  t.same(r.rows[0], { app: 'routing-test', st: '12345ms', major: 15 }, 'named statement re-parsed on the target, with the session settings');
  t.equal((await c.query('execute sqlprep')).rows[0].major, 14, 'SQL EXECUTE runs on the writer, where the PREPARE is');
  set('SOURCE_PRIMARY');
  const back = await c.query({ name: 'stmt', text: "select current_setting('application_name') as app, current_setting('statement_timeout') as st, current_setting('server_version_num')::int / 10000 as major" });
  t.same(back.rows[0], { app: 'routing-test', st: '12345ms', major: 14 }, 'and back on the source');
});

t.test('temp tables pin the session to the writer', async (t) => {
  set('SOURCE_PRIMARY');
  const c = await client();
  await c.query('create temp table scratch (x int)');
  await c.query('insert into scratch values (1)');
  set('READS_100PCT_AURORA');
  for (let i = 0; i < 20; i++) t.equal((await c.query('select count(*)::int as n from scratch')).rows[0].n, 1);
  t.equal(await major(c), 14, 'pinned session reads from the source');
  set('SOURCE_PRIMARY');
});

t.test('read-your-writes: after a write, reads stay on the writer until the other side has applied it', async (t) => {
  // No replication here: the target never applies the write, so the session's reads stay on the source.
  const p2 = await startProxy(t, source.url(), target.url(), { state: 'READS_100PCT_AURORA' });
  const c = new pg.Client({ connectionString: p2.url() });
  await c.connect();
  t.teardown(() => c.end());
  t.equal(await major(c), 15, 'reads on the target');
  await c.query("set application_name = 'ryw'");
  t.equal(await major(c), 15, 'a SET changes no data: reads stay on the target');
  await c.query("insert into marks (tag) values ('ryw')");
  for (let i = 0; i < 5; i++) t.equal(await major(c), 14, 'reads after the write go to the writer');
  t.ok(p2.proxy.stats.freshnessRedirects >= 5, 'counted as redirected for freshness');
  // Off: reads split regardless of the session's writes.
  const p3 = await startProxy(t, source.url(), target.url(), { state: 'READS_100PCT_AURORA', readYourWrites: false });
  const c3 = new pg.Client({ connectionString: p3.url() });
  await c3.connect();
  t.teardown(() => c3.end());
  await c3.query("insert into marks (tag) values ('ryw')");
  t.equal(await major(c3), 15, 'with --read-your-writes=false the next read goes to the target');
});

t.test('pgbench -M prepared -S and TPC-B run clean through every read-split state', async (t) => {
  for (const s of [source, target]) {
    const r = await pgbench(['-i', '-s', '1', '-q', s.url()]);
    t.equal(r.code, 0, `pgbench -i on ${s.major}`);
  }
  for (const state of ['SOURCE_PRIMARY', 'READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA'] as const) {
    set(state);
    for (const args of [['-S', '-M', 'prepared'], ['-M', 'prepared'], ['-S', '-M', 'simple'], ['-M', 'extended']]) {
      // A transaction count, not a duration: the same work whatever the machine's load.
      const r = await pgbench(['-n', '-t', '50', '-c', '4', ...args, proxy.url()]);
      const failed = /number of failed transactions: (\d+)/.exec(r.stdout)?.[1] ?? '0';
      t.equal(r.code, 0, `${state} pgbench ${args.join(' ')} exit 0 ${r.code === 0 ? '' : r.stderr.slice(-300)}`);
      t.equal(failed, '0', `${state} pgbench ${args.join(' ')}: no failed transactions`);
    }
  }
  set('SOURCE_PRIMARY');
});

t.test('a read the target cannot serve is retried on the source; the client sees no error', async (t) => {
  const spare = await startPg(t, 15);
  const p3 = await startProxy(t, source.url(), spare.url(), { state: 'READS_100PCT_AURORA' });
  const c = new pg.Client({ connectionString: p3.url() });
  await c.connect();
  t.teardown(() => c.end());
  t.equal(await major(c), 15);
  await spare.stop();
  for (let i = 0; i < 20; i++) t.equal(await major(c), 14, 'served by the source');
  t.ok(p3.proxy.stats.backendFaults.target >= 1, `the loss is counted against the target (${p3.proxy.stats.backendFaults.target})`);
  // After the back-off, a read tries the target again, fails to connect, and falls back.
  await new Promise((r) => setTimeout(r, 2100));
  t.equal(await major(c), 14, 'served by the source after a failed reconnect');
  t.ok(p3.proxy.stats.targetFallbacks >= 1, `fallbacks counted (${p3.proxy.stats.targetFallbacks})`);
  t.ok(p3.proxy.stats.connectFailures.target >= 1, 'connect failure counted');
  // A fresh session whose first read finds the target unreachable is served too.
  const c2 = new pg.Client({ connectionString: p3.url() });
  await c2.connect();
  t.teardown(() => c2.end());
  t.equal(await major(c2), 14);
});

t.test('a session pinned to a fenced source cannot switch read-only off', async (t) => {
  await proxy.setState('SOURCE_PRIMARY', 'test');
  const c = await client();
  await c.query('create temp table pinned_here (x int)');
  await proxy.setState('WRITES_TO_AURORA', 'test');
  for (const sql of ['set default_transaction_read_only = off', 'SET SESSION default_transaction_read_only TO false', 'begin read write']) {
    await t.rejects(c.query(sql), { code: '25006' }, `refused: ${sql}`);
  }
  t.equal((await c.query('select count(*)::int as n from pinned_here')).rows[0].n, 0, 'the session still works');
  await proxy.setState('SOURCE_PRIMARY', 'test');
});
