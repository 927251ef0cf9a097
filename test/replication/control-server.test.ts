/**
 * One server's control login (src/replication/control-server.ts) against a real PostgreSQL 15: a session
 * reconnects after its backend is terminated, a statement past its bound is cancelled by the server and the
 * session stays, failures come back as values with their kind and SQLSTATE, an unreachable server is backed
 * off on the session's (fake) clock, and every shape is marked and writes on a role set read-only (fencing).
 */
import t from 'tap';
import pg from 'pg';
import { startPg, freePort } from '../helpers/servers.js';
import { until } from '../helpers/wait.js';
import { controlServer } from '../../src/replication/control-server.js';

const pgServer = await startPg(t, 15);
const admin = new pg.Client({ connectionString: pgServer.url() });
await admin.connect();
t.teardown(() => admin.end());
await admin.query('create table t (v int)');

t.test('a session reconnects on its next query after pg_terminate_backend', async (t) => {
  const s = controlServer(pgServer.url(), 'target').session('terminate-test');
  t.teardown(() => s.close());
  const first = await s.ask<{ pid: number }>('select pg_backend_pid() as pid');
  if (!first.ok) throw new Error(first.error.message);
  await admin.query('select pg_terminate_backend($1)', [first.rows[0]!.pid]);
  // The server's goodbye reaches the client as an event: the session notices it is down.
  await until('the session saw its backend go', () => !s.connected(), 10_000, 10);
  const again = await s.ask<{ pid: number }>('select pg_backend_pid() as pid');
  t.ok(again.ok, 'the next query reconnects at once (the first reconnect is not backed off)');
  if (again.ok) t.not(again.rows[0]!.pid, first.rows[0]!.pid, 'on a new backend');
  t.match(s.lastError(), null, 'and the session reports no error any more');
});

t.test('a statement past its bound is cancelled by the server (timeout, 57014); the session stays', async (t) => {
  const s = controlServer(pgServer.url(), 'target', { queryTimeoutMs: 200 }).session('timeout-test');
  t.teardown(() => s.close());
  const pid = await s.ask<{ pid: number }>('select pg_backend_pid() as pid');
  const slow = await s.ask('select pg_sleep(5)');
  t.match(slow, { ok: false, error: { kind: 'timeout', sqlstate: '57014', message: /statement timeout/ } });
  const after = await s.ask<{ pid: number }>('select pg_backend_pid() as pid');
  t.same(after, pid, 'the same backend answers the next query');
});

t.test('a server error is a value: refused, with its SQLSTATE; the session stays usable', async (t) => {
  const s = controlServer(pgServer.url(), 'target').session('error-test');
  t.teardown(() => s.close());
  t.match(await s.ask('select 1/0'), { ok: false, error: { kind: 'refused', sqlstate: '22012', message: /division by zero \(SQLSTATE 22012\)/ } });
  t.match(await s.ask('select 1 as one'), { ok: true, rows: [{ one: 1 }] });
  await t.rejects(s.query('select * from no_such_table'), { code: '42P01' }, 'query() still throws for callers that want exceptions');
});

t.test('an unreachable server is unreachable, and backed off on the session clock', async (t) => {
  let clock = 1_000;
  const port = await freePort();
  const s = controlServer(`postgresql://postgres@127.0.0.1:${port}/postgres`, 'source', { now: () => clock, minBackoffMs: 500, connectTimeoutMs: 2000 }).session('down-test');
  t.teardown(() => s.close());
  t.match(await s.ask('select 1'), { ok: false, error: { kind: 'unreachable', message: /cannot connect to the source: .*ECONNREFUSED/ } });
  t.match(await s.ask('select 1'), { ok: false, error: { kind: 'unreachable', message: /source unreachable .*next attempt in 500 ms/ } }, 'no attempt during the backoff');
  clock += 500;
  t.match(await s.ask('select 1'), { ok: false, error: { kind: 'unreachable', message: /cannot connect/ } }, 'tried again once it is over');
  t.match(await s.ask('select 1'), { ok: false, error: { message: /next attempt in 1000 ms/ } }, 'the backoff doubles');
  await s.close();
  t.match(await s.ask('select 1'), { ok: false, error: { kind: 'unreachable', message: /session closed/ } });
});

t.test('every shape is marked for fencing and writes on a role whose default is read-only', async (t) => {
  await admin.query("create role fenced_ctl login superuser password 'x'");
  await admin.query('alter role fenced_ctl set default_transaction_read_only = on');
  const url = pgServer.url().replace(/\/\/[^@]*@/, '//fenced_ctl:x@');
  const server = controlServer(url, 'target');
  const s = server.session('shape');
  const c = await server.connect('shape');
  const pool = server.pool('shape', 1);
  t.teardown(async () => {
    await s.close();
    await c.end();
    await pool.end();
  });
  const seen = await Promise.all([
    s.query<{ a: string }>('select current_setting(\'application_name\') as a').then((r) => r.rows[0]!.a),
    c.query<{ a: string }>('select current_setting(\'application_name\') as a').then((r) => r.rows[0]!.a),
    pool.query<{ a: string }>('select current_setting(\'application_name\') as a').then((r) => r.rows[0]!.a),
  ]);
  t.same(seen, ['pg-cutover-control:shape', 'pg-cutover-control:shape', 'pg-cutover-control:shape']);
  await s.query('insert into t values (1)');
  await c.query('insert into t values (2)');
  await pool.query('insert into t values (3)');
  t.equal((await admin.query('select count(*)::int as n from t')).rows[0].n, 3, 'all three wrote');
});
