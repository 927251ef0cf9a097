/**
 * A session that prepared statements on one writer keeps using them after the writer moves: inside a
 * transaction begun on the new writer, a Bind of a statement prepared only on the old one is prepared there
 * first (found by pgbench -M prepared through a switchover and back: "prepared statement P_1 does not exist").
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query } from '../helpers/replication.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
for (const db of [source, target]) {
  await query(db.url(), 'create table acct (id int primary key, bal int not null)');
  await query(db.url(), 'insert into acct values (1, 0), (2, 0)');
}
const proxy = await startProxy(t, source.url(), target.url(), { state: 'SOURCE_PRIMARY' });

t.test('named statements follow the session into a transaction on the new writer', async (t) => {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  const upd = { name: 'upd', text: 'update acct set bal = bal + $1 where id = $2 returning bal' };
  const sel = { name: 'sel', text: 'select bal from acct where id = $1' };
  t.equal((await c.query({ ...upd, values: [5, 1] })).rows[0].bal, 5, 'prepared and run on the source');
  t.equal((await c.query({ ...sel, values: [1] })).rows[0].bal, 5);

  await proxy.setState('WRITES_TO_AURORA', 'test: the writer moves (no databases steps here)');
  await c.query('begin');
  const r = await c.query({ ...upd, values: [7, 2] });
  t.equal(r.rows[0].bal, 7, 'the statement prepared on the source ran in a transaction on the target');
  t.equal((await c.query({ ...sel, values: [2] })).rows[0].bal, 7, 'and a read inside it sees the write');
  await c.query('commit');
  t.equal((await query(target.url(), 'select bal from acct where id = 2')).rows[0].bal, 7, 'committed on the target');

  const listed = (await (await fetch(`${proxy.adminUrl}/clients`)).json()) as { total: number; clients: Record<string, unknown>[] };
  t.equal(listed.total, 1, 'GET /clients lists the session');
  t.match(listed.clients[0], { user: 'postgres', phase: 'ready', source: { idle: true, txStatus: 'I' }, target: { idle: true, pending: 0 } }, 'with both backends, idle');

  await proxy.setState('SOURCE_PRIMARY', 'test: and back');
  await c.query('begin');
  t.equal((await c.query({ ...upd, values: [1, 1] })).rows[0].bal, 6, 'back on the source, still prepared');
  await c.query('rollback');
  t.equal((await query(source.url(), 'select bal from acct where id = 1')).rows[0].bal, 5, 'rolled back on the source');
});
