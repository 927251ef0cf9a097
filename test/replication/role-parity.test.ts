/**
 * Gate 1 role parity on real PostgreSQL 14 → 15: every application role on the target with the same
 * memberships, the same privileges and (when SCRAM pass-through is in use) the same pg_authid secret; each
 * difference named, and the gate passes once the target is brought in line.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { runGate1 } from '../../src/replication/gate1.js';
import type { GateResult } from '../../src/domain/gate-result.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);

async function sql(url: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

const SETUP = `
  create role readers nologin;
  create table orders (id int);
  grant select on orders to readers;
`;
await sql(source.url(), `${SETUP}
  set password_encryption = 'scram-sha-256';
  create role app_a login password 'pw-a' in role readers;
  create role app_b login password 'pw-b';
  grant select, insert, update on orders to app_a;
  grant select on orders to app_b;
`);
const secrets = new Map((await sql(source.url(), `select rolname, rolpassword from pg_authid where rolname in ('app_a', 'app_b')`)).rows.map((r) => [r.rolname, r.rolpassword]));
// On the target: app_a without its group and without UPDATE; app_b created separately (same password, another salt).
await sql(target.url(), `${SETUP}
  create role app_a login password '${secrets.get('app_a')}';
  create role app_b login password 'pw-b';
  grant select, insert on orders to app_a;
  grant select on orders to app_b;
`);

const gate = (sameSecrets: boolean) => runGate1(source.url(), target.url(), { requireTls: false, latencyP50Ms: 1000, latencyP99Ms: 1000, requireReversePublisher: false, sameSecrets });
const find = (g: GateResult, name: string) => g.criteria.find((c) => c.name === name);

t.test('differences in memberships, privileges and secrets are named', async (t) => {
  const g = await gate(true);
  t.notOk(g.passed);
  const m = find(g, 'application roles: memberships differ on the target');
  t.equal(m?.passed, false);
  t.match(m?.detail, 'app_a: missing on target readers');
  const p = find(g, 'application roles: privileges differ on the target');
  t.equal(p?.passed, false);
  t.match(p?.detail, 'app_a: missing on target UPDATE ON public.orders');
  const s = find(g, 'application roles: same secret on the target (SCRAM pass-through)');
  t.equal(s?.passed, false);
  t.equal(s?.measured, 1);
  t.match(s?.detail, 'another secret (salt) on the target for app_b');
});

t.test('without pass-through the secrets are reported, not judged', async (t) => {
  const g = await gate(false);
  const s = find(g, 'application roles: same secret on the target (SCRAM pass-through)');
  t.equal(s?.passed, true);
  t.equal(s?.measured, 1);
});

t.test('once the target matches, the role criteria pass', async (t) => {
  await sql(target.url(), `grant readers to app_a; grant update on orders to app_a; alter role app_b password '${secrets.get('app_b')}'`);
  const g = await gate(true);
  for (const name of ['application roles: memberships differ on the target', 'application roles: privileges differ on the target', 'application roles: same secret on the target (SCRAM pass-through)']) {
    t.equal(find(g, name)?.passed, true, name);
  }
});
