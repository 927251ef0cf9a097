/**
 * node-postgres (`pg`) through the proxy against a real PostgreSQL 14 source: parameters, named prepared
 * statements, errors, notices, LISTEN/NOTIFY, cancel, pipelining, large results and ParameterStatus.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { sendCancel, cancelPacket, Wire, until } from './fixtures/wire.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url());

async function client(opts: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: proxy.url(), ...opts });
  c.on('error', () => undefined);
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

async function direct(url = source.url()): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

t.test('simple and parameterised queries reach the source', async (t) => {
  const c = await client();
  const r = await c.query('select current_setting($1) as v, $2::int + 1 as n', ['server_version_num', 41]);
  t.ok(Number(r.rows[0].v) >= 140000 && Number(r.rows[0].v) < 150000, 'served by PostgreSQL 14');
  t.equal(r.rows[0].n, 42);
  const types = await c.query('select $1::text as s, $2::int8 as b, $3::bool as f, $4::jsonb as j, $5::bytea as y, $6::text as nul', [
    "it's \u00e9t\u00e9 \ud83d\ude00",
    '9007199254740993',
    true,
    JSON.stringify({ a: [1, 2] }),
    Buffer.from([0, 1, 254, 255]),
    null,
  ]);
  t.same(types.rows[0], { s: "it's \u00e9t\u00e9 \ud83d\ude00", b: '9007199254740993', f: true, j: { a: [1, 2] }, y: Buffer.from([0, 1, 254, 255]), nul: null });
  const pid = await c.query('select pg_backend_pid() as pid');
  t.equal(pid.rows[0].pid, (c as unknown as { processID: number }).processID, "BackendKeyData's pid is the writer backend's, as PostgreSQL's is its own");
});

t.test('named prepared statements are parsed once and reused', async (t) => {
  const c = await client();
  await c.query('create table prep_t (id int primary key, v text)');
  const ins = { name: 'prep-insert', text: 'insert into prep_t values ($1, $2) returning id', values: [0, ''] };
  for (let i = 1; i <= 20; i++) {
    const r = await c.query({ ...ins, values: [i, `v${i}`] });
    t.equal(r.rows[0].id, i);
  }
  const sel = { name: 'prep-select', text: 'select v from prep_t where id = $1' };
  for (const id of [3, 7, 20]) {
    const r = await c.query({ ...sel, values: [id] });
    t.equal(r.rows[0].v, `v${id}`);
  }
  const stmts = await c.query("select name, statement from pg_prepared_statements where name like 'prep-%' order by name");
  t.same(
    stmts.rows.map((r) => r.name),
    ['prep-insert', 'prep-select'],
    'each named statement exists once on the backend session',
  );
});

t.test('errors: syntax error and unique violation keep the connection usable', async (t) => {
  const c = await client();
  await t.rejects(c.query('selec 1'), { code: '42601' }, 'syntax error 42601');
  t.equal((await c.query('select 1 as one')).rows[0].one, 1, 'the connection still works');
  await c.query('create table uniq_t (id int primary key)');
  await c.query('insert into uniq_t values (1)');
  await t.rejects(c.query('insert into uniq_t values ($1)', [1]), { code: '23505', constraint: 'uniq_t_pkey' }, 'unique violation 23505');
  await c.query('begin');
  await t.rejects(c.query('insert into uniq_t values (1)'), { code: '23505' });
  await t.rejects(c.query('select 1'), { code: '25P02' }, 'failed transaction rejects further statements');
  await c.query('rollback');
  t.equal((await c.query('select count(*)::int as n from uniq_t')).rows[0].n, 1);
  await t.rejects(c.query({ name: 'bad-prep', text: 'select * from no_such_table where id = $1', values: [1] }), { code: '42P01' });
  t.equal((await c.query('select 2 as two')).rows[0].two, 2, 'usable after a failed Parse');
});

t.test('notices raised by the server reach the client', async (t) => {
  const c = await client();
  const notices: { severity?: string; message?: string }[] = [];
  c.on('notice', (n) => notices.push(n));
  await c.query("do $$ begin raise notice 'hello from %', 'plpgsql'; raise warning 'careful'; end $$");
  t.same(
    notices.map((n) => [n.severity, n.message]),
    [
      ['NOTICE', 'hello from plpgsql'],
      ['WARNING', 'careful'],
    ],
  );
});

t.test('LISTEN/NOTIFY between two clients of the proxy', async (t) => {
  const listener = await client();
  const notifier = await client();
  const got: pg.Notification[] = [];
  listener.on('notification', (n) => got.push(n));
  await listener.query('listen cutover_events');
  await notifier.query("select pg_notify('cutover_events', 'payload-1')");
  await notifier.query("notify cutover_events, 'payload-2'");
  // An idle listener gets the notification without sending anything: the proxy must forward it unprompted.
  await until(() => got.length >= 2, 5_000);
  t.same(
    got.map((n) => [n.channel, n.payload]),
    [
      ['cutover_events', 'payload-1'],
      ['cutover_events', 'payload-2'],
    ],
  );
});

t.test('cancel: a CancelRequest with the proxy key stops pg_sleep on the backend', async (t) => {
  const c = await client();
  const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
  // An hour's sleep: only the cancel can end it before the test's timeout, so 57014 proves it worked.
  const q = c.query('select pg_sleep(3600)');
  const watch = await direct();
  // Wait until the backend really runs the sleep, so the cancel is not a no-op race.
  await until(async () => (await watch.query("select 1 from pg_stat_activity where query = 'select pg_sleep(3600)' and state = 'active'")).rowCount, 10_000);
  // sendCancel returns once the proxy closed the cancel connection: it has decided (it checks the key before it
  // closes), so the sleep must still be running now.
  await sendCancel(proxy.listen.port, processID, secretKey ^ 1);
  const still = await watch.query("select 1 from pg_stat_activity where query = 'select pg_sleep(3600)' and state = 'active'");
  t.equal(still.rowCount, 1, 'a wrong secret is ignored');
  await sendCancel(proxy.listen.port, processID, secretKey);
  await t.rejects(q, { code: '57014' }, 'query_canceled');
  t.equal((await c.query('select 1 as ok')).rows[0].ok, 1, 'session usable after the cancel');
});

t.test("cancel through pg's own Client.cancel helper", async (t) => {
  const c = await client();
  const q = c.query('select pg_sleep(3601)');
  const watch = await direct();
  await until(async () => (await watch.query("select 1 from pg_stat_activity where query = 'select pg_sleep(3601)' and state = 'active'")).rowCount, 10_000);
  const helper = new pg.Client({ connectionString: proxy.url() });
  (helper as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, (c as unknown as { _activeQuery: unknown })._activeQuery);
  await t.rejects(q, { code: '57014' });
});

t.test('a cancel for an idle session, or an unknown key, harms nothing', async (t) => {
  const c = await client();
  const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
  await sendCancel(proxy.listen.port, processID, secretKey);
  await sendCancel(proxy.listen.port, 12345, 678);
  const w = await Wire.connect(proxy.listen.port);
  w.send(cancelPacket(processID, secretKey).subarray(0, 10)); // truncated
  w.destroy();
  t.equal((await c.query('select 3 as three')).rows[0].three, 3);
});

t.test('pipelining: many outstanding extended-protocol queries on one connection', async (t) => {
  const c = await client({ pipeline: true } as Partial<pg.ClientConfig>);
  const n = 500;
  const ps: Promise<pg.QueryResult>[] = [];
  for (let i = 0; i < n; i++) ps.push(c.query({ name: i % 2 ? 'pipe-a' : undefined, text: 'select $1::int * 2 as d', values: [i] }));
  const bad = c.query('select 1/0');
  // Checked now: the rejection arrives while the replies after it are still awaited.
  const badRejects = t.rejects(bad, { code: '22012' });
  for (let i = 0; i < 10; i++) ps.push(c.query('select $1::int as v', [n + i]));
  const rs = await Promise.all(ps);
  t.same(
    rs.slice(0, n).map((r) => r.rows[0].d),
    Array.from({ length: n }, (_, i) => i * 2),
    'every reply in order',
  );
  t.same(rs.slice(n).map((r) => r.rows[0].v), Array.from({ length: 10 }, (_, i) => n + i), 'queries after an error still answered');
  await badRejects;
});

t.test('large results and large parameters pass through intact', async (t) => {
  const c = await client();
  const r = await c.query("select i, repeat(md5(i::text), 20) as pad from generate_series(1, 50000) i");
  t.equal(r.rowCount, 50000);
  t.equal(r.rows[49999].i, 50000);
  t.equal(r.rows[12345].pad.length, 640);
  const big = 'x'.repeat(3 * 1024 * 1024);
  const e = await c.query('select length($1::text) as n, md5($1::text) as h', [big]);
  t.equal(e.rows[0].n, big.length, '3 MB parameter forwarded whole');
  // Several clients streaming at once.
  const others = await Promise.all([client(), client(), client()]);
  const sums = await Promise.all(others.map((o) => o.query('select sum(i)::int8 as s, count(*)::int as n from (select i from generate_series(1, 200000) i) x')));
  for (const s of sums) t.same(s.rows[0], { s: '20000100000', n: 200000 });
});

t.test('ParameterStatus changes are forwarded (SET application_name, TimeZone)', async (t) => {
  const c = await client({ application_name: 'from-startup' } as Partial<pg.ClientConfig>);
  const seen: Record<string, string> = {};
  (c as unknown as { connection: NodeJS.EventEmitter }).connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
    seen[m.parameterName] = m.parameterValue;
  });
  t.equal((await c.query('show application_name')).rows[0].application_name, 'from-startup', 'startup parameters reach the backend');
  await c.query("set application_name = 'renamed'");
  await c.query("set timezone = 'Asia/Tokyo'");
  t.equal(seen.application_name, 'renamed');
  t.equal(seen.TimeZone, 'Asia/Tokyo');
});

t.test('transactions commit and roll back on the source', async (t) => {
  const c = await client();
  await c.query('create table tx_t (id int)');
  await c.query('begin');
  await c.query('insert into tx_t values (1)');
  await c.query('commit');
  await c.query('begin');
  await c.query('insert into tx_t values (2)');
  await c.query('rollback');
  const d = await direct();
  t.same((await d.query('select id from tx_t order by id')).rows, [{ id: 1 }], 'seen directly on the source');
  const onTarget = await direct(target.url());
  t.equal((await onTarget.query("select to_regclass('tx_t') as r")).rows[0].r, null, 'nothing reached the target');
});
