/**
 * Nothing the proxy sends to the non-writer can write (issue 14 Deliver 2, DESIGN.md "Fencing"): in the
 * READS_* states the target is a replica, and one row written there breaks replication. Each route that
 * wrote on the target is replayed here against real PostgreSQL 14 (source, the writer) and 15 (target):
 * a hinted read pipelined with an INSERT, a read ended by Flush followed by an INSERT and Sync, a read-only
 * transaction turned read-write, a hinted read calling a writing function (listed or not), session SETs
 * that turn read-only off. The target must hold 0 rows afterwards; the writes the client sees succeed land
 * on the source. Also: a write during a write hold waits on the fast path too (issue 14 "Write holds apply
 * on every path"). Read-your-writes is off here, so hinted reads after a write still go to the target.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { cstr, frame, int16, int32, query, until, Wire } from '../proxy/fixtures/wire.js';
import type { CutoverState } from '../../src/domain/states.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url(), { writeFunctions: 'listed_write*', readYourWrites: false }, {
  PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'postgres', method: 'trust' }] }),
});

const SETUP = `
  create table t (id bigint generated always as identity primary key, tag text not null);
  create function unlisted_write(tag text) returns int language sql as $$ insert into t (tag) values (tag) returning 1 $$;
  create function listed_write(tag text) returns int language sql as $$ insert into t (tag) values (tag) returning 1 $$;
  create function sneaky_off() returns text language sql as $$ select set_config('default_transaction_read_only', 'off', false) $$;`;
for (const s of [source, target]) {
  const c = new pg.Client({ connectionString: s.url() });
  await c.connect();
  await c.query(SETUP);
  await c.end();
}

async function rows(url: string, tag?: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const r = tag === undefined ? await c.query('select count(*)::int as n from t') : await c.query('select count(*)::int as n from t where tag = $1', [tag]);
  await c.end();
  return r.rows[0].n;
}

async function wire(): Promise<Wire> {
  const w = await Wire.connect(proxy.listen.port);
  await w.login('postgres');
  t.teardown(() => w.destroy());
  return w;
}

/** Waits for `n` ReadyForQuery messages after message index `from`. */
async function readies(w: Wire, n: number, from: number): Promise<void> {
  await until(() => w.messages.slice(from).filter((m) => m.name === 'readyForQuery').length >= n, 10_000, 5);
  const got = w.messages.slice(from).filter((m) => m.name === 'readyForQuery').length;
  if (got < n) throw new Error(`wanted ${n} ReadyForQuery, got ${got}: ${w.describe()}`);
}

const parse = (sql: string, name = '') => frame('P', Buffer.concat([cstr(name), cstr(sql), int16(0)]));
const bind = (name = '') => frame('B', Buffer.concat([cstr(''), cstr(name), int16(0), int16(0), int16(0)]));
const describePortal = frame('D', Buffer.concat([Buffer.from('P'), cstr('')]));
const execute = frame('E', Buffer.concat([cstr(''), int32(0)]));
const FLUSH = frame('H');
const SYNC = frame('S');

const READS: CutoverState[] = ['READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA'];

t.test('every route that wrote on the replica target now writes on the source, or is refused', async (t) => {
  for (const state of READS) {
    await proxy.setState(state, 'test');
    const w = await wire();
    const tag = state.toLowerCase();

    // 1. A hinted read pipelined with an INSERT (one chunk): the INSERT waits for the read, then goes to the writer.
    for (let i = 0; i < 10; i++) {
      const from = w.messages.length;
      w.send(Buffer.concat([query('/* pg-cutover:target */ select 1'), query(`insert into t (tag) values ('${tag}-pipelined')`)]));
      await readies(w, 2, from);
    }
    // 2. The same without a hint, and in the extended protocol: read unit then write unit in one chunk.
    for (let i = 0; i < 10; i++) {
      const from = w.messages.length;
      w.send(Buffer.concat([query('select 1'), query(`insert into t (tag) values ('${tag}-pipelined')`)]));
      w.send(Buffer.concat([parse('select 1'), bind(), execute, SYNC, parse(`insert into t (tag) values ('${tag}-pipelined')`), bind(), execute, SYNC]));
      await readies(w, 4, from);
    }
    // 3. An extended-protocol read ended by Flush, then an INSERT and Sync in the same unit.
    for (let i = 0; i < 10; i++) {
      const from = w.messages.length;
      w.send(Buffer.concat([parse('select 1'), bind(), describePortal, execute, FLUSH]));
      await w.waitFor((m) => m.name === 'commandComplete', 10_000, from);
      w.send(Buffer.concat([parse(`insert into t (tag) values ('${tag}-flush')`), bind(), execute, SYNC]));
      await readies(w, 1, from);
    }
    // 4. BEGIN READ ONLY; SET TRANSACTION READ WRITE; INSERT; COMMIT (wrote on the target 5 of 12 times).
    for (let i = 0; i < 12; i++) {
      for (const sql of ['begin read only', 'set transaction read write', `insert into t (tag) values ('${tag}-rw')`, 'commit']) await w.simple(sql);
      for (const sql of ['start transaction read only', "select set_config('transaction_read_only', 'off', true)", `insert into t (tag) values ('${tag}-rw')`, 'commit']) await w.simple(sql);
      for (const sql of ['begin read only', 'set transaction_read_only = off', `insert into t (tag) values ('${tag}-rw')`, 'commit']) await w.simple(sql);
    }
    // 5. A hinted read calling a writing function: listed (--write-functions) goes to the writer; unlisted meets
    //    the replica's read-only transaction and is retried on the writer, the client sees one success.
    for (let i = 0; i < 5; i++) {
      for (const fn of ['listed_write', 'unlisted_write']) {
        const r = await w.simple(`/* pg-cutover:target */ select ${fn}('${tag}-fn')`);
        t.notOk(r.some((m) => m.name === 'error'), `${state}: ${fn} from a hinted read succeeded`);
      }
    }
    // 6. Session settings that would turn the replica's links read-write are not carried there.
    for (const sql of ['set default_transaction_read_only = off', 'set session characteristics as transaction read write']) {
      await w.simple(sql);
      const r = await w.simple(`/* pg-cutover:target */ select unlisted_write('${tag}-session')`);
      t.notOk(r.some((m) => m.name === 'error'), `${state}: after "${sql}" a hinted writing read succeeded`);
      await w.simple('reset all');
    }
    // 7. A read that turns the link's default read-write from inside a function: the backend reports it
    //    (ParameterStatus) and the link is replaced before its next unit.
    for (let i = 0; i < 3; i++) {
      await w.simple('/* pg-cutover:target */ select sneaky_off()');
      const r = await w.simple(`/* pg-cutover:target */ select unlisted_write('${tag}-sneaky')`);
      t.notOk(r.some((m) => m.name === 'error'), `${state}: a writing read after sneaky_off() succeeded`);
    }
    t.equal(await rows(target.url()), 0, `${state}: 0 rows on the replica target`);
    t.equal(await rows(source.url(), `${tag}-pipelined`), 30, `${state}: every pipelined INSERT landed on the source`);
    t.equal(await rows(source.url(), `${tag}-flush`), 10, `${state}: every INSERT after a Flush landed on the source`);
    t.equal(await rows(source.url(), `${tag}-fn`), 10, `${state}: every writing function ran once, on the source`);
    t.equal(await rows(source.url(), `${tag}-session`), 2, `${state}: writing reads after session SETs ran on the source`);
    t.equal(await rows(source.url(), `${tag}-sneaky`), 3, `${state}: writing reads after a read turned the link read-write ran on the source`);
  }
  await proxy.setState('SOURCE_PRIMARY', 'test');
});

t.test('a write during a write hold waits, also on the fast path that forwards without classifying', async (t) => {
  for (const state of ['SOURCE_PRIMARY', 'WRITES_TO_AURORA'] as const) {
    await proxy.setState(state, 'test');
    const w = await wire();
    await w.simple('select 1'); // the fast path is taken from the second unit on
    proxy.proxy.holdWritesFor(60_000);
    const from = w.messages.length;
    w.send(query("insert into t (tag) values ('held')"));
    const parked = await until(() => proxy.proxy.describeSessions().some((s) => s.waiting === 'writes held'), 10_000, 5);
    t.ok(parked, `${state}: the write is parked while writes are held`);
    t.equal(await rows(state === 'SOURCE_PRIMARY' ? source.url() : target.url(), 'held'), 0, `${state}: nothing written during the hold`);
    proxy.proxy.releaseWrites();
    await readies(w, 1, from);
    t.equal(await rows(state === 'SOURCE_PRIMARY' ? source.url() : target.url(), 'held'), 1, `${state}: written once released`);
    const c = new pg.Client({ connectionString: state === 'SOURCE_PRIMARY' ? source.url() : target.url() });
    await c.connect();
    await c.query("delete from t where tag = 'held'");
    await c.end();
  }
  await proxy.setState('SOURCE_PRIMARY', 'test');
});
