/**
 * hold-open-tx.test.ts with two sidecars on one Redis: a transaction open on sidecar b when sidecar a starts the
 * switchover (the coordinated pause) or the rollback runs to its end on the old writer; a write sent to b during
 * the hold waits and lands on the new writer; nothing is lost or refused.
 */
import t from 'tap';
import { holdOpenTxSetup } from '../helpers/hold-open-tx.js';
import { sleep } from '../helpers/wait.js';

const h = await holdOpenTxSetup(t, ['a', 'b']);
const { source, target, until, has, toShadowWrites } = h;
const [proxy, b] = h.sidecars as [typeof h.sidecars[0], typeof h.sidecars[0]];
const client = () => h.client(b);

t.test('switchover run by a: a transaction open on b commits on the source; a write held on b lands on the target', async (t) => {
  await toShadowWrites();
  await until(10_000, () => b.state() === 'SHADOW_WRITES');
  const open = await client();
  const late = await client();
  await open.query('begin');
  await open.query("insert into t (tag) values ('m-sw-open-1')");
  const sw = proxy.controller.transition({ to: 'WRITES_TO_AURORA', reason: 'test', force: true, by: 'test' });
  t.ok(await until(10_000, () => b.proxy.holding()), 'b holds writes');
  const lateWrite = late.query("insert into t (tag) values ('m-sw-late')").then(() => 'ok', (e: { code?: string }) => e.code ?? 'error');
  await sleep(100);
  t.equal(await open.query('insert into t (tag) values ($1)', ['m-sw-open-2']).then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`), 'ok', 'the open transaction goes on during the hold');
  t.equal(await open.query('commit').then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`), 'ok', 'and commits');
  const o = await sw;
  t.ok(o.ok, `switchover ${o.ok ? 'ok' : o.reason}`);
  t.equal(await lateWrite, 'ok', 'the write held on b is acknowledged');
  t.ok((await has(source.url(), 'm-sw-open-1')) && (await has(source.url(), 'm-sw-open-2')), 'the open transaction committed on the source');
  t.ok(await has(target.url(), 'm-sw-late'), 'the held write landed on the target');
  await Promise.all([open.end(), late.end()]);
});

t.test('rollback run by a: a transaction open on b on the target commits there and reaches the source', async (t) => {
  await until(10_000, () => b.state() === 'WRITES_TO_AURORA');
  const open = await client();
  await open.query('begin');
  await open.query("insert into t (tag) values ('m-rb-open-1')");
  t.ok((await proxy.controller.rollback('test', 'test')).ok, 'rollback started');
  await sleep(100);
  t.equal(await open.query('insert into t (tag) values ($1)', ['m-rb-open-2']).then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`), 'ok', 'the open transaction goes on during the hold');
  t.equal(await open.query('commit').then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`), 'ok', 'and commits');
  await proxy.controller.rollbackDone();
  t.equal(proxy.controller.snapshot().state, 'SOURCE_PRIMARY', 'the rollback finished');
  t.ok((await has(source.url(), 'm-rb-open-1')) && (await has(source.url(), 'm-rb-open-2')), 'the open transaction is on the source');
  const w = await client();
  await until(10_000, () => b.state() === 'SOURCE_PRIMARY');
  await w.query("insert into t (tag) values ('m-after')");
  t.ok(await has(source.url(), 'm-after'), 'b writes on the source afterwards');
  await Promise.all([open.end(), w.end()]);
});
