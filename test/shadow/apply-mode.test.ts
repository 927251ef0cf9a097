/**
 * Shadow `apply` mode: refused on a replicated target, allowed on a plain one; on two independent databases
 * with the same data, pgbench TPC-B through the proxy with every transaction shadowed leaves both equal.
 */
import t from 'tap';
import { startPg, pgbench } from '../helpers/servers.js';
import { startShadowProxy } from '../helpers/shadow-proxy.js';
import { query, replicate, tableChecksum, waitCaughtUp } from '../helpers/replication.js';
import { checkApplyModeAllowed } from '../../src/shadow/shadower.js';
import { parseDatabaseUrl } from '../../src/net/database-url.js';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15);
const init = await pgbench(['-i', '-s', '1', '-q', source.url()]);
if (init.code !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
await replicate(source, target);

t.test('checkApplyModeAllowed refuses a target with an enabled subscription, allows a plain one', async (t) => {
  const refused = await checkApplyModeAllowed(target.url());
  t.equal(refused.ok, false, 'replica refused');
  t.match(refused.ok ? '' : refused.reason, /pgc_test/, 'the reason names the subscription');
  const asTarget = parseDatabaseUrl(target.url(), 'target');
  if (!asTarget.ok) throw new Error('bad url');
  t.equal((await checkApplyModeAllowed(asTarget.value)).ok, false, 'refused given the target settings too');

  await waitCaughtUp(source);
  // Dropping the subscription leaves a plain copy with the source's data (and drops the slot on the source).
  await query(target.url(), 'drop subscription pgc_test');
  t.same(await checkApplyModeAllowed(target.url()), { ok: true }, 'plain PostgreSQL 15 allowed');

  const down = await checkApplyModeAllowed('postgresql://postgres:x@127.0.0.1:1/postgres');
  t.equal(down.ok, false, 'an unreachable target is refused (fail closed)');
});

t.test('apply mode: pgbench TPC-B shadowed at 100% leaves both databases equal', async (t) => {
  const p = await startShadowProxy(t, source.url(), target.url(), 'SHADOW_WRITES', {
    mode: 'apply',
    sampleRate: 1,
    poolSize: 32,
    // No apply worker to give way to on this target: let shadows wait on each other's row locks.
    lockTimeoutMs: 2000,
    capMs: 5000,
    lagBudgetBytes: 1 << 30,
  });
  // Apply mode applies only what it shadows: let the whole pool connect before the load starts.
  const ready = Date.now() + 10_000;
  while (p.shadower.poolFree() < 32 && Date.now() < ready) await new Promise((r) => setTimeout(r, 20));
  for (const mode of ['prepared', 'simple']) {
    // Throttled (-R): apply mode applies what it shadows, and a transaction that finds no free shadow
    // connection is not shadowed; an unthrottled run on a busy 2-core box can outrun the pool.
    // A transaction count, not a duration: a loaded machine runs fewer transactions in a given time.
    const r = await pgbench(['-n', '-t', '30', '-c', '4', '-R', '100', '-M', mode, p.url()]);
    t.equal(r.code, 0, `pgbench -M ${mode} ran clean ${r.code ? r.stderr.slice(-300) : ''}`);
  }
  // Shadows commit after the source: wait for the last ones.
  const end = Date.now() + 10_000;
  while (p.shadower.poolInUse() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const st = p.shadower.stats;
  t.equal(p.shadower.poolInUse(), 0, 'every shadow ended');
  t.equal(st.notShadowed['pool-exhausted'], 0, `every write transaction was shadowed ${JSON.stringify(st.notShadowed)}`);
  t.ok(st.apply.committed >= 2 * 4 * 30, `every TPC-B transaction of both runs was applied by its shadow (${st.apply.committed} committed)`);
  t.equal(st.apply.lost, 0, `none lost (${JSON.stringify(st.apply)}, mismatched ${JSON.stringify(st.mismatched)})`);
  t.equal(st.unexplained, 0, 'no unexplained mismatches');
  for (const [table, key] of [
    ['pgbench_accounts', 'aid'],
    ['pgbench_branches', 'bid'],
    ['pgbench_tellers', 'tid'],
    // mtime is each server's own now(): left out.
    ['(select tid, bid, aid, delta from pgbench_history)', 'tid, bid, aid, delta'],
  ]) {
    t.equal(await tableChecksum(target.url(), table, key), await tableChecksum(source.url(), table, key), `${table}: target equals source`);
  }
});

t.test('apply mode: a rolled-back or failed transaction is not applied', async (t) => {
  const p = await startShadowProxy(t, source.url(), target.url(), 'SHADOW_WRITES', { mode: 'apply', sampleRate: 1, lagBudgetBytes: 1 << 30 });
  while (p.shadower.poolFree() < 4) await new Promise((r) => setTimeout(r, 20));
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: p.url() });
  await c.connect();
  t.teardown(() => c.end());
  await c.query('begin');
  await c.query('update pgbench_branches set bbalance = bbalance + 1000 where bid = 1');
  await c.query('rollback');
  await c.query('begin');
  await c.query('update pgbench_branches set bbalance = bbalance + 1000 where bid = 1');
  await t.rejects(c.query('select 1/0'));
  await c.query('commit'); // answered ROLLBACK: the transaction had failed
  await t.rejects(c.query('update pgbench_branches set bbalance = bbalance + 1000 where bid = 1 and 1/0 = 1'));
  await c.query('begin');
  await c.query('savepoint s');
  await c.query('update pgbench_branches set bbalance = bbalance + 1000 where bid = 1');
  await c.query('rollback to savepoint s');
  await c.query('update pgbench_branches set bbalance = bbalance + 7 where bid = 1');
  await c.query('commit');
  const end = Date.now() + 5000;
  while (p.shadower.poolInUse() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  const a = p.shadower.stats.apply;
  t.same({ committed: a.committed, rolledBack: a['rolled-back'], lost: a.lost }, { committed: 1, rolledBack: 3, lost: 0 }, 'one commit, three rollbacks');
  t.equal(await tableChecksum(target.url(), 'pgbench_branches', 'bid'), await tableChecksum(source.url(), 'pgbench_branches', 'bid'), 'branches equal');
});
