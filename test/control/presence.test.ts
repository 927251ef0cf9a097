/**
 * A kill -9'd sidecar stops counting for the coordinated write pause within its presence TTL (issue 17: a
 * switchover started 2 s after a kill waited the full 7 s for the dead sidecar, then aborted). A real Redis,
 * a real `pg-cutover start` process killed with SIGKILL, and this process as the sidecar that pauses.
 */
import t from 'tap';
import { freePort, startRedis } from '../helpers/servers.js';
import { spawnSidecar, transpileCli } from '../helpers/sidecar-process.js';
import { until } from '../helpers/wait.js';
import { RedisPauseBus } from '../../src/control/redis-pause-bus.js';
import { WritePause, ackVerdict, type AckResult, type WriteHolder } from '../../src/control/write-pause.js';

const [bin, redis] = await Promise.all([transpileCli(t), startRedis(t)]);
// No database is needed to take part in a pause: nothing holds writes on a sidecar without clients.
const nowhere = `postgresql://postgres:postgres@127.0.0.1:${await freePort()}/postgres`;

t.test('ackVerdict: a sidecar no longer live is not waited for; a failed one still aborts', async (t) => {
  const acks = new Map<string, { result: AckResult; detail: string }>([['a', { result: 'held', detail: 'drained' }]]);
  t.same(ackVerdict(['a', 'b'], acks, 10, 100, ['a', 'b']), { kind: 'wait', missing: ['b'] });
  t.same(ackVerdict(['a', 'b'], acks, 10, 100, ['a']), { kind: 'all-held' }, 'b expired: not waited for');
  t.match(ackVerdict(['a', 'b'], new Map([...acks, ['b', { result: 'failed' as const, detail: '1 open' }]]), 10, 100, ['a']), { kind: 'abort' }, 'a failed ack is never ignored');
});

t.test("a switchover started right after a sidecar's kill -9 goes ahead without it", async (t) => {
  const victim = await spawnSidecar(t, bin, 'victim', ['--source', nowhere, '--target', nowhere, '--redis', redis.url]);
  const bus = await RedisPauseBus.open({ url: redis.url, sidecarId: 'pauser' });
  t.teardown(() => bus.close());
  await until('victim present', async () => ((await bus.live()).includes('victim') ? true : null));
  const held: string[] = [];
  const holder: WriteHolder = {
    holdWritesFor: () => void held.push('hold'),
    writesDrained: async () => 0,
    releaseWrites: () => void held.push('release'),
  };
  const pauses = new WritePause({ sidecarId: 'pauser', holder, bus, version: () => 1, refresh: async () => 1 });
  t.teardown(() => pauses.close());

  // Live, the victim acknowledges a pause like any sidecar.
  const p1 = pauses.pause('source', 2000);
  t.same((await p1.hold()).sidecars.sort(), ['pauser', 'victim'], 'both acknowledged');
  await p1.release('source', 1);

  victim.proc.kill('SIGKILL');
  await victim.exited;
  t.ok((await bus.live()).includes('victim'), 'its presence key outlives it for a moment');
  const p2 = pauses.pause('source', 5000); // timeout 7 s, as in the report
  const r = await p2.hold();
  t.same(r.sidecars, ['pauser'], 'the pause completed without the dead sidecar (it did not wait out 7 s and abort)');
  t.notOk((await bus.live()).includes('victim'), 'its presence expired');
  await p2.release('source', 1);
});
