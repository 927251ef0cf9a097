/**
 * Client authentication at the proxy with real clients (node-postgres and libpq's psql): SCRAM-SHA-256,
 * md5 and trust users from a --users JSON file, hashed passwords copied from pg_authid, a PgBouncer
 * userlist.txt, and the PGCUTOVER_USERS environment variable. Wrong passwords and unknown users get 28P01.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { psql, startPg } from '../helpers/servers.js';
import { startProxy, type ProxyHandle } from '../helpers/proxy.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const dir = mkdtempSync(join(tmpdir(), 'pgc-auth-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// A SCRAM verifier made by PostgreSQL itself, as an operator would copy it from pg_authid.
const admin = new pg.Client({ connectionString: source.url() });
await admin.connect();
await admin.query("set password_encryption = 'scram-sha-256'; create role verifier_src login password 'from-authid'");
const verifier = (await admin.query("select rolpassword from pg_authid where rolname = 'verifier_src'")).rows[0].rolpassword as string;
await admin.end();
const md5hash = 'md5' + createHash('md5').update('hashed-pw' + 'app_md5hash').digest('hex');

const usersFile = join(dir, 'users.json');
writeFileSync(
  usersFile,
  JSON.stringify({
    users: [
      { name: 'app_scram', password: 's3cret scram', method: 'scram-sha-256' },
      { name: 'app_md5', password: 'md5-pass', method: 'md5' },
      { name: 'app_md5hash', password: md5hash, method: 'md5' },
      { name: 'app_verifier', password: verifier },
      { name: 'app_trust', method: 'trust' },
    ],
  }),
);
// These users exist at the proxy only: every client runs as the source URL's role (see backend-roles.test.ts for per-role logins).
const proxy = await startProxy(t, source.url(), target.url(), { users: usersFile, backendLogin: 'url' });

async function pgLogin(p: ProxyHandle, user: string, password: string): Promise<{ ok: true; user: string } | { ok: false; code?: string; message: string }> {
  const c = new pg.Client({ connectionString: p.url('postgres', user, password) });
  c.on('error', () => undefined);
  try {
    await c.connect();
    // The backend session always uses the source URL's credentials; the client's user stays at the proxy.
    const r = await c.query('select current_user as u, 1 as one');
    await c.end();
    return { ok: true, user: r.rows[0].u };
  } catch (e) {
    await c.end().catch(() => undefined);
    const err = e as { code?: string; message: string };
    return { ok: false, code: err.code, message: err.message };
  }
}

t.test('each method logs in with the right password (node-postgres)', async (t) => {
  for (const [user, password] of [
    ['app_scram', 's3cret scram'],
    ['app_md5', 'md5-pass'],
    ['app_md5hash', 'hashed-pw'],
    ['app_verifier', 'from-authid'],
    ['app_trust', 'anything'],
  ]) {
    t.same(await pgLogin(proxy, user!, password!), { ok: true, user: 'postgres' }, `${user} logs in`);
  }
});

t.test('each method logs in with the right password (psql / libpq)', async (t) => {
  for (const [user, password] of [
    ['app_scram', 's3cret scram'],
    ['app_md5', 'md5-pass'],
    ['app_md5hash', 'hashed-pw'],
    ['app_verifier', 'from-authid'],
  ]) {
    const r = await psql(proxy.url('postgres', user, password), 'select 1');
    t.equal(r.code, 0, `${user}: ${r.stderr}`);
  }
  const trust = await psql(`postgresql://app_trust@127.0.0.1:${proxy.listen.port}/postgres`, 'select 1', { env: { PGPASSWORD: '' }, args: ['-w'] });
  t.equal(trust.code, 0, `trust user needs no password: ${trust.stderr}`);
});

t.test('a wrong password gets 28P01 for SCRAM and md5 users', async (t) => {
  const failuresBefore = proxy.proxy.stats.authFailures;
  for (const user of ['app_scram', 'app_md5', 'app_md5hash', 'app_verifier']) {
    t.match(await pgLogin(proxy, user, 'wrong'), { ok: false, code: '28P01', message: `password authentication failed for user "${user}"` }, `${user} (pg)`);
    const r = await psql(proxy.url('postgres', user, 'wrong'), 'select 1');
    t.not(r.code, 0);
    t.match(r.stderr, `password authentication failed for user "${user}"`, `${user} (psql)`);
  }
  t.equal(proxy.proxy.stats.authFailures - failuresBefore, 8, 'every failure counted');
});

t.test('an unknown user gets the same 28P01 as a wrong password (SCRAM, no user enumeration)', async (t) => {
  t.match(await pgLogin(proxy, 'nobody', 'whatever'), { ok: false, code: '28P01', message: 'password authentication failed for user "nobody"' });
  const r = await psql(proxy.url('postgres', 'nobody', 'whatever'), 'select 1');
  t.match(r.stderr, 'password authentication failed for user "nobody"');
  // libpq without a password (-w: never prompt): the proxy asks for SCRAM, libpq has none to give.
  const np = await psql(`postgresql://nobody@127.0.0.1:${proxy.listen.port}/postgres`, 'select 1', { env: { PGPASSWORD: '' }, args: ['-w'] });
  t.not(np.code, 0);
  t.match(np.stderr, /no password supplied/);
  t.equal(np.signal, null, 'psql gave up by itself');
});

t.test('the proxy keeps serving after failed logins', async (t) => {
  t.same(await pgLogin(proxy, 'app_scram', 's3cret scram'), { ok: true, user: 'postgres' });
  t.equal(proxy.proxy.clientCount, 0, 'no login left hanging');
});

t.test('PGCUTOVER_USERS environment variable', async (t) => {
  const env = { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'env_user', password: 'env-pass', method: 'md5' }] }) };
  const p = await startProxy(t, source.url(), target.url(), {}, env);
  t.same(await pgLogin(p, 'env_user', 'env-pass'), { ok: true, user: 'postgres' });
  t.match(await pgLogin(p, 'env_user', 'nope'), { ok: false, code: '28P01' });
  t.match(await pgLogin(p, 'app_scram', 's3cret scram'), { ok: false, code: '28P01' }, 'only the env users exist');
  t.match(await pgLogin(p, 'postgres', 'postgres'), { ok: false, code: '28P01' }, 'the source user is not added when users are configured');
});

t.test('PgBouncer userlist.txt form', async (t) => {
  const f = join(dir, 'userlist.txt');
  writeFileSync(f, `; pgbouncer style\n"bouncer" "b-pass"\n"bouncer_md5" "${'md5' + createHash('md5').update('m' + 'bouncer_md5').digest('hex')}" "md5"\n`);
  const p = await startProxy(t, source.url(), target.url(), { users: f, backendLogin: 'url' });
  t.same(await pgLogin(p, 'bouncer', 'b-pass'), { ok: true, user: 'postgres' });
  t.same(await pgLogin(p, 'bouncer_md5', 'm'), { ok: true, user: 'postgres' });
  const r = await psql(p.url('postgres', 'bouncer_md5', 'm'), 'select 1');
  t.equal(r.code, 0, r.stderr);
});

t.test('without --users the source URL user logs in with SCRAM', async (t) => {
  const p = await startProxy(t, source.url(), target.url());
  t.same(await pgLogin(p, 'postgres', 'postgres'), { ok: true, user: 'postgres' });
  t.match(await pgLogin(p, 'postgres', 'bad'), { ok: false, code: '28P01' });
});

t.test('a broken users file is refused at start with the problem named', async (t) => {
  const f = join(dir, 'bad.json');
  writeFileSync(f, JSON.stringify({ users: [{ name: 'x', method: 'md5' }, { name: 'y', password: 'p', method: 'kerberos' }] }));
  await t.rejects(startProxy(t, source.url(), target.url(), { users: f }), /--users: .*user "x".*needs a password[\s\S]*--users: .*user "y".*unknown method/);
  await t.rejects(startProxy(t, source.url(), target.url(), { users: join(dir, 'missing.json') }), /--users: cannot read users file/);
});
