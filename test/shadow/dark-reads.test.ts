/**
 * Dark reads against a live logical replica: reads sent to the source also run on the target (READ ONLY,
 * rolled back) and are compared; a row changed only on the target shows as a read `value` mismatch; with the
 * target down the clients see nothing and the shadow counts it. Write shadows stay off (writes: false).
 */
import t from 'tap';
import pg from 'pg';
import { startPg, type Teardown } from '../helpers/servers.js';
import { startShadowProxy } from '../helpers/shadow-proxy.js';
import { startProxy } from '../helpers/proxy.js';
import { query, replicate, waitCaughtUp } from '../helpers/replication.js';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15);
await query(source.url(), 'create table kv (k int primary key, v text not null, n numeric not null)');
await query(source.url(), "insert into kv select g, 'value ' || g, g * 1.5 from generate_series(1, 200) g");
await query(source.url(), 'create table items (id bigint generated always as identity primary key, name text not null)');
await replicate(source, target);

const p = await startShadowProxy(t, source.url(), target.url(), 'READS_10PCT_AURORA', { writes: false, darkReadRate: 1, poolSize: 4 });
while (p.shadower.poolFree() < 4) await new Promise((r) => setTimeout(r, 20));

async function client(t: Teardown): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: p.url() });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  return c;
}

/** Waits until every shadow has ended, so counters are final. */
async function settled(): Promise<void> {
  const end = Date.now() + 5000;
  while (p.shadower.poolInUse() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
}

t.test('reads at READS_10PCT are dark-read on the target and match; writes are not shadowed', async (t) => {
  const c = await client(t);
  const seqBefore = (await query(target.url(), "select last_value::text as v from pg_sequences where sequencename = 'items_id_seq'")).rows[0].v;
  for (let k = 1; k <= 100; k++) {
    const r = await c.query({ name: 'getkv', text: 'select k, v, n from kv where k = $1', values: [k] });
    t.equal(r.rows[0]?.v, `value ${k}`);
  }
  for (let k = 1; k <= 50; k++) await c.query(`select count(*), sum(n) from kv where k <= ${k}`);
  await c.query('begin read only');
  await c.query('select * from kv order by k limit 20');
  await c.query('commit');
  for (let i = 0; i < 20; i++) await c.query('insert into items (name) values ($1)', [`item ${i}`]);
  await settled();
  const d = p.shadower.stats.darkReads;
  t.ok(d.compared >= 80, `compared ${d.compared} dark-read units (sampled ${d.sampled})`);
  t.equal(d.matched, d.compared, `all matched ${JSON.stringify(d.mismatched)}`);
  t.equal(d.unexplained, 0, 'no unexplained dark-read mismatches');
  // On a loaded machine the pool may still be finishing earlier dark reads: such reads are counted, not lost.
  t.equal(d.shadowed + d.notShadowed['pool-exhausted'], d.sampled, `every sampled read was shadowed or counted (${d.notShadowed['pool-exhausted']} pool-exhausted)`);
  const st = p.shadower.stats;
  t.equal(st.sampled + st.shadowed + st.compared, 0, 'no write shadows (writes: false)');
  await waitCaughtUp(source);
  const seqAfter = (await query(target.url(), "select last_value::text as v from pg_sequences where sequencename = 'items_id_seq'")).rows[0].v;
  t.equal(seqAfter, seqBefore, 'target sequences not moved');
  t.equal((await query(target.url(), 'select count(*)::int as n from items')).rows[0].n, 20, 'writes replicated once');
});

t.test('SOURCE_PRIMARY: reads are classified and dark-read too', async (t) => {
  p.setState('SOURCE_PRIMARY');
  t.teardown(() => p.setState('READS_10PCT_AURORA'));
  const c = await client(t);
  const before = p.shadower.stats.darkReads.compared;
  const busyBefore = p.shadower.stats.darkReads.notShadowed['pool-exhausted'];
  for (let k = 1; k <= 30; k++) await c.query('select v from kv where k = $1', [k]);
  await c.query('update kv set v = v where k = 1');
  await settled();
  const d = p.shadower.stats.darkReads;
  // A read the busy pool could not take is counted, not lost (a loaded machine finishes dark reads later).
  const busy = d.notShadowed['pool-exhausted'] - busyBefore;
  t.ok(d.compared - before + busy >= 30, `compared ${d.compared - before}, ${busy} pool-exhausted`);
  t.ok(d.compared - before > 0, 'some were compared');
  t.equal(d.unexplained, 0, 'no unexplained mismatches');
});

t.test('a row changed on the target only is a read value mismatch', async (t) => {
  await waitCaughtUp(source);
  await query(target.url(), "update kv set v = 'changed on the target' where k = 7");
  t.teardown(() => query(target.url(), "update kv set v = 'value 7' where k = 7"));
  const c = await client(t);
  let hit;
  for (let i = 0; i < 40 && !hit; i++) {
    await c.query('select k, v from kv where k = $1', [7]);
    await settled();
    hit = p.shadower.mismatches(0, 100).items.find((m) => m.kind === 'read' && m.cls === 'value');
  }
  t.ok(hit, 'value mismatch recorded');
  t.equal(hit?.explained, false, 'not explained');
  t.match(hit?.fingerprint ?? '', /select k, v from kv/i, 'with the statement fingerprint');
  t.ok(p.shadower.stats.darkReads.unexplained >= 1, 'counted as an unexplained dark-read mismatch');
  t.equal(p.shadower.stats.unexplained, 0, 'gate 3 (write) counters untouched');
});

t.test('inside a transaction nothing is dark-read: the target cannot see the transaction\'s own writes', async (t) => {
  const c = await client(t);
  await settled();
  const before = { ...p.shadower.stats.darkReads, unexplained: p.shadower.stats.darkReads.unexplained };
  for (let i = 0; i < 10; i++) {
    await c.query('begin');
    await c.query("update kv set v = 'in tx' where k = 7");
    const r = await c.query('select v from kv where k = 7');
    t.equal(r.rows[0].v, 'in tx', 'the client reads its own write');
    await c.query('rollback');
  }
  await c.query('begin; select v from kv where k = 8; commit');
  await settled();
  const d = p.shadower.stats.darkReads;
  t.equal(d.unexplained, before.unexplained, 'no unexplained read mismatch');
  t.equal(p.shadower.stats.shadowed, 0, 'no write was shadowed');
});

t.test('from the CLI options: --dark-read-pct before READS_100PCT, write shadows in SHADOW_WRITES, apply mode refused on a replica', async (t) => {
  const sc = await startProxy(t, source.url(), target.url(), { state: 'READS_10PCT_AURORA', darkReadPct: 100 });
  t.equal(sc.shadower()?.writes, false, 'READS_10PCT: a dark-read service, no write shadows');
  for (let i = 0; i < 100 && (sc.shadower()?.poolFree() ?? 0) < 1; i++) await new Promise((r) => setTimeout(r, 20));
  const c = new pg.Client({ connectionString: sc.url() });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  for (let k = 1; k <= 30; k++) await c.query('select v from kv where k = $1', [k]);
  for (let i = 0; i < 50 && (sc.shadower()?.stats.darkReads.compared ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.ok((sc.shadower()?.stats.darkReads.compared ?? 0) > 0, `dark reads compared (${sc.shadower()?.stats.darkReads.compared})`);
  await sc.setState('SHADOW_WRITES', 'test');
  t.equal(sc.shadower()?.writes, true, 'SHADOW_WRITES: the write-shadow service');
  await sc.setState('READS_100PCT_AURORA', 'test');
  t.equal(sc.shadower(), null, 'READS_100PCT: no reads left on the source, no dark reads');
  await t.rejects(startProxy(t, source.url(), target.url(), { shadowMode: 'apply' }), /--shadow-mode apply: .*subscription/, 'apply mode refused on a replica target');
});

t.test('target down: clients unaffected, dark reads counted as not shadowed', async (t) => {
  const c = await client(t);
  await c.query('select 1');
  const d = p.shadower.stats.darkReads;
  const before = d.notShadowed['target-down'] + d.notShadowed['pool-exhausted'] + d.abandoned;
  await target.stop();
  for (let k = 1; k <= 60; k++) {
    const r = await c.query('select v from kv where k = $1', [k]);
    t.equal(r.rows[0]?.v, `value ${k}`);
  }
  const after = d.notShadowed['target-down'] + d.notShadowed['pool-exhausted'] + d.abandoned;
  t.ok(after - before >= 50, `dark reads not run: ${JSON.stringify({ ...d.notShadowed, abandoned: d.abandoned })}`);
  t.ok(d.notShadowed['target-down'] > 0, 'counted as target-down');
});
