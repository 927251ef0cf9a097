/**
 * The Redis lease of a writer change (issue 14 Deliver 3), against a real redis-server: a second request is
 * refused with the holder's name, the lease expires when its holder dies (no renewals), a switchover requested
 * on a sidecar while another holds the lease is refused before it touches anything, and with Redis gone a
 * change goes on under the databases' writer lock alone.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { startPg, startRedis } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { MemoryLeaseStore, RedisLeaseStore, WriterLease } from '../../src/control/writer-lease.js';

const redis = await startRedis(t);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('one holder at a time; the second is refused with the holder\'s name; released, it is free', async (t) => {
  const stores = [new RedisLeaseStore(redis.url, 't1:'), new RedisLeaseStore(redis.url, 't1:')];
  t.teardown(() => Promise.all(stores.map((s) => s.close())));
  const [a, b] = stores.map((s) => new WriterLease(s, 300));
  const la = await a!.take('sidecar-a', 'switchover');
  t.ok(la.ok && !la.unleased, 'a holds it');
  const lb = await b!.take('sidecar-b', 'switchover');
  t.match(lb, { ok: false, holder: 'sidecar-a', reason: /sidecar-a holds the writer lease/ });
  await sleep(700);
  t.match(await b!.take('sidecar-b', 'switchover'), { ok: false, holder: 'sidecar-a' }, 'a live holder renews it past its TTL');
  if (la.ok) await la.release();
  const again = await b!.take('sidecar-b', 'switchover');
  t.ok(again.ok, 'free once released');
  if (again.ok) await again.release();
});

t.test('a dead holder\'s lease expires', async (t) => {
  const store = new RedisLeaseStore(redis.url, 't2:');
  t.teardown(() => store.close());
  t.same(await store.acquire('dead', randomUUID(), 300), { ok: true }, 'taken by a holder that then dies (never renews)');
  const lease = new WriterLease(store, 300);
  t.match(await lease.take('b', 'switchover'), { ok: false, holder: 'dead' });
  await sleep(400);
  const l = await lease.take('b', 'switchover');
  t.ok(l.ok, 'expired: free');
  if (l.ok) await l.release();
});

t.test('the in-process lease (no Redis) has the same contract', async (t) => {
  let now = 0;
  const s = new MemoryLeaseStore(() => now);
  t.same(await s.acquire('a', 'x', 100), { ok: true });
  t.same(await s.acquire('b', 'y', 100), { ok: false, holder: 'a' });
  t.equal(await s.renew('y', 100), false, 'only the holder renews');
  now = 150;
  t.same(await s.acquire('b', 'y', 100), { ok: true }, 'expired');
});

t.test('a switchover requested while another holds the lease is refused, naming it, before anything is touched', async (t) => {
  const [source, target] = await Promise.all([startPg(t, 14), startPg(t, 15)]);
  const p = await startProxy(t, source.url(), target.url(), { redis: redis.url, redisPrefix: 't3:', sidecarId: 'b', timeScale: '0.001' });
  await p.setState('SHADOW_WRITES', 'test');
  const holder = new RedisLeaseStore(redis.url, 't3:');
  t.teardown(() => holder.close());
  await holder.acquire('sidecar-a', randomUUID(), 60_000);
  const o = await p.controller.transition({ to: 'WRITES_TO_AURORA', reason: 'test', force: true, by: 'test' });
  t.match(o, { ok: false, code: 'conflict', reason: /sidecar-a holds the writer lease.*nothing was touched/ });
  t.equal(p.state(), 'SHADOW_WRITES');
  t.notOk(p.proxy.holding(), 'no write was held');
});

t.test('Redis gone: the change goes on under the databases\' writer lock alone', async (t) => {
  const r2 = await startRedis(t);
  const store = new RedisLeaseStore(r2.url, 't4:');
  t.teardown(() => store.close());
  await r2.stop();
  const l = await new WriterLease(store, 300).take('a', 'rollback');
  t.match(l, { ok: true, unleased: /Redis unreachable/ });
});
