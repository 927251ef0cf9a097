/**
 * Differences postgres.js's own integration suite found between PostgreSQL and the proxy (issue 15 item 4;
 * docs/client-suites.md), each compared with PostgreSQL directly:
 *  - BackendKeyData's process id is the backend's pg_backend_pid(): postgres.js keeps it as `state.pid`
 *    and its listen tests end their own session with pg_terminate_backend(state.pid); the proxy used to
 *    hand out a random number (WARNING "PID … is not a PostgreSQL server process", nothing ended);
 *  - a custom setting as a startup parameter (`connection: { 'some.var': 'yay' }`) is accepted, as PostgreSQL
 *    accepts any dotted name at login (the proxy refused it: FATAL 08P01 unsupported startup parameter);
 *  - postgres.js's Describe-first insert of 50,000 rows (Parse/Describe/Flush, then one ~500 kB Bind with
 *    50,000 parameters, Execute, Sync; its 'big query body') completes in every state as directly (the suite's
 *    run timed out there under load, as it did directly; this pins the frames down without the load).
 */
import t from 'tap';
import pg from 'pg';
import { startRawPair } from '../helpers/raw-pair.js';
import { cstr, frame, int16, int32, startupPacket, Wire } from './fixtures/wire.js';

const { source, proxy } = await startRawPair(t, ['create table big_bind (x int)']);

async function client(url: string): Promise<pg.Client & { processID?: number }> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

/** What a client sees when it ends its own session by the pid PostgreSQL gave it at login. */
async function ownPid(url: string): Promise<{ keyIsBackendPid: boolean; terminated: boolean; error: string }> {
  const victim = await client(url);
  const other = await client(url);
  const backendPid = (await victim.query('select pg_backend_pid() as p')).rows[0].p as number;
  const ended = new Promise<string>((resolve) => victim.once('error', (e: Error & { code?: string }) => resolve(`${e.code}`)));
  const r = await other.query('select pg_terminate_backend($1) as ok', [(victim as { processID?: number }).processID]);
  const error = r.rows[0].ok === true ? await ended : 'not terminated';
  return { keyIsBackendPid: victim.processID === backendPid, terminated: r.rows[0].ok === true, error };
}

for (const state of ['SOURCE_PRIMARY', 'READS_50PCT_AURORA'] as const) {
  t.test(`${state}: BackendKeyData's pid is the writer backend's own, as directly`, async (t) => {
    await proxy.setState(state, 'test');
    const direct = await ownPid(source.url());
    t.same(direct, { keyIsBackendPid: true, terminated: true, error: '57P01' }, 'PostgreSQL');
    t.same(await ownPid(proxy.url()), direct, 'through the proxy');
  });
}

t.test('a CancelRequest with the writer pid as key still cancels through the proxy', async (t) => {
  await proxy.setState('SOURCE_PRIMARY', 'test');
  const c = await client(proxy.url());
  const running = c.query('select pg_sleep(30)').then(
    () => 'finished',
    (e: Error & { code?: string }) => `${e.code}`,
  );
  // node-postgres cancels with a second connection sending CancelRequest(processID, secretKey), once it runs.
  const admin = await client(source.url());
  for (let i = 0; i < 500; i++) {
    const r = await admin.query("select count(*)::int as n from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'");
    if (r.rows[0].n > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const canceller = new pg.Client({ connectionString: proxy.url() });
  (canceller as unknown as { cancel(c: pg.Client, q: unknown): void }).cancel(c, (c as unknown as { activeQuery: unknown }).activeQuery);
  t.equal(await running, '57014', 'canceled: 57014 as directly');
});

t.test('LISTEN on a channel whose quoted name has a ; and multi-byte characters', async (t) => {
  await proxy.setState('SOURCE_PRIMARY', 'test');
  const got = async (url: string) => {
    const l = await client(url);
    const n = await client(url);
    // postgres.js runs it as a named prepared statement (extended protocol).
    await l.query({ name: 'listen-weird', text: 'listen "wat-;.ø.§"' });
    const heard = new Promise<string>((resolve) => l.once('notification', (m: { channel: string; payload?: string }) => resolve(`${m.channel}:${m.payload}`)));
    await n.query('select pg_notify($1, $2)', ['wat-;.ø.§', 'works']);
    const out = await heard;
    await l.query('unlisten "wat-;.ø.§"');
    return out;
  };
  const direct = await got(source.url());
  t.equal(direct, 'wat-;.ø.§:works');
  t.equal(await got(proxy.url()), direct);
});

t.test('a custom dotted setting in the StartupMessage is set for the session, as directly', async (t) => {
  const seen = async (port: number) => {
    const w = await Wire.connect(port);
    t.teardown(() => w.destroy());
    w.send(startupPacket({ user: 'raw', database: 'postgres', 'some.var': 'yay' }));
    await w.waitFor((m) => m.name === 'readyForQuery' || m.name === 'error');
    if (w.errors().length > 0) return w.errors().map((e) => `${e.severity} ${e.code} ${e.message}`);
    const rows = (await w.simple("select current_setting('some.var') as x")).filter((m) => m.name === 'dataRow');
    return rows.map((m) => String((m as unknown as { fields: unknown[] }).fields[0]));
  };
  for (const state of ['SOURCE_PRIMARY', 'READS_100PCT_AURORA'] as const) {
    await proxy.setState(state, 'test');
    const direct = await seen(source.port);
    t.same(direct, ['yay'], 'PostgreSQL');
    t.same(await seen(proxy.listen.port), direct, `${state}: through the proxy`);
  }
});

/** Type letters (and CommandComplete tags) of the complete backend messages in `raw`, from `at`. */
function frames(raw: Buffer, at: number): string[] {
  const out: string[] = [];
  while (at + 5 <= raw.length) {
    const len = raw.readInt32BE(at + 1);
    if (at + 1 + len > raw.length) break;
    const type = String.fromCharCode(raw[at]);
    out.push(type === 'C' ? `C ${raw.subarray(at + 5, at + len).toString()}` : type);
    at += 1 + len;
  }
  return out;
}

/** Parse+Describe(S)+Flush, wait for the statement's description, then Bind (n parameters)+Execute+Sync: postgres.js. */
async function describeFirstInsert(port: number, n: number): Promise<string[]> {
  const w = await Wire.connect(port);
  t.teardown(() => w.destroy());
  w.send(startupPacket({ user: 'raw', database: 'postgres' }));
  await w.waitFor((m) => m.name === 'readyForQuery');
  // pg-protocol reads ParameterDescription's count as signed: scan the replies' frames here instead.
  w.rawOnly();
  const from = w.raw.length;
  const until = async (pred: (f: string[]) => boolean) => {
    for (let i = 0; i < 1000 && !pred(frames(w.raw, from)) && !w.closed; i++) await new Promise((r) => setTimeout(r, 20));
    return frames(w.raw, from);
  };
  const text = `insert into big_bind (x) values ${Array.from({ length: n }, (_, i) => `($${i + 1})`).join(',')}`;
  w.send(Buffer.concat([frame('P', Buffer.concat([cstr('big'), cstr(text), int16(0)])), frame('D', Buffer.concat([Buffer.from('S'), cstr('big')])), frame('H')]));
  await until((f) => f.includes('n') || f.includes('E'));
  const count = Buffer.alloc(2);
  count.writeUInt16BE(n);
  const vals = Array.from({ length: n }, (_, i) => Buffer.concat([int32(String(i).length), Buffer.from(String(i))]));
  w.send(Buffer.concat([frame('B', Buffer.concat([cstr(''), cstr('big'), int16(0), count, ...vals, int16(0)])), frame('E', Buffer.concat([cstr(''), int32(0)])), frame('S')]));
  return until((f) => f.includes('Z'));
}

t.test('a Describe-first insert with a 50,000-parameter Bind completes in every state, as directly', async (t) => {
  const direct = await describeFirstInsert(source.port, 50_000);
  t.same(direct, ['1', 't', 'n', '2', 'C INSERT 0 50000', 'Z']);
  for (const state of ['SOURCE_PRIMARY', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA'] as const) {
    await proxy.setState(state, 'test');
    t.same(await describeFirstInsert(proxy.listen.port, 50_000), direct, state);
  }
});
