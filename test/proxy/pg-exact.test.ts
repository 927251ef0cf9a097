/**
 * PostgreSQL's exact behaviour through the proxy (issue 15 item 4, issue 16 item 2): each protocol difference
 * measured through the proxy, compared with what PostgreSQL itself sends (the servers run with trust auth so
 * a raw client can log in to them directly as well).
 *  - extended-protocol units ended by Flush (cursor pattern, postgres.js's Parse/Describe/Flush) answer at
 *    once in the states that split reads (they deadlocked: the reply was held for a ReadyForQuery);
 *  - a read retried on the source after the target refused it does not re-Parse the unit's own statement
 *    (42P05); a read the target refuses for schema drift (42P01...) is retried on the source, counted
 *    against the target only when the source does not give the same error;
 *  - a 57014 (statement_timeout, pg_cancel_backend) reaches the client and is never run again on the source.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { cstr, frame, int16, int32, query, Wire, type Msg } from './fixtures/wire.js';

const source = await startPg(t, 14, { authMethod: 'trust' });
const target = await startPg(t, 15, { authMethod: 'trust' });
const USERS = { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'postgres', password: 'postgres' }, { name: 'raw', method: 'trust' }] }) };
const proxy = await startProxy(t, source.url(), target.url(), { state: 'READS_100PCT_AURORA' }, USERS);

for (const s of [source, target]) {
  const c = new pg.Client({ connectionString: s.url() });
  await c.connect();
  await c.query('create table both_sides (id int primary key, v text)');
  await c.query("insert into both_sides select g, 'v' || g from generate_series(1, 10) g");
  if (s === source) await c.query('create table only_src (id int)');
  if (s === source) await c.query('insert into only_src values (1), (2)');
  await c.query('create role raw login superuser');
  await c.end();
}

const parse = (sql: string, name = '') => frame('P', Buffer.concat([cstr(name), cstr(sql), int16(0)]));
const bind = (name = '', params: string[] = []) =>
  frame('B', Buffer.concat([cstr(''), cstr(name), int16(0), int16(params.length), ...params.map((p) => Buffer.concat([int32(Buffer.byteLength(p)), Buffer.from(p)])), int16(0)]));
const describePortal = () => frame('D', Buffer.concat([Buffer.from('P'), cstr('')]));
const describeStatement = (name = '') => frame('D', Buffer.concat([Buffer.from('S'), cstr(name)]));
const execute = (rows = 0) => frame('E', Buffer.concat([cstr(''), int32(rows)]));
const FLUSH = frame('H');
const SYNC = frame('S');

/** Logs a raw trust client in: through the proxy (as `raw`) or directly to a server. */
async function wire(port = proxy.listen.port): Promise<Wire> {
  const w = await Wire.connect(port);
  t.teardown(() => w.destroy());
  await w.login('raw');
  return w;
}

const names = (ms: Msg[]) => ms.map((m) => (m.name === 'error' ? `error ${m.code}` : m.name));

/** Sends `bytes` and waits for `count` messages after `from`. */
async function replies(w: Wire, bytes: Buffer, count: number): Promise<string[]> {
  const from = w.messages.length;
  w.send(bytes);
  await w.waitFor(() => w.messages.length - from >= count, 5_000);
  return names(w.messages.slice(from));
}

/** The cursor pattern (pg-cursor, query streams): Execute(rows = 3) + Flush, three times, then Sync. */
async function cursorWalk(w: Wire): Promise<string[]> {
  const sql = 'select id from both_sides order by id';
  const seen: string[] = [];
  seen.push(...(await replies(w, Buffer.concat([parse(sql), bind(), describePortal(), execute(3), FLUSH]), 6)));
  seen.push(...(await replies(w, Buffer.concat([execute(3), FLUSH]), 4)));
  seen.push(...(await replies(w, Buffer.concat([execute(5), FLUSH]), 5)));
  seen.push(...(await replies(w, SYNC, 1)));
  return seen;
}

/** postgres.js: Parse + Describe statement + Flush, wait for the descriptions, then Bind + Execute + Sync. */
async function describeThenRun(w: Wire, name: string): Promise<string[]> {
  const seen = await replies(w, Buffer.concat([parse('select v from both_sides where id = $1::int', name), describeStatement(name), FLUSH]), 3);
  seen.push(...(await replies(w, Buffer.concat([bind(name, ['4']), execute(), SYNC]), 4)));
  return seen;
}

t.test('units ended by Flush answer at once in READS_100PCT and READS_50PCT, exactly as PostgreSQL does', async (t) => {
  const direct = await wire(target.port);
  const wantCursor = await cursorWalk(direct);
  t.same(wantCursor.slice(0, 6), ['parseComplete', 'bindComplete', 'rowDescription', 'dataRow', 'dataRow', 'dataRow'], 'PostgreSQL answers the Flush');
  const wantDescribe = await describeThenRun(direct, 'pjs1');
  for (const state of ['READS_100PCT_AURORA', 'READS_50PCT_AURORA'] as const) {
    await proxy.setState(state, 'test');
    const w = await wire();
    for (let i = 0; i < 6; i++) {
      t.same(await cursorWalk(w), wantCursor, `${state}: cursor walk ${i} as direct`);
      t.same(await describeThenRun(w, `pjs${i}`), wantDescribe, `${state}: Parse/Describe/Flush then Bind/Execute/Sync ${i} as direct`);
    }
    t.same((await w.simple('select 1')).map((m) => m.name), ['rowDescription', 'dataRow', 'commandComplete', 'readyForQuery'], 'the session goes on');
  }
  await proxy.setState('READS_100PCT_AURORA', 'test');
});

t.test('a Flush-ended read is not held, and pipelined units behind a held read keep their order', async (t) => {
  const w = await wire();
  // A held read (ended by Sync), then at once another unit: both answered, in order.
  const from = w.messages.length;
  w.send(Buffer.concat([query("select 'first' as a"), query("select 'second' as b")]));
  await w.waitFor(() => w.messages.slice(from).filter((m) => m.name === 'readyForQuery').length === 2);
  const fields = w.messages.slice(from).filter((m) => m.name === 'rowDescription').map((m) => (m as unknown as { fields: { name: string }[] }).fields[0].name);
  t.same(fields, ['a', 'b']);
});

t.test('a read the target refuses for schema drift is retried on the source, without 42P05', async (t) => {
  const faults = proxy.proxy.stats.backendFaults.target;
  const fallbacks = proxy.proxy.stats.targetFallbacks;
  const w = await wire();
  // The unit parses the named statement itself: the retry must not re-Parse it first (42P05).
  const got = await replies(w, Buffer.concat([parse('select count(*)::int as n from only_src', 'named1'), bind('named1'), execute(), SYNC]), 5);
  t.same(got, ['parseComplete', 'bindComplete', 'dataRow', 'commandComplete', 'readyForQuery'], 'served by the source, no error');
  t.equal(proxy.proxy.stats.targetFallbacks, fallbacks + 1, 'counted as a fallback');
  t.equal(proxy.proxy.stats.backendFaults.target, faults + 1, 'and as a target fault (the source did not give 42P01)');
  // The statement is now prepared on both: Bind alone works (it runs on the source again).
  t.same(await replies(w, Buffer.concat([bind('named1'), execute(), SYNC]), 4), ['bindComplete', 'dataRow', 'commandComplete', 'readyForQuery']);
  // node-postgres, named and unnamed.
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  t.equal((await c.query({ name: 'cnt', text: 'select count(*)::int as n from only_src' })).rows[0].n, 2);
  t.equal((await c.query({ name: 'cnt', text: 'select count(*)::int as n from only_src' })).rows[0].n, 2);
  t.equal((await c.query('select count(*)::int as n from only_src where id > $1', [0])).rows[0].n, 2);
  t.equal((await c.query('select count(*)::int as n from only_src')).rows[0].n, 2);
  // A table missing on both sides is the client's own error: it gets PostgreSQL's 42P01, the target is not blamed.
  const before = proxy.proxy.stats.backendFaults.target;
  await t.rejects(c.query('select * from nowhere_at_all'), { code: '42P01' });
  t.equal(proxy.proxy.stats.backendFaults.target, before, 'an error the source gives too is not the target’s fault');
  t.equal((await c.query('select 1 as one')).rows[0].one, 1);
});

t.test('a 57014 on the target reaches the client and is never run again on the source', async (t) => {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  const fallbacks = proxy.proxy.stats.targetFallbacks;
  const onSource = proxy.proxy.stats.statements.source;
  await c.query("set statement_timeout = '100ms'");
  const sourceAfterSet = proxy.proxy.stats.statements.source;
  t.ok(sourceAfterSet > onSource, 'the SET went to the writer');
  await t.rejects(c.query('select pg_sleep(2) from both_sides limit 1'), { code: '57014', message: /statement timeout/ });
  t.equal(proxy.proxy.stats.targetFallbacks, fallbacks, 'not retried');
  t.equal(proxy.proxy.stats.statements.source, sourceAfterSet, 'nothing ran on the source');
  await c.query('reset statement_timeout');
  // pg_cancel_backend from another session on the target.
  const admin = new pg.Client({ connectionString: target.url() });
  await admin.connect();
  t.teardown(() => admin.end());
  const q = c.query('select pg_sleep(20) /* cancel me */, count(*) from both_sides');
  let pid: number | undefined;
  for (let i = 0; i < 200 && pid === undefined; i++) {
    pid = (await admin.query("select pid from pg_stat_activity where query like 'select pg_sleep(20) /* cancel me */%' and state = 'active'")).rows[0]?.pid;
    if (pid === undefined) await new Promise((r) => setTimeout(r, 25));
  }
  t.ok(pid, 'the read runs on the target');
  // Expect the rejection before cancelling: the 57014 may reach the client before pg_cancel_backend returns.
  const cancelled = t.rejects(q, { code: '57014' });
  await admin.query('select pg_cancel_backend($1)', [pid]);
  await cancelled;
  t.equal(proxy.proxy.stats.targetFallbacks, fallbacks, 'not retried');
  t.equal((await c.query('select 2 as two')).rows[0].two, 2, 'the session goes on');
});

t.test('a SET sent over the extended protocol is replayed on the other backend', async (t) => {
  await proxy.setState('READS_50PCT_AURORA', 'test');
  const w = await wire();
  t.same(await replies(w, Buffer.concat([parse("set search_path = 'ext_path', public"), bind(), execute(), SYNC]), 4), ['parseComplete', 'bindComplete', 'commandComplete', 'readyForQuery']);
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  await c.query({ name: 'set-tz', text: "set timezone = 'Asia/Tokyo'" });
  const paths = new Set<string>();
  const zones = new Set<string>();
  const majors = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const ms = await w.simple("select current_setting('search_path') as p");
    paths.add(String((ms.find((m) => m.name === 'dataRow') as unknown as { fields: string[] }).fields[0]));
    const r = await c.query("select current_setting('timezone') as z, current_setting('server_version_num')::int / 10000 as major");
    zones.add(r.rows[0].z);
    majors.add(r.rows[0].major);
  }
  t.same([...paths], ['ext_path, public'], 'every read saw the extended-protocol SET');
  t.same([...zones], ['Asia/Tokyo'], 'also a named prepared SET (node-postgres)');
  t.same([...majors].sort(), [14, 15], 'reads went to both backends');
  await proxy.setState('READS_100PCT_AURORA', 'test');
});
