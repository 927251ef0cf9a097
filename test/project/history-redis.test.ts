/** The history store in Redis (shared by every sidecar): same behaviour as in memory, bounded, survives a reopen. */
import t from 'tap';
import { startRedis } from '../helpers/servers.js';
import { RedisHistory, type HistorySample } from '../../src/project/history.js';

const redis = await startRedis(t);
const sample = (at: number): HistorySample => ({
  at, state: 'SOURCE_READ_ONLY', readPercent: 100, p99: { source: { read: null, write: null }, target: { read: 3, write: 4 } }, errorRate: 0, lagSeconds: 0.2, shadowMatchRate: null, slotRetainedBytes: { source: 1, target: 2 },
});

t.test('append, downsample, daily p99, reopen', async (t) => {
  const r = { fineMax: 10, coarseEvery: 5, coarseMax: 4, dailyMax: 2 };
  const a = await RedisHistory.open(redis.url, 'h1:', r);
  for (let i = 0; i < 40; i++) await a.append(sample(i));
  await a.putDaily({ day: 7, backend: 'target', p99Ms: 4.2, units: 100 });
  await a.close();
  const b = await RedisHistory.open(redis.url, 'h1:', r);
  t.teardown(() => b.close());
  const s = await b.samples();
  t.same(s.map((x) => x.at), [20, 25, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39], 'coarse before fine, both bounded');
  t.same(await b.daily(), [{ day: 7, backend: 'target', p99Ms: 4.2, units: 100 }]);
  const other = await RedisHistory.open(redis.url, 'h2:', r);
  t.teardown(() => other.close());
  t.same(await other.samples(), [], 'another prefix is another cutover');
});
