/**
 * The coordinated write pause across sidecars (DESIGN.md, Write switchover step 1): two sidecars share one
 * Redis; writers go through both. The switchover run by sidecar A parks and drains B's writes too, and B
 * releases them only once it routes by WRITES_TO_AURORA, so B's writers never meet the fenced source. A live
 * sidecar that does not acknowledge aborts the switch, and writes stay on the source.
 */
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/servers.js';
import type { ProxyHandle } from '../helpers/proxy.js';
import { query, tableChecksum, waitCaughtUp } from '../helpers/replication.js';
import { LEDGER_DDL, ledgerWriters, missingFromLedger, startCutoverPair, startFleet } from '../helpers/sidecar-fleet.js';
import { resumeNativeReplication } from '../../src/replication/native.js';
import { ackVerdict, parsePauseMessage, type AckResult } from '../../src/control/write-pause.js';
import type { CutoverState } from '../../src/domain/states.js';

t.test('ackVerdict and parsePauseMessage', async (t) => {
  const acks = new Map<string, { result: AckResult; detail: string }>([['a', { result: 'held', detail: 'drained' }]]);
  t.same(ackVerdict(['a', 'b'], acks, 10, 100), { kind: 'wait', missing: ['b'] });
  t.same(ackVerdict(['a'], acks, 10, 100), { kind: 'all-held' });
  t.match(ackVerdict(['a', 'b'], acks, 100, 100), { kind: 'abort', reason: /sidecar\(s\) b/ });
  t.match(ackVerdict(['a', 'b'], new Map([...acks, ['b', { result: 'failed' as const, detail: '2 open' }]]), 1, 100), { kind: 'abort', reason: /b \(2 open\)/ });
  t.same(parsePauseMessage('{"kind":"pause","id":"x","by":"a","writer":"source","drainMs":5,"maxHoldMs":9}'), { kind: 'pause', id: 'x', by: 'a', writer: 'source', drainMs: 5, maxHoldMs: 9 });
  t.same(parsePauseMessage('{"kind":"release","id":"x","by":"a","to":"target","version":3}'), { kind: 'release', id: 'x', by: 'a', to: 'target', version: 3 });
  for (const bad of ['nope', '{}', '{"kind":"pause","id":"x","by":"a","writer":"elsewhere","drainMs":5,"maxHoldMs":9}', '{"kind":"release","id":"x","by":"a","to":"target","version":1.5}']) {
    t.equal(parsePauseMessage(bad), null, `rejects ${bad}`);
  }
});

const pair = await startCutoverPair(t, {
  prepare: (url) => query(url, LEDGER_DDL).then(() => undefined),
  tables: ['ledger'],
  grants: 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app',
});
const { source, target } = pair;
const redis = await startRedis(t);
const [a, b] = (await startFleet(t, pair, redis.url, ['sidecar-a', 'sidecar-b'])) as [ProxyHandle, ProxyHandle];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Each subtest starts from SHADOW_WRITES on both sidecars, whatever the one before left. */
async function toShadowWrites(t: Pick<Test, 'ok'>): Promise<void> {
  if (a.state() !== 'SOURCE_PRIMARY' && a.state() !== 'SHADOW_WRITES') {
    await a.controller.rollback('test: back to the start', 'test');
    await a.controller.rollbackDone();
    await resumeNativeReplication(target.url(), { subscription: pair.subscription });
  }
  for (const to of ['READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES'] as CutoverState[]) {
    if (a.state() === 'SHADOW_WRITES') break;
    const o = await a.controller.transition({ to, reason: 'test', force: true, by: 'test' });
    if (!o.ok && o.code !== 'already-in-state') t.ok(o.ok, `→ ${to}: ${o.reason}`);
  }
  for (let i = 0; i < 100 && b.state() !== 'SHADOW_WRITES'; i++) await sleep(20);
  t.ok(a.state() === 'SHADOW_WRITES' && b.state() === 'SHADOW_WRITES', 'both sidecars in SHADOW_WRITES');
}

t.test('a live sidecar that does not acknowledge aborts the switchover', async (t) => {
  await toShadowWrites(t);
  // A third sidecar that is alive in Redis but never answers (e.g. stuck): its presence key only.
  const r = new Redis(redis.url);
  t.teardown(async () => {
    await r.del('pgcutover:sidecar:ghost');
    await r.quit();
  });
  await r.set('pgcutover:sidecar:ghost', '1', 'PX', 60_000);
  const w = ledgerWriters(b, 'b0', 2);
  await sleep(200);
  const o = await a.controller.transition({ to: 'WRITES_TO_AURORA', reason: 'test', force: true, by: 'test' });
  t.notOk(o.ok, 'the switchover is refused');
  t.match(o.ok ? '' : o.reason, /ghost/, 'the reason names the sidecar that did not acknowledge');
  t.equal(a.state(), 'SHADOW_WRITES');
  await sleep(300);
  await w.stop();
  t.equal(b.state(), 'SHADOW_WRITES', 'sidecar b still routes writes to the source');
  t.ok(w.acked.length > 10, `b kept writing (${w.acked.length} acknowledged, failures ${JSON.stringify([...w.codes])})`);
  t.equal(w.codes.size, 0, 'no write failed on b');
});

t.test('switchover and rollback pause the writes of every sidecar; none is lost or meets the fence', async (t) => {
  await toShadowWrites(t);
  const wa = ledgerWriters(a, 'a', 2);
  const wb = ledgerWriters(b, 'b', 3);
  await sleep(400);
  const sw = await a.controller.transition({ to: 'WRITES_TO_AURORA', reason: 'test', force: true, by: 'test' });
  t.ok(sw.ok, `→ WRITES_TO_AURORA ${sw.ok ? '' : sw.reason}`);
  for (let i = 0; i < 100 && b.state() !== 'WRITES_TO_AURORA'; i++) await sleep(20);
  t.equal(b.state(), 'WRITES_TO_AURORA', 'sidecar b follows');
  await sleep(500);
  const ackedBefore = wb.acked.length;
  t.equal(wb.codes.get('25006') ?? 0, 0, `b's writers never met the fenced source (${JSON.stringify([...wb.codes])})`);
  const onTarget = (await query(target.url(), "select count(*)::int as n from ledger where sidecar = 'b'")).rows[0].n;
  t.ok(onTarget > 0, `b's writes landed on the target (${onTarget} rows; ${ackedBefore} acknowledged so far)`);

  const rb = await a.controller.rollback('test rollback', 'test');
  t.ok(rb.ok, `→ ROLLBACK ${rb.ok ? '' : rb.reason}`);
  for (let i = 0; i < 300 && a.state() !== 'SOURCE_PRIMARY'; i++) await sleep(100);
  t.equal(a.state(), 'SOURCE_PRIMARY', 'the rollback procedure finished');
  await sleep(1200);
  for (const s of [a, b]) t.notOk(s.controller.breakers.isOpen('error-rate'), 'the fence\'s own session ends did not latch the error-rate breaker');
  await Promise.all([wa.stop(), wb.stop()]);
  t.equal(wb.codes.get('25006') ?? 0, 0, `b's writers never met a fenced database (${JSON.stringify([...wb.codes])})`);
  t.comment(`a failures ${JSON.stringify([...wa.codes])}; b failures ${JSON.stringify([...wb.codes])}`);

  const lost = await missingFromLedger(source.url(), [...wa.acked, ...wb.acked]);
  t.same(lost, [], `every acknowledged write is on the source (${wa.acked.length + wb.acked.length})`);
  const resumed = await resumeNativeReplication(target.url(), { subscription: pair.subscription });
  t.ok(resumed.ok, 'forward replication resumed');
  await waitCaughtUp(source, 30_000);
  t.equal(await tableChecksum(target.url(), 'ledger', 'id'), await tableChecksum(source.url(), 'ledger', 'id'), 'source and target hold the same rows');
});
