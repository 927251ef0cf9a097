/**
 * The fence the database enforces (DESIGN.md "Fencing"): on a fenced PostgreSQL 14, every way an application
 * session tried to write in the 2026-12-07 measurement is refused (whatever it SETs, at login or later, in DO
 * blocks and prepared statements, through a role it is a member of, as owner of its tables), the control role
 * keeps writing, a client calling itself pg-cutover-control is fenced like any other, unfencing restores the
 * catalogs exactly, sessions opened under the fence are replaced, and roles that cannot be fenced are named.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { connectControl } from '../../src/replication/control-conn.js';
import { fence, fencedRoles, unfence } from '../../src/replication/fence.js';
import { fenceProblems } from '../../src/replication/fence-catalog.js';
import { runGate1 } from '../../src/replication/gate1.js';

const [src, dst] = await Promise.all([startPg(t, 14), startPg(t, 15)]);
const ctl = await connectControl(src.url(), { purpose: 'test' });
const dctl = await connectControl(dst.url(), { purpose: 'test' });
t.teardown(() => Promise.all([ctl.end(), dctl.end()]));
const as = (role: string, extra = '') => `postgresql://${role}:pw@127.0.0.1:${src.port}/postgres${extra}`;

for (const c of [ctl, dctl]) await c.query(`
  CREATE ROLE app LOGIN PASSWORD 'pw';
  CREATE ROLE owner_app LOGIN PASSWORD 'pw';
  CREATE ROLE writers NOLOGIN;
  GRANT writers TO app;
  CREATE SCHEMA shop AUTHORIZATION owner_app;
  CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL DEFAULT 0);
  INSERT INTO accounts SELECT i, 0 FROM generate_series(1, 10) i;
  CREATE TABLE notes (id serial PRIMARY KEY, body text, extra text);
  GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON accounts TO app;
  GRANT SELECT, INSERT ON notes TO writers;
  GRANT UPDATE (body) ON notes TO app;
  GRANT USAGE, UPDATE ON SEQUENCE notes_id_seq TO app, writers;
  CREATE VIEW accounts_v AS SELECT * FROM accounts;
  GRANT SELECT, INSERT, UPDATE ON accounts_v TO app;
  CREATE FUNCTION admin_put(n int) RETURNS void LANGUAGE sql SECURITY DEFINER AS 'INSERT INTO accounts VALUES (n)';
  CREATE FUNCTION admin_put_granted(n int) RETURNS void LANGUAGE sql SECURITY DEFINER AS 'INSERT INTO accounts VALUES (n)';
  REVOKE EXECUTE ON FUNCTION admin_put_granted(int) FROM PUBLIC;
  GRANT EXECUTE ON FUNCTION admin_put_granted(int) TO writers;
  CREATE PROCEDURE admin_proc(n int) LANGUAGE sql SECURITY DEFINER AS 'INSERT INTO accounts VALUES (n)';
  SET ROLE app; SELECT lo_from_bytea(4242, 'mine'); RESET ROLE;`);
for (const c of [ctl, dctl]) await c.query(`SET ROLE owner_app;
  CREATE TABLE shop.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total int);
  GRANT SELECT ON shop.orders TO app;
  CREATE FUNCTION shop.put(n int) RETURNS void LANGUAGE sql SECURITY DEFINER AS 'INSERT INTO shop.orders (total) VALUES (n)';
  RESET ROLE;`);

/** What the fence changes and unfence must give back: ownerships, ACLs, role settings. */
async function catalogState(): Promise<string> {
  const r = await ctl.query(`
    SELECT format('%s %s owner=%s acl=%s', c.relkind, c.oid::regclass, pg_get_userbyid(c.relowner), (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(c.relacl) a)) AS x
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('public', 'shop') AND c.relkind <> 'i'
    UNION ALL SELECT format('col %s.%s acl=%s', attrelid::regclass, attname, attacl) FROM pg_attribute WHERE attacl IS NOT NULL
    UNION ALL SELECT format('schema %s owner=%s acl=%s', nspname, pg_get_userbyid(nspowner), nspacl) FROM pg_namespace WHERE nspname IN ('public', 'shop')
    UNION ALL SELECT format('setting %s %s', setrole::regrole, setconfig) FROM pg_db_role_setting
    ORDER BY 1`);
  return r.rows.map((x) => x.x).join('\n');
}

async function client(url: string, opts: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url, ...opts });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Each way around a session default, as the issue lists them: the SQL, and the login it runs on. */
const BYPASSES: { name: string; sql: string[]; role?: string; login?: Partial<pg.ClientConfig>; codes?: string[] }[] = [
  { name: 'SET default_transaction_read_only = off', sql: ['SET default_transaction_read_only = off', 'INSERT INTO accounts VALUES (100)'] },
  { name: 'SET SESSION CHARACTERISTICS … READ WRITE', sql: ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'UPDATE accounts SET balance = 1'] },
  { name: 'BEGIN READ WRITE', sql: ['BEGIN READ WRITE', 'DELETE FROM accounts'] },
  { name: 'START TRANSACTION READ WRITE', sql: ['START TRANSACTION READ WRITE', 'TRUNCATE accounts'] },
  { name: 'set_config', sql: [`SELECT set_config('default_transaction_read_only', 'off', false)`, 'INSERT INTO accounts VALUES (101)'] },
  { name: 'set_config in a DO block', sql: [`DO $$ BEGIN PERFORM set_config('transaction_read_only', 'off', true); INSERT INTO accounts VALUES (102); END $$`] },
  { name: 'set_config, then a DO block', sql: [`SELECT set_config('default_transaction_read_only', 'off', false)`, `DO $$ BEGIN INSERT INTO accounts VALUES (108); END $$`] },
  { name: 'prepared statement', sql: ['SET default_transaction_read_only = off', 'PREPARE w AS INSERT INTO accounts VALUES (103)', 'EXECUTE w'] },
  { name: 'options=-c at login', sql: ['INSERT INTO accounts VALUES (104)'], login: { options: '-c default_transaction_read_only=off' } },
  { name: 'startup parameter', sql: ['INSERT INTO accounts VALUES (105)'], login: { connectionString: as('app', '?options=-c%20default_transaction_read_only%3Doff') } },
  { name: 'through a group role (SET ROLE writers)', sql: ['SET default_transaction_read_only = off', 'SET ROLE writers', `INSERT INTO notes (body) VALUES ('x')`] },
  { name: 'column privilege', sql: ['SET default_transaction_read_only = off', `UPDATE notes SET body = 'y'`] },
  { name: 'setval on a sequence', sql: [`SELECT setval('notes_id_seq', 1000)`] },
  { name: 'an updatable view', sql: ['SET default_transaction_read_only = off', 'INSERT INTO accounts_v VALUES (106)'] },
  { name: 'calls itself pg-cutover-control', sql: ['SET default_transaction_read_only = off', 'INSERT INTO accounts VALUES (107)'], login: { application_name: 'pg-cutover-control:switchover' } },
  { name: 'SECURITY DEFINER function of a superuser (PUBLIC may execute it)', sql: ['SET default_transaction_read_only = off', 'SELECT admin_put(110)'] },
  { name: 'SECURITY DEFINER function granted to a group role', sql: ['SET default_transaction_read_only = off', 'SET ROLE writers', 'SELECT admin_put_granted(111)'] },
  { name: 'SECURITY DEFINER procedure (CALL)', sql: ['SET default_transaction_read_only = off', 'CALL admin_proc(112)'] },
  { name: 'lo_create', sql: ['SET default_transaction_read_only = off', 'SELECT lo_create(0)'] },
  { name: 'lo_from_bytea', sql: ['SET default_transaction_read_only = off', `SELECT lo_from_bytea(0, 'x')`] },
  { name: 'lo_put on its own large object', sql: ['SET default_transaction_read_only = off', `SELECT lo_put(4242, 0, 'x')`] },
  { name: 'lowrite through lo_open', sql: ['SET default_transaction_read_only = off', 'BEGIN', `SELECT lowrite(lo_open(4242, 131072), 'x')`] },
  { name: 'lo_unlink of its own large object', sql: ['SET default_transaction_read_only = off', 'SELECT lo_unlink(4242)'] },
  { name: 'nextval', sql: ['SET default_transaction_read_only = off', `SELECT nextval('notes_id_seq')`] },
  { name: 'COPY … FROM STDIN', sql: ['SET default_transaction_read_only = off', 'COPY accounts FROM STDIN'], codes: ['42501', '25006'] },
  { name: 'owner: grants itself back', role: 'owner_app', sql: ['SET default_transaction_read_only = off', 'GRANT INSERT ON shop.orders TO owner_app', 'INSERT INTO shop.orders (total) VALUES (1)'] },
  { name: 'owner: own SECURITY DEFINER function', role: 'owner_app', sql: ['SET default_transaction_read_only = off', 'SELECT shop.put(2)'] },
  { name: 'owner: drops its table', role: 'owner_app', sql: ['SET default_transaction_read_only = off', 'DROP TABLE shop.orders'] },
  { name: 'owner: creates in its schema', role: 'owner_app', sql: ['SET default_transaction_read_only = off', 'CREATE TABLE shop.more (x int)'] },
  { name: 'owner: ALTER TABLE', role: 'owner_app', sql: ['SET default_transaction_read_only = off', 'ALTER TABLE shop.orders ADD COLUMN y int'] },
];

const before = await catalogState();
const ROWS = `SELECT (SELECT count(*) FROM accounts)::int AS a, (SELECT count(*) FROM notes)::int AS n, (SELECT count(*) FROM shop.orders)::int AS o,
  (SELECT count(*) FROM pg_largeobject_metadata)::int AS lo, (SELECT string_agg(encode(data, 'escape'), '') FROM pg_largeobject WHERE loid = 4242) AS mine,
  (SELECT last_value FROM notes_id_seq)::int AS seq`;
const rowsBefore = (await ctl.query(ROWS)).rows[0];

t.test('gate 1 names what the fence cannot cover: an event trigger running as a role outside the fence', async (t) => {
  const g0 = await runGate1(src.url(), src.url(), { requireTls: false, latencySamples: 1, appRoles: ['app'] });
  t.match(g0.criteria.find((c) => c.name === 'source writes the fence cannot cover'), { passed: true, measured: 'none' });
  await ctl.query(`CREATE TABLE ddl_log (what text);
    CREATE FUNCTION log_ddl() RETURNS event_trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN INSERT INTO ddl_log VALUES (tg_tag); END $$;
    CREATE EVENT TRIGGER log_ddl ON ddl_command_end EXECUTE FUNCTION log_ddl()`);
  t.teardown(() => ctl.query('DROP EVENT TRIGGER log_ddl; DROP FUNCTION log_ddl(); DROP TABLE ddl_log'));
  const g = await runGate1(src.url(), src.url(), { requireTls: false, latencySamples: 1, appRoles: ['app'] });
  t.match(g.criteria.find((c) => c.name === 'source writes the fence cannot cover'), { passed: false, detail: /event trigger log_ddl runs log_ddl\(\) as postgres .*ALTER EVENT TRIGGER log_ddl DISABLE/ }, 'gate 1 fails, naming the trigger and the fix');
});

t.test('roles that cannot be fenced are named, with the fix', async (t) => {
  await ctl.query(`CREATE ROLE su LOGIN SUPERUSER; CREATE ROLE cr LOGIN CREATEROLE; CREATE ROLE wad LOGIN; GRANT pg_write_all_data TO wad`);
  t.teardown(() => ctl.query('DROP ROLE su, cr, wad'));
  t.match((await fenceProblems(ctl, ['su'])).join('\n'), /role su is a superuser.*NOSUPERUSER/);
  t.match((await fenceProblems(ctl, ['cr'])).join('\n'), /cr has CREATEROLE.*NOCREATEROLE/);
  t.match((await fenceProblems(ctl, ['wad'])).join('\n'), /pg_write_all_data/);
  t.match((await fenceProblems(ctl, ['postgres'])).join('\n'), /postgres is the control role/);
  t.match((await fenceProblems(ctl, ['nobody'])).join('\n'), /nobody does not exist/);
  t.match((await fenceProblems(ctl, [])).join('\n'), /fence nothing/);
  await t.rejects(fence(ctl, ['app', 'su']), /cannot fence: .*su is a superuser/, 'the fence refuses, changing nothing');
  const g = await runGate1(src.url(), src.url(), { requireTls: false, latencySamples: 1, appRoles: ['app', 'su'] });
  const crit = g.criteria.find((c) => c.name === 'source application roles can be fenced');
  t.match(crit, { passed: false, detail: /role su is a superuser.*NOSUPERUSER/ }, 'gate 1 fails, naming the role and the fix');
  t.notOk(g.passed);
  t.equal(await catalogState(), before, 'nothing changed');
  t.same(await fenceProblems(ctl, ['app', 'owner_app']), [], 'the application roles can be fenced');
});

t.test('every bypass is refused on the fenced database; the control role still writes', async (t) => {
  const idle = await client(as('app'));
  const marked = await client(as('app'), { application_name: 'pg-cutover-control:gate1' });
  const f = await fence(ctl, ['app', 'owner_app']);
  t.ok(f.changes > 5, `rights taken (${f.changes})`);
  t.ok(f.terminated >= 2, `open sessions ended, the one calling itself pg-cutover-control too (${f.terminated})`);
  await t.rejects(marked.query('SELECT 1'), 'the session named pg-cutover-control was ended');
  await t.rejects(idle.query('SELECT 1'), 'an idle application session was ended');
  t.same(await fencedRoles(ctl, ['app', 'owner_app', 'x']), ['app', 'owner_app']);

  const plain = await client(as('app'));
  await t.rejects(plain.query('INSERT INTO accounts VALUES (99)'), { code: '25006' }, 'a plain write gets a clean 25006');
  t.equal((await plain.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n, rowsBefore.a, 'reads still work');
  await plain.query('SET default_transaction_read_only = off');
  await plain.query('CREATE TEMP TABLE scratch (i int)');
  await plain.query('INSERT INTO scratch VALUES (1)');
  t.equal((await plain.query('SELECT count(*)::int AS n FROM scratch')).rows[0].n, 1, 'a session\'s own temp table still works (its scratch space, not a write to the database)');
  await plain.end();
  for (const b of BYPASSES) {
    const c = await client(as(b.role ?? 'app'), b.login ?? {});
    let wrote = true;
    let code = '';
    for (const sql of b.sql) {
      try {
        await c.query(sql);
      } catch (e) {
        wrote = false;
        code = String((e as { code?: string }).code);
        break;
      }
    }
    t.notOk(wrote, `refused: ${b.name}${code ? ` (${code})` : ''}`);
    if (b.codes) t.ok(b.codes.includes(code), `by the fence itself (${code})`);
    await c.end();
  }
  const rows = (await ctl.query(ROWS)).rows[0];
  t.same(rows, rowsBefore, 'no row changed');
  t.equal((await ctl.query(`SELECT to_regclass('shop.orders') IS NOT NULL AS ok`)).rows[0].ok, true, 'the owner could not drop its table');
  await ctl.query('INSERT INTO accounts VALUES (500)');
  await ctl.query('DELETE FROM accounts WHERE id = 500');
  t.pass('the control role writes on the fenced database');
  const again = await fence(ctl, ['app', 'owner_app']);
  t.equal(again.changes, 0, 'fencing again takes nothing more');
});

t.test('through a current sidecar and a stale one, no bypass writes on the fenced source', async (t) => {
  const users = JSON.stringify({ users: ['app', 'owner_app'].map((name) => ({ name, password: 'pw', method: 'scram-sha-256' })) });
  const appAt = (p: typeof src) => `postgresql://app:pw@127.0.0.1:${p.port}/postgres`;
  // Current: routes writes to the target; every bypass is also tried with a hint naming the source.
  const current = await startProxy(t, appAt(src), appAt(dst), { sourceControl: src.url(), targetControl: dst.url(), state: 'WRITES_TO_AURORA' }, { PGCUTOVER_USERS: users });
  // Stale: still believes the source is the writer, and cannot read the writer record (control unreachable).
  const dead = 'postgresql://postgres:x@127.0.0.1:1/postgres';
  const stale = await startProxy(t, appAt(src), appAt(dst), { sourceControl: dead, targetControl: dead, state: 'READS_100PCT_AURORA' }, { PGCUTOVER_USERS: users });
  t.equal(stale.state(), 'READS_100PCT_AURORA', 'the stale sidecar routes writes to the (fenced) source');
  for (const [label, p, hint] of [['current', current, '/* pg-cutover:source */ '], ['stale', stale, '']] as const) {
    let refused = 0;
    for (const b of BYPASSES.filter((x) => !x.login?.connectionString)) {
      const c = new pg.Client({ connectionString: p.url('postgres', b.role ?? 'app', 'pw'), ...(b.login ?? {}) });
      c.on('error', () => {});
      try {
        await c.connect(); // the proxy may refuse the login itself (startup parameters on an allow-list)
      } catch {
        refused++;
        continue;
      }
      for (const sql of b.sql) {
        try {
          await c.query(hint + sql);
        } catch {
          refused++;
          break;
        }
      }
      await c.end();
    }
    if (label === 'stale') t.equal(refused, BYPASSES.length - 1, `every bypass through the stale sidecar was refused (${refused})`);
  }
  const rows = (await ctl.query(ROWS)).rows[0];
  t.same(rows, rowsBefore, 'no row changed on the fenced source');
  t.equal((await ctl.query(`SELECT to_regclass('shop.more') IS NULL AS ok`)).rows[0].ok, true, 'nothing created there either');
  await current.stop(500);
  await stale.stop(500);
});

t.test('unfence restores exactly what was there and replaces sessions opened under the fence', async (t) => {
  const underFence = await client(as('app'));
  await t.rejects(underFence.query('INSERT INTO accounts VALUES (98)'), { code: '25006' });
  const u = await unfence(ctl);
  t.same(u.failed, [], 'every right given back');
  t.equal(u.replaced, 1, 'the session opened under the fence was ended');
  await t.rejects(underFence.query('SELECT 1'), 'it does not stay read-only after the unfence');
  t.equal(await catalogState(), before, 'ownerships, ACLs and role settings are as before the fence');
  t.same(await fencedRoles(ctl, ['app']), []);
  const c = await client(as('app'));
  await c.query('INSERT INTO accounts VALUES (97)');
  await c.query(`INSERT INTO notes (body) VALUES ('back')`);
  await c.query('SELECT admin_put(95)');
  await c.query(`SELECT lo_put(4242, 0, 'y'), lo_create(0), nextval('notes_id_seq')`);
  await c.end();
  const o = await client(as('owner_app'));
  await o.query('SELECT shop.put(3)');
  await o.end();
  t.pass('application roles write again');
});

t.test('a role setting the fence did not make survives it', async (t) => {
  await ctl.query(`ALTER ROLE app IN DATABASE postgres SET default_transaction_read_only = off`);
  const mid = await catalogState();
  await fence(ctl, ['app']);
  const c = await client(as('app'));
  await t.rejects(c.query('INSERT INTO accounts VALUES (96)'), 'refused while fenced');
  await c.end();
  await unfence(ctl);
  t.equal(await catalogState(), mid, 'the earlier setting is back');
  await ctl.query(`ALTER ROLE app IN DATABASE postgres RESET default_transaction_read_only`);
});
