import t from 'tap';
import net from 'node:net';
import { Registry } from 'prom-client';
import { startPg } from '../helpers/servers.js';
import { connectControl, serverMajor } from '../../src/replication/control-conn.js';
import { pauseNativeReplication, resumeNativeReplication, setupNativeReplication } from '../../src/replication/native.js';
import { disableAndWait, directionNames, startReverseReplication } from '../../src/replication/reverse.js';
import { HEARTBEAT_TABLE } from '../../src/replication/heartbeat.js';
import { startReplicationRuntime } from '../../src/replication/runtime.js';
import { sleep, until } from '../helpers/wait.js';
import {
  directionFor, isSessionLost, reconnectDelayMs, reportedLag, reportedReplicationError,
} from '../../src/replication/runtime-plan.js';


t.test('pure decisions', async (t) => {
  const names = directionNames();
  t.match(directionFor('source', names), { name: 'forward', publisher: 'source', subscriber: 'target', subscription: 'pgcutover' });
  t.match(directionFor('target', names), { name: 'reverse', publisher: 'target', subscriber: 'source', subscription: 'pgcutover_reverse' });
  t.equal(reportedLag({ heartbeat: true, heartbeatLag: 3, heartbeatError: null, observed: 0 }), 3, 'the heartbeat wins: it sees a paused subscription');
  t.equal(reportedLag({ heartbeat: true, heartbeatLag: 3, heartbeatError: 'down', observed: 0 }), null, 'a failing probe is unknown, not stale');
  t.equal(reportedLag({ heartbeat: true, heartbeatLag: null, heartbeatError: null, observed: 7 }), 7, 'the monitor until the probe has a number');
  t.equal(reportedLag({ heartbeat: false, heartbeatLag: null, heartbeatError: null, observed: 12 }), 12, 'DMS latency without a probe');
  t.equal(reportedReplicationError(null), null);
  t.equal(reportedReplicationError({ phase: 'cdc', lagSeconds: 0, lagBytes: 0, now: 0, detail: '', error: 'boom' }), 'boom');
  t.same([0, 1, 2, 3, 4, 10].map((n) => reconnectDelayMs(n, 500, 3000)), [0, 500, 1000, 2000, 3000, 3000]);
  t.ok(isSessionLost(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })));
  t.ok(isSessionLost(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })));
  t.ok(isSessionLost(new Error('Connection terminated unexpectedly')));
  t.ok(isSessionLost(new Error('Query read timeout')));
  t.notOk(isSessionLost(Object.assign(new Error('relation "x" does not exist'), { code: '42P01' })));
  t.notOk(isSessionLost(Object.assign(new Error('cannot execute UPDATE in a read-only transaction'), { code: '25006' })));
});

/** A TCP relay in front of the target that can be cut (drop every connection, refuse new ones) and restored. */
async function cuttableRelay(port: number) {
  let down = false;
  const live = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (down) return client.destroy();
    const upstream = net.connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      live.add(s);
      s.on('error', () => undefined);
      s.on('close', () => live.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      down = true;
      for (const s of live) s.destroy();
    },
    restore() {
      down = false;
    },
    close: () => new Promise<void>((r) => { for (const s of live) s.destroy(); server.close(() => r()); }),
  };
}

const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

const [src, dst] = await Promise.all([startPg(t, 14, { logical: true }), startPg(t, 15, { logical: true })]);
const s = await connectControl(src.url());
const d = await connectControl(dst.url());
t.teardown(() => Promise.all([s.end(), d.end().catch(() => undefined)]));
await s.query(`CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT i, 'v' || i FROM generate_series(1, 1000) i`);
const setup = await setupNativeReplication(src.url(), dst.url(), { tables: ['items'] });
if (!setup.ok) throw new Error(setup.errors.join('\n'));
t.ok(setup.value.tables.includes(HEARTBEAT_TABLE), 'setup publishes the heartbeat table');

const relay = await cuttableRelay(dst.port);
t.teardown(() => relay.close());
const targetViaRelay = `postgresql://postgres:${encodeURIComponent(dst.password)}@127.0.0.1:${relay.port}/postgres`;

let writer: 'source' | 'target' = 'source';
const lags: (number | null)[] = [];
const errors: (string | null)[] = [];
const rt = await startReplicationRuntime({
  sourceUrl: src.url(),
  targetUrl: targetViaRelay,
  subscription: 'pgcutover',
  heartbeatIntervalMs: 200,
  pollMs: 200,
  config: { caughtUpLagSeconds: 10, caughtUpForMs: 1000, failLagSeconds: 60 },
  session: { connectTimeoutMs: 2000, queryTimeoutMs: 3000, minBackoffMs: 100, maxBackoffMs: 400 },
  writer: () => writer,
  onLag: (x) => lags.push(x),
  onReplicationError: (m) => errors.push(m),
});
t.teardown(() => rt.stop());
const lastLag = () => lags.at(-1) ?? null;
const lastError = () => errors.at(-1) ?? null;
const hbError = () => (rt.status().heartbeat as { lastError: string | null }).lastError;

t.test('lag becomes small and the state reaches CDC_CAUGHT_UP', async (t) => {
  await until('CDC_CAUGHT_UP', () => rt.state() === 'CDC_CAUGHT_UP');
  await until('a measured lag', () => lastLag() !== null);
  t.ok(lastLag()! < 2, `lag seen by onLag: ${lastLag()} s`);
  t.ok(rt.lagSeconds() !== null && rt.lagSeconds()! < 2);
  t.equal(lastError(), null, 'no replication error reported');
  // The heartbeat itself writes every 200 ms, so a few hundred bytes may be in flight.
  t.ok(rt.lagBytes() !== null && rt.lagBytes()! < 100_000, `byte lag: ${rt.last()?.detail}`);
  await until('slot retention', () => rt.slotRetainedBytes() !== null);
  t.ok(rt.slotRetainedBytes()! >= 0, `forward slot retains ${rt.slotRetainedBytes()} B`);
  const hb = await d.query(`SELECT extract(epoch FROM now() - at) AS age FROM public.${HEARTBEAT_TABLE} WHERE id = 1`);
  t.ok(Number(hb.rows[0].age) < 2, 'the heartbeat row is replicated to the target');
});

t.test('metrics', async (t) => {
  const reg = new Registry();
  rt.register(reg);
  const text = await reg.metrics();
  t.match(text, /pgcutover_replication_lag_seconds \d/);
  t.match(text, /pgcutover_replication_state\{state="CDC_CAUGHT_UP"\} 1/);
  t.match(text, /pgcutover_replication_slot_retained_bytes \d/);
  t.match(text, /pgcutover_replication_slot_retained_bytes_by_side\{side="source"\} \d/);
});

t.test('a paused subscription is PAUSED, not lag; resume brings it back to CDC_ACTIVE', async (t) => {
  t.ok((await pauseNativeReplication(dst.url())).ok);
  await until('PAUSED', () => rt.state() === 'PAUSED', 10_000);
  await sleep(1500);
  t.equal(lastLag(), null, 'no lag reported while paused (the backlog grows by design)');
  t.match(rt.status(), { state: 'PAUSED', paused: true, since: { why: /pg-cutover replicate resume/ } });
  t.ok((await resumeNativeReplication(dst.url())).ok);
  await until('replicating again', () => rt.state() === 'CDC_ACTIVE' || rt.state() === 'CDC_CAUGHT_UP', 15_000);
  await until('lag to fall', () => lastLag() !== null && lastLag()! < 1, 15_000);
  t.pass(`lag after resume: ${lastLag()} s`);
});

t.test('target unreachable: errors reported, nothing thrown; back when it returns', async (t) => {
  relay.cut();
  await until('heartbeat error', () => hbError());
  t.pass(`heartbeat lastError: ${hbError()}`);
  const msg = await until('replication error', () => lastError(), 10_000);
  t.match(msg, /monitor failed \d+ times/, msg);
  t.equal(rt.state(), 'REPLICATION_FAILED');
  t.equal(lastLag(), null, 'lag unknown while the probe fails');
  relay.restore();
  await until('recovery', () => lastError() === null && hbError() === null && lastLag() !== null && lastLag()! < 2, 15_000);
  await until('replicating again', () => rt.state() === 'CDC_ACTIVE' || rt.state() === 'CDC_CAUGHT_UP');
  t.pass(`recovered: ${rt.state()}, lag ${lastLag()} s`);
});

t.test('writer moves to the target: heartbeat and monitor follow reverse replication', async (t) => {
  await disableAndWait(d, 'pgcutover');
  // A runtime that polls only on its own (every minute) and on a writer change: after the switchover disabled
  // the forward subscription it reads PAUSED; the writer change must clear that at once, not a poll later
  // (a stale PAUSED held the replication-lag breaker open and refused the next forward step, seen in the
  // walkthrough on a loaded machine).
  const pausedSeen: ({ since: number; why: string } | null)[] = [];
  let writer2: 'source' | 'target' = 'source';
  const slow = await startReplicationRuntime({
    sourceUrl: src.url(),
    targetUrl: dst.url(),
    subscription: 'pgcutover',
    heartbeat: false,
    pollMs: 60_000,
    session: { connectTimeoutMs: 2000, queryTimeoutMs: 3000, minBackoffMs: 100, maxBackoffMs: 400 },
    writer: () => writer2,
    onPaused: (p) => pausedSeen.push(p),
  });
  t.teardown(() => slow.stop());
  await until('the forward subscription read as PAUSED', () => pausedSeen.at(-1) != null, 10_000);
  await startReverseReplication(s, d, dst.url());
  writer2 = 'target';
  const fed = pausedSeen.length;
  slow.writerChanged();
  await until('a reading of the reverse direction', () => pausedSeen.length > fed, 10_000);
  t.same(pausedSeen.slice(fed), [null], 'the writer change is followed at once by a reading of the reverse subscription: not paused');

  writer = 'target';
  const switchedAt = Date.now();
  rt.writerChanged();
  t.match(rt.status(), { writer: 'target', direction: { name: 'reverse', subscription: 'pgcutover_reverse' }, heartbeat: { writtenOn: 'target', readOn: 'source' } });
  await until('heartbeat lag in the reverse direction', () => lastLag() !== null && lastLag()! < 2);
  const hb = await s.query(`SELECT extract(epoch FROM now() - at) AS age FROM public.${HEARTBEAT_TABLE} WHERE id = 1`);
  t.ok(Number(hb.rows[0].age) < 2, `the heartbeat written on the target arrives on the source (lag ${lastLag()} s)`);
  // The reverse subscriber is the PostgreSQL 14 source: the monitor must not ask it for 15-only views.
  t.ok(await serverMajor(s) === 14, 'the source is PostgreSQL 14');
  const fresh = () => {
    const o = rt.last();
    return o !== null && o.now > switchedAt && !o.error && o.detail.includes('worker') && o.lagBytes !== null ? o : null;
  };
  const seen = await until('an observation of the reverse subscription', fresh, 10_000).catch(() => null);
  t.ok(seen, `reverse subscription observed: ${rt.state()}: ${rt.last()?.detail}`);
  await until('both slots', () => {
    const r = rt.status().slotRetainedBytes as { source: number | null; target: number | null };
    return r.source !== null && r.target !== null;
  });
  t.pass(`slot retention: ${JSON.stringify(rt.status().slotRetainedBytes)}`);
});

t.test('target server stopped: no crash, errors reported', async (t) => {
  await dst.stop();
  await until('heartbeat error', () => hbError());
  const msg = await until('replication error', () => lastError(), 10_000);
  t.pass(`after stop: heartbeat ${hbError()}; replication ${msg}`);
  await rt.poll();
  t.same(unhandled, [], 'no unhandled rejections');
  await rt.stop();
});
