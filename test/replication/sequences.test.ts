/**
 * The one sequence sync (src/replication/sequences.ts) used by the switchover, the rollback and the shadow's
 * headroom: exact values, headroom in increments within the sequence's bounds, descending sequences, never
 * backwards for the shadow, and sequences missing on the destination reported.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { syncSequences } from '../../src/replication/sequences.js';

const server = await startPg(t, 15);
const admin = new pg.Client({ connectionString: server.url() });
await admin.connect();
await admin.query('create database seq_from');
await admin.query('create database seq_to');
await admin.end();
const from = new pg.Client({ connectionString: server.url('seq_from') });
const to = new pg.Client({ connectionString: server.url('seq_to') });
await Promise.all([from.connect(), to.connect()]);
t.teardown(() => Promise.allSettled([from.end(), to.end()]));

const ddl = `
  create sequence up;
  create sequence by5 increment by 5;
  create sequence capped maxvalue 1000;
  create sequence down increment by -1 minvalue -100 maxvalue -1 start with -1;
  create sequence unused;`;
await from.query(ddl + 'create sequence only_on_source;');
await to.query(ddl);
await from.query("select setval('up', 42), setval('by5', 100), setval('capped', 990), setval('down', -10), setval('only_on_source', 7)");

const last = async (db: pg.Client) =>
  Object.fromEntries((await db.query<{ n: string; v: string | null }>('select sequencename as n, last_value::text as v from pg_sequences order by 1')).rows.map((r) => [r.n, r.v]));

t.test('exact values, unused sequences left alone, missing ones reported', async (t) => {
  const r = await syncSequences(from, to);
  t.same(r.missing, ['public.only_on_source']);
  t.same(await last(to), { by5: '100', capped: '990', down: '-10', unused: null, up: '42' });
});

t.test('headroom counts increments and stays within bounds', async (t) => {
  await syncSequences(from, to, { headroom: 20 });
  t.same(await last(to), { by5: '200', capped: '1000', down: '-30', unused: null, up: '62' });
});

t.test('without neverBackwards the switchover sets the source value exactly, even below the destination', async (t) => {
  await syncSequences(from, to, { headroom: 20 });
  await syncSequences(from, to);
  t.same(await last(to), { by5: '100', capped: '990', down: '-10', unused: null, up: '42' });
});

t.test('neverBackwards keeps a destination already further along (shadow headroom)', async (t) => {
  await to.query("select setval('up', 500), setval('down', -90)");
  await syncSequences(from, to, { headroom: 20, neverBackwards: true });
  t.same(await last(to), { by5: '200', capped: '1000', down: '-90', unused: null, up: '500' });
  await to.query("select setval('up', 1)");
  await syncSequences(from, to, { headroom: 20, neverBackwards: true });
  t.equal((await last(to)).up, '62', 'and moves one that is behind');
  t.equal((await to.query("select nextval('up') as v")).rows[0].v, '63', 'the next value follows the set one');
});
