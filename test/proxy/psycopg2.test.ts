/**
 * Python psycopg2 (libpq underneath) through the proxy: connect, parameters, commit/rollback, server-side
 * errors, copy_expert in both directions, a failing COPY, named cursors, notices. The checks run in
 * fixtures/psycopg2_client.py (Debian's python3-psycopg2) and come back as one JSON object.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { runPython } from '../helpers/python.js';
import { repoPath } from '../helpers/repo.js';

const SCRIPT = repoPath('test/proxy/fixtures/psycopg2_client.py');

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url());

const run = (dsn: string) => runPython(SCRIPT, [dsn], 30_000);

const r = await run(proxy.url());
t.equal(r.code, 0, `script ran\n${r.stderr}`);
const out = JSON.parse(r.stdout || '{}') as Record<string, unknown>;

t.test('connect (SCRAM at the proxy) and the server behind it', async (t) => {
  t.match(out.connect, { user: 'postgres', backend_pid: true });
  const v = (out.connect as { server_version_num: number }).server_version_num;
  t.ok(v >= 140000 && v < 150000, `PostgreSQL 14 source (${v})`);
});

t.test('parameters are interpolated and typed', async (t) => {
  t.same(out.parameters, [42, "O'Reilly \u00e9\u00e8", '2.50', true, '2024-02-29', [1, 2, 3]]);
});

t.test('commit and rollback', async (t) => {
  t.equal(out.commit, 2);
  t.same(out.rollback, { inside: 3, after: 2 });
  t.equal(out.executemany_and_dict, 50);
});

t.test('server-side errors carry SQLSTATE and leave the connection usable', async (t) => {
  t.same(out.server_error, { pgcode: '23502', diag_column: 'v', usable_after: 7 });
  t.equal(out.syntax_error, '42601');
});

t.test('copy_expert: COPY FROM STDIN and COPY TO STDOUT', async (t) => {
  t.same(out.copy_expert, {
    count: 2000,
    sum: (1000 + 2999) * 1000,
    csv: '1000,copied 1000\n1001,copied 1001\n1002,copied 1002\n',
  });
  t.same(out.copy_fail, { pgcode: '22P02', count_after: 2000 }, 'a bad COPY row fails the COPY and loads nothing');
});

t.test('named (server-side) cursor and notices', async (t) => {
  t.equal(out.server_side_cursor, (5000 * 5001) / 2);
  t.same(out.autocommit_and_notices, ['NOTICE:  py notice']);
});

t.test('the rows are on the source, not the target', async (t) => {
  const src = new pg.Client({ connectionString: source.url() });
  const tgt = new pg.Client({ connectionString: target.url() });
  await src.connect();
  await tgt.connect();
  t.teardown(() => Promise.all([src.end(), tgt.end()]));
  t.equal((await src.query('select count(*)::int as n from py_copy')).rows[0].n, 2000);
  t.equal((await tgt.query("select to_regclass('py_copy') as r")).rows[0].r, null);
});

t.test('a wrong password is refused by the proxy with 28P01', async (t) => {
  const bad = await run(proxy.url('postgres', 'postgres', 'wrong'));
  t.not(bad.code, 0);
  t.match(bad.stderr, /password authentication failed for user "postgres"/);
});

t.test('the same script through the proxy in READS_50PCT and READS_100PCT gives the same answers', async (t) => {
  const want = { ...out };
  delete want.connect;
  for (const state of ['READS_50PCT_AURORA', 'READS_100PCT_AURORA'] as const) {
    // Fresh tables: the script creates its own (through the proxy, on the writer: the source).
    const src = new pg.Client({ connectionString: source.url() });
    await src.connect();
    await src.query('drop table if exists py_t, py_copy');
    await src.end();
    await proxy.setState(state, 'test');
    const r = await run(proxy.url());
    t.equal(r.code, 0, `${state}: script ran\n${r.stderr}`);
    const got = JSON.parse(r.stdout || '{}') as Record<string, unknown>;
    delete got.connect;
    t.same(got, want, `${state}: every answer as in SOURCE_PRIMARY`);
  }
  await proxy.setState('SOURCE_PRIMARY', 'test');
});
