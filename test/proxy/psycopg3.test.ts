/**
 * psycopg 3 (Debian's python3-psycopg on libpq 15) through the proxy, compared with the same script run
 * directly against PostgreSQL 14 (issue 15: client libraries behave through the proxy as they do directly).
 * It exercises what psycopg 3 does differently from psycopg2 and node-postgres: auto-prepared named
 * statements after five executions (text and binary), libpq's pipeline mode (PQsendFlushRequest, one Sync
 * per pipeline) with and without an error in the middle, executemany as a pipeline, server-side cursors,
 * COPY with write_row, errors and notices. Run in SOURCE_PRIMARY, READS_50PCT and READS_100PCT: in the
 * split states the named statements move between the backends, so every answer must still be the direct one.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { runPython } from '../helpers/python.js';
import { replicate } from '../helpers/replication.js';
import { repoPath } from '../helpers/repo.js';

const SCRIPT = repoPath('test/proxy/fixtures/psycopg3_client.py');

const STATES = ['SOURCE_PRIMARY', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA'] as const;
const tagOf = (state: string) => state.toLowerCase().replace(/[^a-z0-9]/g, '_');

// A real migration's setup: the target a logical replica of the source, so read-your-writes works by LSN
// and the reads after the script's writes reach the target once it has applied them.
const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
{
  const c = new pg.Client({ connectionString: source.url() });
  await c.connect();
  await c.query('create table ro_data (id int primary key, v text, n numeric)');
  await c.query("insert into ro_data select g, 'row ' || g, g * 1.5 from generate_series(1, 50) g");
  for (const tag of ['direct', ...STATES.map(tagOf)]) {
    await c.query(`create table w_${tag} (id int primary key, v text)`);
    await c.query(`create table c_${tag} (id int, v text)`);
  }
  await c.end();
}
await replicate(source, target);
const proxy = await startProxy(t, source.url(), target.url());

const run = (dsn: string, tag: string) => runPython(SCRIPT, [dsn, tag], 60_000);

const direct = await run(source.url(), 'direct');
t.equal(direct.code, 0, `the script runs directly\n${direct.stderr}`);
const want = JSON.parse(direct.stdout || '{}') as Record<string, unknown>;

t.test('the direct answers are what PostgreSQL gives (sanity of the script itself)', async (t) => {
  t.equal((want.auto_prepared as string[]).length, 20);
  t.same(want.pipeline, [50, 'row 1,row 2,row 3']);
  t.equal(want.pipeline_rows, 30);
  t.match(want.pipeline_error, { sqlstate: '23505' });
  t.equal(want.executemany, 50);
  t.equal(want.server_cursor, (50 * 51) / 2);
  t.equal(want.copy_count, 500);
  t.match(want.div_zero, { sqlstate: '22012' });
  t.match(want.undefined_column, { sqlstate: '42703' });
  t.same(want.notices, ['pg3 notice']);
});

for (const state of STATES) {
  t.test(`through the proxy in ${state}: every answer as directly`, async (t) => {
    await proxy.setState(state, 'test');
    const before = proxy.proxy.stats.statements.target;
    const r = await run(proxy.url(), tagOf(state));
    t.equal(r.code, 0, `script ran\n${r.stderr}`);
    const got = JSON.parse(r.stdout || '{}') as Record<string, unknown>;
    for (const k of Object.keys(want)) t.same(got[k], want[k], k);
    const onTarget = proxy.proxy.stats.statements.target - before;
    if (state === 'SOURCE_PRIMARY') t.equal(onTarget, 0, 'nothing ran on the target');
    else t.ok(onTarget > 0, `the reads really went to the target too (${onTarget} statements there)`);
  });
}

t.test('every write went to the source: the target has exactly what replication brought', async (t) => {
  await proxy.setState('SOURCE_PRIMARY', 'test');
  const sum = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const parts: string[] = [];
      for (const tag of ['direct', ...STATES.map(tagOf)]) {
        parts.push((await c.query(`select (select count(*) from w_${tag}) || '/' || (select count(*) from c_${tag}) as n`)).rows[0].n);
      }
      return parts.join(' ');
    } finally {
      await c.end();
    }
  };
  const onSource = await sum(source.url());
  t.equal(onSource, '80/500 80/500 80/500 80/500', 'each run kept 80 rows (the pipeline with an error wrote nothing) and copied 500');
  const deadline = Date.now() + 30_000;
  let onTarget = await sum(target.url());
  while (onTarget !== onSource && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    onTarget = await sum(target.url());
  }
  t.equal(onTarget, onSource, 'the target converged on the source (no write landed there directly: a duplicate would have broken replication)');
});
