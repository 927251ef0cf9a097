/**
 * Startup parameters through the proxy (issue 14 item 5): only the allow-list reaches the backends.
 * `replication` is refused (a client created a logical slot on the source through it), `options` may carry
 * only allow-listed -c settings (`-c default_transaction_read_only=off` would undo the fence at login),
 * unknown parameters are refused like PgBouncer does unless --ignore-startup-parameters lists them, and a
 * database other than the configured ones gets PostgreSQL's 3D000.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url(), { ignoreStartupParameters: 'statement_timeout' });

async function connect(extra: Partial<pg.ClientConfig>): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: proxy.url(), ...extra });
  c.on('error', () => undefined);
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

t.test('replication=database is refused; no walsender on the source', async (t) => {
  await t.rejects(connect({ replication: 'database' } as Partial<pg.ClientConfig>), { code: '08P01', message: /unsupported startup parameter: replication/ });
  const admin = new pg.Client({ connectionString: source.url() });
  await admin.connect();
  t.teardown(() => admin.end());
  t.equal((await admin.query("select count(*)::int as n from pg_stat_activity where backend_type = 'walsender'")).rows[0].n, 0);
});

t.test('options: allow-listed -c settings apply on the backend, others are refused', async (t) => {
  const c = await connect({ options: '-c search_path=from_options' });
  t.equal((await c.query('show search_path')).rows[0].search_path, 'from_options');
  await t.rejects(connect({ options: '-c default_transaction_read_only=off' }), { code: '08P01', message: 'unsupported startup parameter in options: default_transaction_read_only' });
});

t.test('an ignored parameter is dropped silently; an allow-listed one applies', async (t) => {
  const c = await connect({ statement_timeout: 1234, application_name: 'allowed-app' } as Partial<pg.ClientConfig>);
  t.equal((await c.query('show statement_timeout')).rows[0].statement_timeout, '0', 'statement_timeout did not reach the backend');
  t.equal((await c.query('show application_name')).rows[0].application_name, 'allowed-app');
});

t.test('an unknown parameter is refused like PgBouncer does', async (t) => {
  await t.rejects(connect({ lock_timeout: 1000 } as Partial<pg.ClientConfig>), { code: '08P01', message: 'unsupported startup parameter: lock_timeout' });
  t.equal((await (await connect({})).query('select 1 as one')).rows[0].one, 1, 'the proxy still serves');
});
