/**
 * Backend sessions ended under a client (issue 15 item 4), compared with PostgreSQL itself:
 *  - pg_terminate_backend on an idle session reaches the client as it does directly: PostgreSQL's FATAL
 *    57P01, then the close (the proxy used to reconnect silently, so pools never dropped the connection);
 *  - only an end the proxy caused itself (its fence: the link was retired first) is repaired silently, and
 *    only when the session state is replayable (not with a temp table);
 *  - target links open at login in the states that split reads, and on a transition into one.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query, startupPacket, until, Wire } from './fixtures/wire.js';

const source = await startPg(t, 14, { authMethod: 'trust' });
const target = await startPg(t, 15, { authMethod: 'trust' });
const USERS = { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'postgres', password: 'postgres' }, { name: 'raw', method: 'trust' }] }) };
const proxy = await startProxy(t, source.url(), target.url(), {}, USERS);

const admin = { source: new pg.Client({ connectionString: source.url() }), target: new pg.Client({ connectionString: target.url() }) };
for (const c of [admin.source, admin.target]) {
  await c.connect();
  t.teardown(() => c.end());
  await c.query('create role raw login superuser');
}

/** A raw client named `app` (application_name), through the proxy or directly to `port`. */
async function wire(app: string, port = proxy.listen.port): Promise<Wire> {
  const w = await Wire.connect(port);
  t.teardown(() => w.destroy());
  w.send(startupPacket({ user: 'raw', database: 'postgres', application_name: app }));
  await w.waitFor((m) => m.name === 'readyForQuery');
  return w;
}

/** Backend pids named `app` on one server. */
async function pidsOf(side: 'source' | 'target', app: string): Promise<number[]> {
  const r = await admin[side].query('select pid from pg_stat_activity where application_name = $1', [app]);
  return r.rows.map((x) => x.pid as number);
}

async function terminate(side: 'source' | 'target', app: string): Promise<void> {
  const pids = await until(() => pidsOf(side, app).then((p) => (p.length > 0 ? p : null)), 5_000);
  if (!pids) throw new Error(`no ${app} session on the ${side}`);
  for (const pid of pids) await admin[side].query('select pg_terminate_backend($1)', [pid]);
}

const told = (w: Wire) => w.errors().map((e) => `${e.severity} ${e.code} ${e.message}`);

t.test('idle pg_terminate_backend reaches the client as it does directly: FATAL 57P01, then the close', async (t) => {
  const direct = await wire('direct-idle', source.port);
  await direct.simple('select 1');
  await terminate('source', 'direct-idle');
  t.ok(await direct.waitClosed(), 'PostgreSQL closes the idle session');
  const want = told(direct);
  t.same(want, ['FATAL 57P01 terminating connection due to administrator command']);

  const faults = proxy.proxy.stats.backendFaults.source;
  const w = await wire('proxied-idle');
  await w.simple('select 1');
  await terminate('source', 'proxied-idle');
  t.ok(await w.waitClosed(), 'the proxy closes the client too');
  t.same(told(w), want, 'with the same single FATAL');
  t.equal(proxy.proxy.stats.backendFaults.source, faults + 1, 'counted');

  // node-postgres sees the error event and ends, so a pool would discard the connection.
  const c = new pg.Client({ connectionString: proxy.url(undefined, 'postgres', 'postgres') + '?application_name=pg-idle' });
  const errored = new Promise<Error & { code?: string }>((r) => c.on('error', r));
  await c.connect();
  await c.query('select 1');
  await terminate('source', 'pg-idle');
  t.match(await errored, { code: '57P01' });
});

t.test("an end the proxy caused itself (retired link, its fence) is repaired silently when the state is replayable", async (t) => {
  const w = await wire('retired-ok');
  await w.simple("set application_name = 'retired-ok'");
  await w.simple("set search_path = 'replayed', public");
  proxy.proxy.retireLinks('source', 'test fence');
  await terminate('source', 'retired-ok');
  await until(async () => (await pidsOf('source', 'retired-ok')).length === 0, 5_000);
  // The proxy has seen the end (its FATAL) before the next query is sent.
  await until(() => proxy.proxy.describeSessions().some((s) => s.applicationName === 'retired-ok' && s.source === null), 5_000);
  const faults = proxy.proxy.stats.backendFaults.source;
  const r = await w.simple('show search_path');
  t.same(told(w), [], 'the client saw nothing');
  t.match(JSON.stringify(r), /replayed/, 'session settings replayed on the new backend session');
  t.equal(proxy.proxy.stats.backendFaults.source, faults, 'not counted as a fault');

  // A temp table cannot be rebuilt: the client is told, as it would be directly.
  const p = await wire('retired-pinned');
  await p.simple('create temp table only_here (x int)');
  proxy.proxy.retireLinks('source', 'test fence');
  await terminate('source', 'retired-pinned');
  t.ok(await p.waitClosed(), 'closed');
  t.same(told(p), ['FATAL 57P01 terminating connection due to administrator command']);
});

t.test('after a write hold is released, retired idle links are replaced (opened afresh on next use)', async (t) => {
  const w = await wire('replaced');
  await w.simple('select 1');
  const [before] = await pidsOf('source', 'replaced');
  proxy.proxy.holdWritesFor(5_000);
  proxy.proxy.releaseWrites();
  await until(async () => (await pidsOf('source', 'replaced')).length === 0, 5_000);
  await w.simple('select 2');
  const after = await pidsOf('source', 'replaced');
  t.equal(after.length, 1, 'one backend session again');
  t.not(after[0], before, 'a new one');
  t.same(told(w), []);
});

t.test('target links open at login in the states that split reads, and on a transition into one', async (t) => {
  await proxy.setState('READS_50PCT_AURORA', 'test');
  await wire('warm-at-login');
  t.ok(await until(async () => (await pidsOf('target', 'warm-at-login')).length === 1, 5_000), 'a target session right after login, before any query');
  await proxy.setState('SOURCE_PRIMARY', 'test');
  const w = await wire('warm-on-transition');
  await w.simple('select 1');
  t.same(await pidsOf('target', 'warm-on-transition'), [], 'none in SOURCE_PRIMARY');
  await proxy.setState('READS_10PCT_AURORA', 'test');
  t.ok(await until(async () => (await pidsOf('target', 'warm-on-transition')).length === 1, 5_000), 'opened on the transition');
  // An idle target link the operator ends is the proxy's helper on the non-writer: repaired silently.
  await terminate('target', 'warm-on-transition');
  await until(async () => (await pidsOf('target', 'warm-on-transition')).length === 0, 5_000);
  await w.simple('select 3');
  t.same(told(w), [], 'the client saw nothing');
  await proxy.setState('SOURCE_PRIMARY', 'test');
});

t.test("an operator's termination of a read on the target reaches the client; a target shutting down does not", async (t) => {
  await proxy.setState('READS_100PCT_AURORA', 'test');
  // The target's back-off after the loss above ends: reads go there again.
  const probe = await wire('probe');
  await until(async () => JSON.stringify(await probe.simple("select current_setting('server_version_num')")).includes('"15'), 10_000);
  const w = await wire('read-terminated');
  const fallbacks = proxy.proxy.stats.targetFallbacks;
  const faults = proxy.proxy.stats.backendFaults.target;
  const q = "select pg_sleep(20) /* terminate this read */";
  w.send(query(q));
  const pid = await until(async () => (await admin.target.query("select pid from pg_stat_activity where query = $1 and state = 'active'", [q])).rows[0]?.pid as number | undefined, 5_000);
  t.ok(pid, 'the read runs on the target');
  await admin.target.query('select pg_terminate_backend($1)', [pid]);
  t.ok(await w.waitClosed(), 'the client connection closes');
  t.same(told(w), ['FATAL 57P01 terminating connection due to administrator command'], "PostgreSQL's FATAL, once");
  t.equal(proxy.proxy.stats.targetFallbacks, fallbacks, 'not run again on the source');
  t.equal(proxy.proxy.stats.backendFaults.target, faults, 'not counted against the target');
  t.same((await admin.source.query("select pid from pg_stat_activity where query = $1", [q])).rows, [], 'nothing of it on the source');

  // A target going down (fast shutdown: the same FATAL 57P01) is the target failing: the read is retried.
  const spare = await startPg(t, 15, { authMethod: 'trust' });
  const p2 = await startProxy(t, source.url(), spare.url(), { state: 'READS_100PCT_AURORA' }, USERS);
  const c = new pg.Client({ connectionString: p2.url() });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  const slow = c.query('select pg_sleep(3) as slept, current_setting(\'server_version_num\')::int / 10000 as major');
  const sparePid = await until(async () => {
    const s = new pg.Client({ connectionString: spare.url() });
    await s.connect();
    const r = await s.query("select pid from pg_stat_activity where query like 'select pg_sleep(3)%' and state = 'active'");
    await s.end();
    return r.rows[0]?.pid as number | undefined;
  }, 5_000);
  t.ok(sparePid, 'the read runs on the spare target');
  await spare.stop();
  const r = await slow;
  t.equal(r.rows[0].major, 14, 'retried on the source, the client saw no error');
  await proxy.setState('SOURCE_PRIMARY', 'test');
});
