/**
 * Each client runs as its own role on both backends (issue 15 item 3): `current_user` and `session_user`
 * through the proxy are the login role on the source and on the target, in SOURCE_PRIMARY,
 * READS_100PCT_AURORA and WRITES_TO_AURORA, with no plaintext password in any file:
 * - SCRAM pass-through: the users file holds pg_authid verifiers; the proxy recovers the ClientKey from the
 *   client's proof and logs in to both backends with it;
 * - md5: the users file holds the pg_authid md5 hash, which answers the backends' md5 challenges;
 * - --auth-lookup: no users file entry at all, the verifier is read from the source through the control login.
 * A wrong password is 28P01; a role missing on the target, or created there with another salt, fails that
 * role's target login with a clear 28000, without tripping anything for other clients.
 */
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy, type ProxyHandle } from '../helpers/proxy.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const dir = mkdtempSync(join(tmpdir(), 'pgc-roles-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const PASSWORDS: Record<string, string> = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw', dave: 'dave-pw', eve: 'eve-pw', frank: 'frank-pw' };

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

// Roles made on the source as an application's roles are; their secrets copied to the target as a migration
// does (CREATE ROLE ... PASSWORD '<pg_authid secret>' stores it as is). eve is not copied; frank is created
// on the target separately with the same password: same password, another salt.
await sql(source.url(), `
  set password_encryption = 'scram-sha-256';
  create role alice login password '${PASSWORDS.alice}';
  create role bob login password '${PASSWORDS.bob}';
  create role carol login password '${PASSWORDS.carol}';
  create role eve login password '${PASSWORDS.eve}';
  create role frank login password '${PASSWORDS.frank}';
  set password_encryption = 'md5';
  create role dave login password '${PASSWORDS.dave}';
  create table who (x int); insert into who values (1);
  grant select, update on who to alice, bob, carol, dave, eve, frank;
`);
const secrets = new Map<string, string>(
  (await sql(source.url(), `select rolname, rolpassword from pg_authid where rolname in ('alice','bob','carol','dave','eve','frank')`)).rows.map((r) => [r.rolname, r.rolpassword]),
);
await sql(target.url(), `
  create role alice login password '${secrets.get('alice')}';
  create role bob login password '${secrets.get('bob')}';
  create role carol login password '${secrets.get('carol')}';
  create role dave login password '${secrets.get('dave')}';
  set password_encryption = 'scram-sha-256';
  create role frank login password '${PASSWORDS.frank}';
  create table who (x int); insert into who values (1);
  grant select, update on who to alice, bob, carol, dave, frank;
`);

// dave has only an md5 hash: both servers must ask him with md5 (a scram-sha-256 line refuses md5 secrets).
for (const pgs of [source, target]) {
  const hba = (await sql(pgs.url(), 'show hba_file')).rows[0].hba_file as string;
  writeFileSync(hba, `host all dave 127.0.0.1/32 md5\n${readFileSync(hba, 'utf8')}`);
  await sql(pgs.url(), 'select pg_reload_conf()');
}

const usersFile = join(dir, 'users.json');
writeFileSync(
  usersFile,
  JSON.stringify({
    users: [
      { name: 'alice', password: secrets.get('alice') },
      { name: 'bob', password: secrets.get('bob') },
      { name: 'carol', password: secrets.get('carol') },
      { name: 'dave', password: secrets.get('dave'), method: 'md5' },
      { name: 'eve', password: secrets.get('eve') },
      { name: 'frank', password: secrets.get('frank') },
    ],
  }),
);

t.test('no plaintext password in the users file', async (t) => {
  const text = readFileSync(usersFile, 'utf8');
  for (const pw of Object.values(PASSWORDS)) t.notOk(text.includes(pw), `${pw} is not in the file`);
});

interface Who {
  current_user: string;
  session_user: string;
  port: number;
}

async function whoami(p: ProxyHandle, user: string, query: string): Promise<Who> {
  const c = new pg.Client({ connectionString: p.url('postgres', user, PASSWORDS[user]) });
  await c.connect();
  try {
    return (await c.query(query)).rows[0] as Who;
  } finally {
    await c.end();
  }
}

const READ = 'select current_user, session_user, inet_server_port() as port from who';
// Classified as a write (row lock): goes where writes go, the source before WRITES_TO_AURORA.
const WRITE = 'select current_user, session_user, inet_server_port() as port from who for update';

async function checkRoles(t: Test, p: ProxyHandle, roles: string[]): Promise<void> {
  const expect = (state: string) =>
    state === 'SOURCE_PRIMARY'
      ? { read: source.port, write: source.port }
      : state === 'READS_100PCT_AURORA'
        ? { read: target.port, write: source.port }
        : { read: target.port, write: target.port };
  for (const state of ['SOURCE_PRIMARY', 'READS_100PCT_AURORA', 'WRITES_TO_AURORA'] as const) {
    await p.setState(state, 'test');
    for (const user of roles) {
      const ports = expect(state);
      t.same(await whoami(p, user, READ), { current_user: user, session_user: user, port: ports.read }, `${state} ${user}: read`);
      t.same(await whoami(p, user, WRITE), { current_user: user, session_user: user, port: ports.write }, `${state} ${user}: write`);
    }
  }
  await p.setState('SOURCE_PRIMARY', 'test');
}

t.test('three SCRAM roles and an md5 role run as themselves on both backends (verifiers from pg_authid)', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { users: usersFile });
  await checkRoles(t, p, ['alice', 'bob', 'carol', 'dave']);
});

t.test('--auth-lookup: verifiers read from the source, nothing in a file', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { authLookup: true });
  await checkRoles(t, p, ['alice', 'bob', 'carol', 'dave']);
  const bad = new pg.Client({ connectionString: p.url('postgres', 'nobody', 'x') });
  await t.rejects(bad.connect(), { code: '28P01', message: 'password authentication failed for user "nobody"' }, 'unknown users look like a wrong password');
});

t.test('a wrong password is 28P01', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { users: usersFile });
  for (const user of ['alice', 'dave']) {
    const c = new pg.Client({ connectionString: p.url('postgres', user, 'wrong') });
    await t.rejects(c.connect(), { code: '28P01', message: `password authentication failed for user "${user}"` }, user);
  }
});

t.test('a role missing on the target, or with another secret there, fails its target login with a clear error', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { users: usersFile });
  // Before the switch its reads stay on the source, and no breaker or backoff hurts other clients.
  await p.setState('READS_100PCT_AURORA', 'test');
  for (const user of ['eve', 'frank']) t.same(await whoami(p, user, READ), { current_user: user, session_user: user, port: source.port }, `${user}: reads fall back to the source`);
  t.same(p.proxy.stats.connectFailures.target, 0, 'not counted as target faults');
  t.same(await whoami(p, 'alice', READ), { current_user: 'alice', session_user: 'alice', port: target.port }, 'others still read from the target');
  await p.setState('WRITES_TO_AURORA', 'test');
  for (const [user, message] of [
    // PostgreSQL answers an unknown role with a mock SCRAM salt, so both look alike from outside.
    ['eve', /target backend: role "eve": the server has no such role, or holds another SCRAM secret for it/],
    ['frank', /target backend: role "frank": the server has no such role, or holds another SCRAM secret for it/],
  ] as const) {
    const c = new pg.Client({ connectionString: p.url('postgres', user, PASSWORDS[user]) });
    await t.rejects(c.connect(), { code: '28000', message }, user);
  }
});

t.test('--backend-login url keeps the old behaviour: every client as the URL role', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { users: usersFile, backendLogin: 'url' });
  t.same(await whoami(p, 'alice', READ), { current_user: 'postgres', session_user: 'postgres', port: source.port });
});
