/**
 * Startup parameters through the proxy (issue 14 item 5): only the allow-list reaches the backends: the
 * presentation settings and those any role may set for itself (issue 15: node-postgres's own suite passes
 * statement_timeout, idle_in_transaction_session_timeout and options at login, and PostgreSQL takes them).
 * `replication` is refused (a client created a logical slot on the source through it), `options` may carry
 * only allow-listed -c settings (`-c default_transaction_read_only=off` would undo read-only at login),
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

t.test('settings any role may set reach the backend as they do directly (node-postgres config and options)', async (t) => {
  // (statement_timeout is on this proxy's --ignore-startup-parameters list: the test above)
  const cfg = { idle_in_transaction_session_timeout: 4000, lock_timeout: 500, options: '--default_transaction_isolation=serializable -c work_mem=8MB' };
  const direct = new pg.Client({ connectionString: source.url(), ...cfg } as pg.ClientConfig);
  await direct.connect();
  t.teardown(() => direct.end());
  const c = await connect(cfg as Partial<pg.ClientConfig>);
  for (const name of ['idle_in_transaction_session_timeout', 'lock_timeout', 'default_transaction_isolation', 'work_mem']) {
    const want = (await direct.query(`show ${name}`)).rows[0][name];
    t.equal((await c.query(`show ${name}`)).rows[0][name], want, `${name} = ${want}`);
  }
  t.equal((await direct.query('show lock_timeout')).rows[0].lock_timeout, '500ms', 'the direct run took them');
});

t.test("a bad value for such a setting fails the login with the backend's own error", async (t) => {
  const direct = new pg.Client({ connectionString: source.url(), lock_timeout: 'soon' } as unknown as pg.ClientConfig);
  direct.on('error', () => undefined);
  const want = await direct.connect().then(() => null, (e: { code?: string; message: string }) => e);
  t.ok(want, 'PostgreSQL refuses it');
  await t.rejects(connect({ lock_timeout: 'soon' } as unknown as Partial<pg.ClientConfig>), { code: want?.code, message: want?.message });
  t.equal((await (await connect({})).query('select 1 as one')).rows[0].one, 1, 'the proxy still serves');
});

t.test('an unknown parameter is refused like PgBouncer does', async (t) => {
  await t.rejects(connect({ options: '-c log_statement=none' }), { code: '08P01', message: 'unsupported startup parameter in options: log_statement' });
  await t.rejects(connect({ options: '-c session_replication_role=replica' }), { code: '08P01', message: 'unsupported startup parameter in options: session_replication_role' });
  t.equal((await (await connect({})).query('select 1 as one')).rows[0].one, 1, 'the proxy still serves');
});
