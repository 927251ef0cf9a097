/**
 * The coordinated write pause across sidecars (DESIGN.md, Write switchover step 1): two sidecars share one
 * Redis; writers go through both. The switchover run by sidecar A parks and drains B's writes too, and B
 * releases them only once it routes by WRITES_TO_AURORA, so B's writers never meet the fenced source. A live
 * sidecar that does not acknowledge aborts the switch, and writes stay on the source.
 */
import t from 'tap';
import pg from 'pg';
import { Redis } from 'ioredis';
import { startPg, startRedis } from '../helpers/servers.js';
import { startProxy, type ProxyHandle } from '../helpers/proxy.js';
import { query, tableChecksum, waitCaughtUp, waitSynced } from '../helpers/replication.js';
import { resumeNativeReplication, setupNativeReplication } from '../../src/replication/native.js';
import { ackVerdict, parsePauseMessage } from '../../src/control/write-pause.js';
import type { CutoverState } from '../../src/domain/states.js';

t.test('ackVerdict and parsePauseMessage', async (t) => {
  const acks = new Map([['a', { result: 'held' as const, detail: 'drained' }]]);
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

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
const redis = await startRedis(t);
const appUrl = (s: typeof source) => `postgresql://app:app@127.0.0.1:${s.port}/postgres`;
for (const db of [source, target]) await query(db.url(), "create role app login password 'app'");
await query(source.url(), 'create table ledger (id bigint generated always as identity primary key, sidecar text not null, client int not null, seq int not null, unique (sidecar, client, seq))');
await query(source.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');
const setup = await setupNativeReplication(source.url(), target.url(), { tables: ['ledger'] });
if (!setup.ok) throw new Error(setup.errors.join('; '));
await waitSynced(target.url());
await query(target.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');

const env = { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'app', password: 'app', method: 'scram-sha-256' }] }) };
const flags = (id: string) => ({
  sourceControl: source.url(),
  targetControl: target.url(),
  subscription: setup.value.subscription,
  timeScale: '0.000001',
  gate3MinShadowed: 0,
  shadowSamplePct: 0,
  redis: redis.url,
  sidecarId: id,
});
const a = await startProxy(t, appUrl(source), appUrl(target), flags('sidecar-a'), env);
const b = await startProxy(t, appUrl(source), appUrl(target), flags('sidecar-b'), env);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Writers through one sidecar: a ledger of acknowledged writes and the SQLSTATEs of failures. */
function writers(p: ProxyHandle, name: string, n: number) {
  const acked: string[] = [];
  const codes = new Map<string, number>();
  let stop = false;
  const one = async (client: number): Promise<void> => {
    const c = new pg.Client({ connectionString: p.url('postgres', 'app', 'app') });
    c.on('error', () => {});
    await c.connect();
    for (let seq = 1; !stop; seq++) {
      try {
        await c.query('insert into ledger (sidecar, client, seq) values ($1, $2, $3)', [name, client, seq]);
        acked.push(`${name}:${client}:${seq}`);
      } catch (e) {
        const code = String((e as { code?: string }).code);
        codes.set(code, (codes.get(code) ?? 0) + 1);
        await sleep(20);
        if (code === '57P01' || code === '08006' || code === 'undefined') return one(client + 100);
      }
    }
    await c.end().catch(() => {});
  };
  const done = Promise.all(Array.from({ length: n }, (_, i) => one(i + 1)));
  return { acked, codes, stop: async () => ((stop = true), await done) };
}

t.test('a live sidecar that does not acknowledge aborts the switchover', async (t) => {
  for (const to of ['READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES'] as CutoverState[]) {
    const o = await a.controller.transition({ to, reason: 'test', force: true, by: 'test' });
    t.ok(o.ok, `→ ${to}`);
  }
  for (let i = 0; i < 50 && b.state() !== 'SHADOW_WRITES'; i++) await sleep(20);
  // A third sidecar that is alive in Redis but never answers (e.g. stuck): its presence key only.
  const r = new Redis(redis.url);
  t.teardown(() => r.quit());
  await r.set('pgcutover:sidecar:ghost', '1', 'PX', 60_000);
  const w = writers(b, 'b0', 2);
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
  await r.del('pgcutover:sidecar:ghost');
});

t.test('switchover and rollback pause the writes of every sidecar; none is lost or meets the fence', async (t) => {
  const wa = writers(a, 'a', 2);
  const wb = writers(b, 'b', 3);
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

  const rows = (await query(source.url(), 'select sidecar, client, seq from ledger')).rows as { sidecar: string; client: number; seq: number }[];
  const have = new Set(rows.map((r) => `${r.sidecar}:${r.client}:${r.seq}`));
  const lost = [...wa.acked, ...wb.acked].filter((k) => !have.has(k));
  t.same(lost, [], `every acknowledged write is on the source (${wa.acked.length + wb.acked.length})`);
  const resumed = await resumeNativeReplication(target.url(), { subscription: setup.value.subscription });
  t.ok(resumed.ok, 'forward replication resumed');
  await waitCaughtUp(source, 30_000);
  t.equal(await tableChecksum(target.url(), 'ledger', 'id'), await tableChecksum(source.url(), 'ledger', 'id'), 'source and target hold the same rows');
});
