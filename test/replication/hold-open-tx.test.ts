/**
 * Issue 14 gap: a transaction already open on the old writer when a write hold starts must run to its end (like
 * PgBouncer's PAUSE, which waits for transactions), new ones are held, and the fence comes only once they have
 * drained. One that never ends within the drain bound fails cleanly (an error, counted and logged), never
 * acknowledged. Across a switchover (old writer: the source) and a rollback (old writer: the target).
 */
import t from 'tap';
import { holdOpenTxSetup } from '../helpers/hold-open-tx.js';
import { sleep } from '../helpers/wait.js';

const h = await holdOpenTxSetup(t, ['hold-tx']);
const { source, target, until, has, toShadowWrites } = h;
const proxy = h.sidecars[0]!;
const client = () => h.client(proxy);

t.test('switchover: a transaction open when the hold starts commits on the source; a new one waits and lands on the target', async (t) => {
  await toShadowWrites();
  const open = await client();
  const late = await client();
  await open.query('begin');
  await open.query("insert into t (tag) values ('sw-open-1')");
  const sw = proxy.controller.transition({ to: 'WRITES_TO_AURORA', reason: 'test', force: true, by: 'test' });
  t.ok(await until(10_000, () => proxy.proxy.holding()), 'writes are held');
  const lateWrite = late.query("insert into t (tag) values ('sw-late')").then(() => 'ok', (e: { code?: string }) => e.code ?? 'error');
  await sleep(100);
  // Still inside its transaction on the source: it must run to its end.
  const r = await open.query('insert into t (tag) values ($1)', ['sw-open-2']).then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`);
  t.equal(r, 'ok', 'the open transaction goes on during the hold');
  const c = await open.query('commit').then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`);
  t.equal(c, 'ok', 'and commits');
  const o = await sw;
  t.ok(o.ok, `switchover ${o.ok ? 'ok' : o.reason}`);
  t.equal(await lateWrite, 'ok', 'the write held during the switchover is acknowledged');
  t.ok((await has(source.url(), 'sw-open-1')) && (await has(source.url(), 'sw-open-2')), 'the open transaction committed on the source');
  t.ok(await until(10_000, () => has(source.url(), 'sw-late')), 'the held write (on the target) reached the source by reverse replication');
  t.ok(await has(target.url(), 'sw-open-2'), 'the open transaction reached the target before the switch');
  await Promise.all([open.end(), late.end()]);
});

t.test('rollback: a transaction open on the target when the rollback starts commits there and reaches the source', async (t) => {
  const open = await client();
  await open.query('begin');
  await open.query("insert into t (tag) values ('rb-open-1')");
  const rb = await proxy.controller.rollback('test', 'test');
  t.ok(rb.ok, 'rollback started');
  await sleep(100);
  const r = await open.query('insert into t (tag) values ($1)', ['rb-open-2']).then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`);
  t.equal(r, 'ok', 'the open transaction goes on during the hold');
  const c = await open.query('commit').then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`);
  t.equal(c, 'ok', 'and commits');
  await proxy.controller.rollbackDone();
  t.equal(proxy.controller.snapshot().state, 'SOURCE_PRIMARY', 'the rollback finished');
  t.ok((await has(source.url(), 'rb-open-1')) && (await has(source.url(), 'rb-open-2')), 'the open transaction is on the source');
  await open.end();
});

t.test('switchover: a transaction that does not end within the drain bound aborts the switch (DESIGN.md); it goes on on the source', async (t) => {
  await toShadowWrites();
  const open = await client();
  await open.query('begin');
  await open.query("insert into t (tag) values ('stuck-sw-1')");
  const o = await proxy.controller.transition({ to: 'WRITES_TO_AURORA', reason: 'test', force: true, by: 'test' });
  t.notOk(o.ok, 'the switch aborted');
  t.match(o.ok ? '' : o.reason, /write transactions still open/, `and says why (${o.ok ? '' : o.reason})`);
  t.equal(proxy.controller.snapshot().state, 'SHADOW_WRITES', 'writes stay on the source');
  t.equal(await open.query("insert into t (tag) values ('stuck-sw-2')").then(() => 'ok', (e: { code?: string }) => e.code), 'ok', 'the transaction goes on');
  t.equal(await open.query('commit').then(() => 'ok', (e: { code?: string }) => e.code), 'ok', 'and commits');
  t.ok(await has(source.url(), 'stuck-sw-2'));
  await open.end();
});

t.test('rollback: a target transaction that does not end within the drain bound is ended by the fence: an error, counted, nothing acknowledged', async (t) => {
  const o = await proxy.controller.transition({ to: 'WRITES_TO_AURORA', reason: 'test', force: true, by: 'test' });
  t.ok(o.ok, `switchover ${o.ok ? 'ok' : o.reason}`);
  const open = await client();
  await open.query('begin');
  await open.query("insert into t (tag) values ('stuck-rb-1')");
  const before = proxy.proxy.stats.fenceEndedTransactions;
  t.ok((await proxy.controller.rollback('test', 'test')).ok, 'rollback started');
  await proxy.controller.rollbackDone();
  t.equal(proxy.controller.snapshot().state, 'SOURCE_PRIMARY', 'the rollback finished');
  const r = await open.query("insert into t (tag) values ('stuck-rb-2')").then(() => 'ok', (e: { code?: string; message?: string }) => e.code ?? e.message ?? 'error');
  t.not(r, 'ok', `the stuck transaction fails cleanly (${r})`);
  t.equal(proxy.proxy.stats.fenceEndedTransactions, before + 1, 'counted');
  t.notOk(await has(source.url(), 'stuck-rb-1'), 'nothing of it on the source');
  t.notOk(await has(target.url(), 'stuck-rb-1'), 'nor on the target');
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  t.match(metrics, /pgcutover_fence_ended_transactions_total \d+/, 'exported as a metric');
  await open.end().catch(() => {});
});
