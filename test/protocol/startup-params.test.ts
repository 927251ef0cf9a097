/** The startup-parameter allow-list (issue 14 item 5), as a table: what passes, what is dropped, what is refused. */
import t from 'tap';
import { checkStartupParams } from '../../src/protocol/startup-params.js';

const policy = { databases: new Set(['app', 'postgres']), ignore: new Set(['statement_timeout', 'jit']) };
const check = (p: Record<string, string>) => checkStartupParams(p, policy);

t.test('allow-listed settings pass, whatever their case; user and _pq_ are not passed on', async (t) => {
  t.strictSame(
    check({ user: 'u', database: 'app', application_name: 'a', client_encoding: 'UTF8', DateStyle: 'ISO, MDY', TimeZone: 'UTC', IntervalStyle: 'iso_8601', search_path: 's', extra_float_digits: '3', '_pq_.x': '1' }),
    { ok: true, params: { database: 'app', application_name: 'a', client_encoding: 'UTF8', DateStyle: 'ISO, MDY', TimeZone: 'UTC', IntervalStyle: 'iso_8601', search_path: 's', extra_float_digits: '3' } },
  );
});

t.test('database: only the configured ones (PostgreSQL 3D000 otherwise)', async (t) => {
  t.strictSame(check({ user: 'u', database: 'other' }), { ok: false, sqlstate: '3D000', message: 'database "other" does not exist' });
  t.strictSame(check({ user: 'u' }), { ok: true, params: {} });
});

t.test('replication refused unless false', async (t) => {
  for (const v of ['database', 'true', 'on', '1', 'yes']) t.match(check({ user: 'u', replication: v }), { ok: false, sqlstate: '08P01', message: /^unsupported startup parameter: replication/ }, v);
  t.strictSame(check({ user: 'u', replication: 'false' }), { ok: true, params: {} });
});

t.test('unknown parameters: 08P01 as PgBouncer words it, unless ignored', async (t) => {
  t.strictSame(check({ user: 'u', default_transaction_read_only: 'off' }), { ok: false, sqlstate: '08P01', message: 'unsupported startup parameter: default_transaction_read_only' });
  t.strictSame(check({ user: 'u', statement_timeout: '5s', JIT: 'off' }), { ok: true, params: {} }, 'ignored silently');
});

t.test('options: only -c settings of the list; ignored ones dropped; escapes kept', async (t) => {
  t.strictSame(check({ user: 'u', options: '-c search_path=a\\ b  -cTimeZone=UTC --datestyle=ISO' }), { ok: true, params: { options: '-c search_path=a\\ b -c timezone=UTC -c datestyle=ISO' } });
  t.strictSame(check({ user: 'u', options: '-c default_transaction_read_only=off' }), { ok: false, sqlstate: '08P01', message: 'unsupported startup parameter in options: default_transaction_read_only' });
  t.strictSame(check({ user: 'u', options: '--default-transaction-read-only=off' }), { ok: false, sqlstate: '08P01', message: 'unsupported startup parameter in options: default_transaction_read_only' });
  t.strictSame(check({ user: 'u', options: '-e' }), { ok: false, sqlstate: '08P01', message: 'unsupported startup parameter in options: -e' });
  t.strictSame(check({ user: 'u', options: '-c statement_timeout=1 -c search_path=x' }), { ok: true, params: { options: '-c search_path=x' } });
  t.strictSame(check({ user: 'u', options: '-c statement_timeout=1' }), { ok: true, params: {} });
  t.strictSame(check({ user: 'u', options: '   ' }), { ok: true, params: {} });
});

t.test('settings any role may set pass, as PostgreSQL takes them at login; the ignore list wins', async (t) => {
  t.strictSame(check({ user: 'u', idle_in_transaction_session_timeout: '3000', lock_timeout: '1s' }), { ok: true, params: { idle_in_transaction_session_timeout: '3000', lock_timeout: '1s' } });
  t.strictSame(check({ user: 'u', options: '--default_transaction_isolation=serializable' }), { ok: true, params: { options: '-c default_transaction_isolation=serializable' } });
  t.strictSame(check({ user: 'u', statement_timeout: '5s' }), { ok: true, params: {} }, 'listed in ignore: dropped');
  for (const name of ['transaction_read_only', 'session_replication_role', 'log_statement', 'role', 'session_authorization', 'local_preload_libraries']) {
    t.strictSame(check({ user: 'u', [name]: 'x' }), { ok: false, sqlstate: '08P01', message: `unsupported startup parameter: ${name}` }, name);
  }
});

t.test('custom dotted settings pass as PostgreSQL accepts them (postgres.js connection: {"some.var": …})', async (t) => {
  t.strictSame(check({ user: 'u', 'some.var': 'yay', 'App.Tenant_1.x': '7' }), { ok: true, params: { 'some.var': 'yay', 'App.Tenant_1.x': '7' } });
  t.strictSame(check({ user: 'u', options: '-c app.tenant=7' }), { ok: true, params: { options: '-c app.tenant=7' } });
  // Not identifiers joined by dots: still refused; no core setting (read-only switches) has a dot.
  for (const name of ['.x', 'x.', 'a..b', '1a.b', 'a.b-c']) t.match(check({ user: 'u', [name]: 'v' }), { ok: false, sqlstate: '08P01' }, name);
  t.match(check({ user: 'u', transaction_read_only: 'off' }), { ok: false, sqlstate: '08P01' });
});
