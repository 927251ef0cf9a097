import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url());

async function client(): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

t.test('simple and parameterised queries reach the source', async (t) => {
  const c = await client();
  const r = await c.query('select current_setting($1) as v, $2::int + 1 as n', ['server_version_num', 41]);
  t.ok(Number(r.rows[0].v) >= 140000 && Number(r.rows[0].v) < 150000, 'served by PostgreSQL 14');
  t.equal(r.rows[0].n, 42);
});
