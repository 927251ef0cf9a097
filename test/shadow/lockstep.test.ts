/**
 * Shadow writes in lock-step against a live logical replica: pgbench TPC-B through the proxy in
 * SHADOW_WRITES matches, changes nothing on the target, and identity-key INSERT … RETURNING does not collide.
 */
import t from 'tap';
import pg from 'pg';
import { startPg, pgbench } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query, replicate, tableChecksum, waitCaughtUp } from '../helpers/replication.js';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15);
const init = await pgbench(['-i', '-s', '1', '-q', source.url()]);
if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
await query(source.url(), 'create table items (id bigint generated always as identity primary key, name text not null, created_at timestamptz not null default now())');
await query(source.url(), "insert into items (name) select 'seed ' || g from generate_series(1, 500) g");
await replicate(source, target);

const proxy = await startProxy(t, source.url(), target.url(), { state: 'SHADOW_WRITES', shadowSamplePct: 100, shadowLagBudgetBytes: 64 * 1024 * 1024 });
await proxy.shadower()!.sequencesReady;

t.test('pgbench TPC-B in SHADOW_WRITES: shadows match and change nothing on the target', async (t) => {
  for (const mode of ['prepared', 'simple']) {
    // A transaction count, not a duration: a loaded machine runs fewer transactions in a given time.
    const r = await pgbench(['-n', '-t', '40', '-c', '8', '-j', '2', '-M', mode, proxy.url()]);
    t.equal(r.code, 0, `pgbench -M ${mode} ran clean ${r.code ? r.stderr.slice(-300) : ''}`);
  }
  await new Promise((r) => setTimeout(r, 500));
  const st = proxy.shadower()!.stats;
  t.ok(st.shadowed > 100, `shadowed ${st.shadowed} transactions`);
  t.equal(st.unexplained, 0, `no unexplained mismatches (${JSON.stringify(st.mismatched)})`);
  const rate = st.matched / Math.max(1, st.compared);
  t.ok(rate >= 0.95, `match rate ${(rate * 100).toFixed(1)}% of ${st.compared} compared units`);
  await waitCaughtUp(source);
  for (const [table, key] of [['pgbench_accounts', 'aid'], ['pgbench_branches', 'bid'], ['pgbench_tellers', 'tid'], ['pgbench_history', 'tid, bid, aid, mtime, delta']]) {
    t.equal(await tableChecksum(target.url(), table, key), await tableChecksum(source.url(), table, key), `${table}: target equals source`);
  }
});

t.test('identity-key INSERT … RETURNING and UPDATE … RETURNING match without collisions', async (t) => {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  const before = proxy.shadower()!.stats.compared;
  const exhaustedBefore = proxy.shadower()!.stats.notShadowed['pool-exhausted'];
  const ids: string[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await c.query('insert into items (name) values ($1) returning id, name, created_at', [`row ${i}`]);
    t.equal(r.rows[0].name, `row ${i}`);
    ids.push(r.rows[0].id);
  }
  // Updating a row right after inserting it races replication (the shadow may not see the row yet:
  // 'lag-suspect'); let the inserts arrive first so the comparison is about the statements themselves.
  await waitCaughtUp(source);
  for (const id of ids) await c.query("update items set name = name || '!' where id = $1 returning name", [id]);
  await new Promise((r) => setTimeout(r, 300));
  const st = proxy.shadower()!.stats;
  // Every statement is either compared or, when all pool connections were still finishing the previous
  // shadows (a loaded machine), counted as not shadowed: none goes missing.
  const exhausted = st.notShadowed['pool-exhausted'] - exhaustedBefore;
  t.ok(st.compared - before + exhausted >= 95, `compared ${st.compared - before} units, ${exhausted} not shadowed (pool busy)`);
  t.ok(st.compared - before >= 50, 'most were compared');
  t.equal(st.mismatched['error-on-target-only'], 0, 'no key collisions on the target');
  t.equal(st.unexplained, 0, `no unexplained mismatches ${JSON.stringify(proxy.shadower()!.mismatches(0, 50).items.filter((m) => !m.explained))}`);
  await waitCaughtUp(source);
  t.equal(await tableChecksum(target.url(), 'items', 'id'), await tableChecksum(source.url(), 'items', 'id'), 'items: target equals source');
});

t.test('a difference only on the target is reported with its class and fingerprint', async (t) => {
  // A trigger that exists only on the target makes a class of writes fail there. Ordinary triggers do not
  // fire for the apply worker (session_replication_role = replica), so replication itself is unaffected.
  await waitCaughtUp(source);
  await query(target.url(), `create function no_bad_names() returns trigger language plpgsql as $$
    begin if new.name like 'bad%' then raise check_violation using message = 'bad name on the target'; end if; return new; end $$`);
  await query(target.url(), 'create trigger no_bad_names before insert on items for each row execute function no_bad_names()');
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  // In a transaction that stays open a moment, so the statement's own commit (and its replication) happens
  // after the comparison window: an autocommit write's difference would be explained as lag-suspect. Shadowing
  // is sampled and skips a busy pool, so write until one was shadowed (an event, not a fixed count or sleep).
  type Mismatch = { cls: string; fingerprint: string; shadow: { sqlstate?: string } };
  const find = async (): Promise<Mismatch | undefined> => {
    const res = await fetch(`${proxy.adminUrl}/shadow/mismatches?limit=10`);
    return ((await res.json()) as { items: Mismatch[] }).items.find((m) => m.cls === 'error-on-target-only');
  };
  let written = 0;
  let hit: Mismatch | undefined;
  while (hit === undefined && written < 100) {
    await c.query('begin');
    await c.query("insert into items (name) values ('bad name ' || $1::text)", [written]);
    await new Promise((r) => setTimeout(r, 60));
    await c.query('commit');
    written++;
    for (let k = 0; k < 10 && hit === undefined; k++) {
      hit = await find();
      if (hit === undefined) await new Promise((r) => setTimeout(r, 30));
    }
  }
  t.ok(hit, `error-on-target-only recorded (after ${written} transaction(s))`);
  t.equal(hit?.shadow.sqlstate, '23514', 'with the target\'s SQLSTATE');
  t.match(hit?.fingerprint ?? '', /insert into items/i, 'and the statement fingerprint');
  await waitCaughtUp(source);
  t.equal((await query(target.url(), "select count(*)::int as n from items where name like 'bad name%'")).rows[0].n, written, 'replication applied the rows the trigger refuses to the shadow');
  await query(target.url(), 'drop trigger no_bad_names on items');
});

t.test('a column default that differs on the target is a value mismatch', async (t) => {
  await waitCaughtUp(source);
  // Target first: an extra column on the subscriber is fine for logical replication, a missing one is not.
  await query(target.url(), "alter table items add column status text not null default 'NEW'");
  await query(source.url(), "alter table items add column status text not null default 'new'");
  // Let the target report the DDL's WAL as applied, so the difference is not explained away as lag.
  await waitCaughtUp(source);
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  const before = proxy.shadower()!.stats.mismatched.value;
  // In a transaction that stays open a moment: an autocommit INSERT's own commit moves the source's LSN
  // within the LSN sampler's 20 ms window, which explains the difference away as lag-suspect (conservative).
  for (let i = 0; i < 5; i++) {
    await c.query('begin');
    const r = await c.query('insert into items (name) values ($1) returning name, status', [`defaults ${i}`]);
    t.equal(r.rows[0].status, 'new', 'the client gets the source\'s default');
    await new Promise((res) => setTimeout(res, 60));
    await c.query('commit');
  }
  await new Promise((r) => setTimeout(r, 300));
  t.ok(proxy.shadower()!.stats.mismatched.value > before, `value mismatches counted (${proxy.shadower()!.stats.mismatched.value - before})`);
  const body = (await (await fetch(`${proxy.adminUrl}/shadow/mismatches?limit=20`)).json()) as { items: { cls: string; fingerprint: string; explained: boolean }[] };
  const hit = body.items.find((m) => m.cls === 'value' && /insert into items/i.test(m.fingerprint));
  t.ok(hit, 'a value mismatch with the INSERT\'s fingerprint');
  t.equal(hit?.explained, false, 'unexplained: it counts against gate 3');
});

t.test('an idle transaction\'s shadow is abandoned at the cap and does not hold the apply worker', async (t) => {
  const p2 = await startProxy(t, source.url(), target.url(), { state: 'SHADOW_WRITES', shadowSamplePct: 100, shadowCapMs: 300, shadowLagBudgetBytes: 64 * 1024 * 1024 });
  await p2.shadower()!.sequencesReady;
  const c = new pg.Client({ connectionString: p2.url() });
  await c.connect();
  t.teardown(() => c.end());
  await c.query('begin');
  await c.query('update pgbench_branches set bbalance = bbalance + 1 where bid = 1');
  await new Promise((r) => setTimeout(r, 600));
  t.equal(p2.shadower()!.stats.abandoned, 1, 'abandoned at the cap');
  await c.query('commit');
  // The committed update replicates: the target's row lock from the shadow is gone.
  await waitCaughtUp(source, 5000);
  t.equal(await tableChecksum(target.url(), 'pgbench_branches', 'bid'), await tableChecksum(source.url(), 'pgbench_branches', 'bid'), 'replicated past the shadowed row');
});
