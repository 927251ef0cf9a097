import { spawn } from 'node:child_process';
import net from 'node:net';
import t from 'tap';
import { Redis } from 'ioredis';
import { DEFAULT_CUTOVER_CONFIG } from '../../src/domain/control-config.js';
import { decideTransition, transitionAudit, type CutoverSnapshot, type TransitionRequest } from '../../src/domain/cutover-machine.js';
import { RedisStore, type RedisStoreOptions } from '../../src/control/redis-store.js';
import type { StateStore } from '../../src/control/store.js';
import { startRedis, type Teardown } from '../helpers/servers.js';
import { until } from '../helpers/wait.js';

const waitFor = (what: string, cond: () => boolean | Promise<boolean>, ms = 5000) => until(what, cond, ms, 10);

async function open(t: Teardown, url: string, opts: Partial<RedisStoreOptions> = {}): Promise<RedisStore> {
  const s = await RedisStore.open({ url, pollMs: 100, ...opts });
  t.teardown(() => s.close());
  return s;
}

/** Decide and CAS like the controller does, with every guard satisfied (the machine has its own tests). */
async function transition(store: StateStore, to: string, by = 'test', force = false) {
  const cur = store.current();
  const req: TransitionRequest = { to, by, reason: `to ${to}`, force };
  const now = Date.now();
  const d = decideTransition(cur, req, {
    now,
    gates: { 2: { passed: true, at: now }, 3: { passed: true, at: now } },
    breakers: [],
    config: { ...DEFAULT_CUTOVER_CONFIG, minStableForMs: { ...DEFAULT_CUTOVER_CONFIG.minStableForMs, READS_10PCT_AURORA: 0, READS_50PCT_AURORA: 0 } },
  });
  if (!d.ok) throw new Error(d.reason);
  return store.compareAndSet(cur.version, d.next, transitionAudit(cur, d, req));
}

/** A TCP hop between a store and Redis that the test can cut and heal: a network partition. */
async function partitionable(t: Teardown, port: number) {
  const sockets = new Set<net.Socket>();
  let cut = false;
  const server = net.createServer((c) => {
    if (cut) return c.destroy();
    const up = net.connect(port, '127.0.0.1');
    for (const s of [c, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    c.pipe(up).pipe(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    heal() {
      cut = false;
    },
  };
}

/** Redis back on the same port with nothing in it (no persistence): a restart that lost its data. */
function restartEmpty(t: Teardown, port: number): void {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
}

/** Sidecar a reaches Redis through a hop the test cuts, b directly; both at READS_10PCT_AURORA (version 1), then a is cut off. */
async function partitionedPair(t: Teardown) {
  const redis = await startRedis(t);
  const net1 = await partitionable(t, redis.port);
  const a = await open(t, net1.url);
  const b = await open(t, redis.url);
  await transition(b, 'READS_10PCT_AURORA');
  await waitFor('a follows', () => a.current().version === 1);
  net1.cut();
  await waitFor('a degraded', () => a.health().degraded);
  return { net1, a, b };
}

t.test('creates the state key once and shares it', async (t) => {
  const redis = await startRedis(t);
  const a = await open(t, redis.url);
  const b = await open(t, redis.url);
  t.match(a.current(), { state: 'SOURCE_PRIMARY', version: 0, readPercent: 0 });
  t.same(b.current(), a.current(), 'the second sidecar reads the first one’s snapshot');
  t.match(await a.audit(), [{ kind: 'transition', to: 'SOURCE_PRIMARY', reason: 'state key created' }]);
  t.same(a.health(), { degraded: false, lastContactMs: a.health().lastContactMs, pendingLocal: false });
});

t.test('compare-and-set: of concurrent writers exactly one wins', async (t) => {
  const redis = await startRedis(t);
  const stores = await Promise.all(Array.from({ length: 8 }, () => open(t, redis.url)));
  const results = await Promise.all(stores.map((s, i) => transition(s, 'READS_10PCT_AURORA', `sidecar-${i}`)));
  t.equal(results.filter((r) => r.ok).length, 1, 'one winner');
  for (const r of results.filter((r) => !r.ok)) t.match(r, { ok: false, code: 'version-conflict', current: { state: 'READS_10PCT_AURORA', version: 1 } });
  const audit = await stores[0]!.audit(10);
  t.equal(audit.filter((e) => e.to === 'READS_10PCT_AURORA').length, 1, 'one audit record for one transition');
  const bad = await stores[0]!.compareAndSet(1, { ...stores[0]!.current(), version: 5 }, { at: 0, by: 't', kind: 'x' });
  t.match(bad, { ok: false, code: 'invalid', reason: /must be 2/ });
});

t.test('pub/sub reaches other sidecars fast; polling catches a lost message', async (t) => {
  const redis = await startRedis(t);
  const a = await open(t, redis.url, { pollMs: 60_000 });
  const b = await open(t, redis.url, { pollMs: 60_000 });
  const times: number[] = [];
  let sent = 0;
  b.subscribe(() => times.push(performance.now() - sent));
  for (const to of ['READS_10PCT_AURORA', 'ROLLBACK']) {
    sent = performance.now();
    t.match(await transition(a, to), { ok: true });
    // The poll is 60 s: seeing the change before half of it has passed means it came by pub/sub.
    await waitFor(`b sees ${to}`, () => b.current().state === to, 30_000);
  }
  t.equal(times.length, 2, 'both changes arrived through the subscription');
  // Measured values are printed, not asserted (the benchmark measures p50/p99).
  t.comment(`propagation incl. the CAS round trip: ${times.map((x) => x.toFixed(1)).join(', ')} ms`);

  // A change published on a channel nobody hears (as if the message were lost): the poll finds it.
  const c = await open(t, redis.url, { pollMs: 100 });
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  const lost: CutoverSnapshot = { ...c.current(), state: 'SOURCE_PRIMARY', version: c.current().version + 1, reason: 'written without publish' };
  await raw.set('pgcutover:state', JSON.stringify(lost));
  await waitFor('poll picks up the unpublished change', () => c.current().version === lost.version, 2000);
  t.equal(c.current().reason, 'written without publish');
});

t.test('key prefixes keep clusters apart; audit keeps order', async (t) => {
  const redis = await startRedis(t);
  const one = await open(t, redis.url, { prefix: 'one:' });
  const two = await open(t, redis.url, { prefix: 'two:' });
  await transition(one, 'READS_10PCT_AURORA');
  await one.appendAudit({ at: Date.now(), by: 'runner', kind: 'rollback-step', reason: 'step 1' });
  t.equal(two.current().state, 'SOURCE_PRIMARY');
  const audit = await one.audit(10);
  t.same(audit.map((e) => e.kind), ['transition', 'transition', 'rollback-step']);
  t.same((await one.audit(1)).map((e) => e.reason), ['step 1'], 'limit keeps the newest');
  t.ok(audit.every((e) => typeof e.id === 'string'));
  t.equal((await two.audit(10)).length, 1);
});

t.test('Redis killed mid-run: degraded, last state kept, rollback local; restarted empty: reconciled', async (t) => {
  const redis = await startRedis(t);
  const a = await open(t, redis.url);
  const b = await open(t, redis.url);
  t.match(await transition(a, 'READS_10PCT_AURORA'), { ok: true });
  await waitFor('b follows', () => b.current().version === 1);

  await redis.stop();
  await waitFor('a degraded', () => a.health().degraded);
  t.match(a.health(), { degraded: true, reason: /\S/ });
  t.equal(a.current().state, 'READS_10PCT_AURORA', 'keeps routing by the last known state');
  t.equal((await a.get()).state, 'READS_10PCT_AURORA', 'get() answers from memory');
  t.match(await transition(a, 'READS_50PCT_AURORA'), { ok: false, code: 'unavailable', reason: /only a rollback/ });
  const rb = await transition(a, 'ROLLBACK', 'breaker:error-rate');
  t.match(rb, { ok: true, local: true, snapshot: { state: 'ROLLBACK', version: 2 } });
  await a.appendAudit({ at: Date.now(), by: 'rollback-runner', kind: 'rollback-step', reason: 'writes off the target' });
  t.match(a.health(), { degraded: true, pendingLocal: true });
  await t.rejects(a.audit(), 'audit cannot be read while Redis is down');
  t.equal(b.current().state, 'READS_10PCT_AURORA', 'b cannot know yet');

  // Same port, no persistence: Redis comes back empty.
  restartEmpty(t, redis.port);
  await waitFor('a reconciled', () => !a.health().degraded, 8000);
  await waitFor('b sees the rollback', () => b.current().state === 'ROLLBACK', 3000);
  t.match(b.current(), { state: 'ROLLBACK', version: 2, reason: 'to ROLLBACK' });
  const audit = await b.audit(20);
  t.match(audit.map((e) => e.kind), ['transition', 'rollback-step', 'reconcile']);
  t.match(audit[0], { to: 'ROLLBACK', by: 'breaker:error-rate', detail: { local: true } });

  t.match(await transition(b, 'SOURCE_PRIMARY', 'rollback-runner', true).catch((e: Error) => e.message), /rollback-complete/);
  t.match(await transition(a, 'READS_10PCT_AURORA').catch((e: Error) => e.message), /not a legal transition/);
});

t.test('Redis restarted empty with no local change: the last known state is restored', async (t) => {
  const redis = await startRedis(t);
  const a = await open(t, redis.url);
  await transition(a, 'READS_10PCT_AURORA');
  await transition(a, 'READS_50PCT_AURORA');
  await redis.stop();
  await waitFor('degraded', () => a.health().degraded);
  restartEmpty(t, redis.port);
  await waitFor('healthy', () => !a.health().degraded, 8000);
  const raw = new Redis(redis.url);
  t.teardown(() => raw.disconnect());
  t.match(JSON.parse((await raw.get('pgcutover:state'))!), { state: 'READS_50PCT_AURORA', version: 2 });
  // A fresh sidecar now reads the restored state, not a new SOURCE_PRIMARY.
  const fresh = await open(t, redis.url);
  t.match(fresh.current(), { state: 'READS_50PCT_AURORA', version: 2 });
});

t.test('partitioned sidecar rolls back while others moved on: the rollback wins when it heals', async (t) => {
  const { net1, a, b } = await partitionedPair(t);
  t.match(await transition(b, 'READS_50PCT_AURORA'), { ok: true, snapshot: { version: 2 } }, 'b, still connected, moves on');
  t.match(await transition(a, 'ROLLBACK', 'breaker:error-rate'), { ok: true, local: true, snapshot: { version: 2 } });

  net1.heal();
  await waitFor('b sees the rollback', () => b.current().state === 'ROLLBACK', 8000);
  t.match(b.current(), { state: 'ROLLBACK', version: 3, reason: /reconciled/, readPercent: 10 });
  await waitFor('a healthy', () => !a.health().degraded, 3000);
  t.same(a.current(), b.current());
  const last = (await b.audit(3)).map((e) => e.kind);
  t.same(last.slice(-2), ['transition', 'reconcile']);
});

t.test('a rollback completed during a partition is written back over a ROLLBACK committed meanwhile, not replaced by it', async (t) => {
  // Issue 14 (rollback-partition): the sidecar that ran the rollback to SOURCE_PRIMARY while cut off adopted the
  // ROLLBACK another one committed in Redis meanwhile, and a second rollback ran.
  const { net1, a, b } = await partitionedPair(t);
  t.match(await transition(a, 'ROLLBACK', 'breaker:error-rate'), { ok: true, local: true, snapshot: { version: 2 } });
  const rb = a.current();
  const done: CutoverSnapshot = { ...rb, state: 'SOURCE_PRIMARY', version: 3, since: Date.now(), reason: 'rollback procedure complete', readPercent: 0 };
  t.match(await a.compareAndSet(2, done, { at: Date.now(), by: 'rollback-runner', kind: 'transition', reason: done.reason }), { ok: true, local: true });
  t.match(await transition(b, 'ROLLBACK', 'operator'), { ok: true, snapshot: { state: 'ROLLBACK', version: 2 } }, 'a ROLLBACK lands in Redis meanwhile');

  net1.heal();
  await waitFor('b sees the completed rollback', () => b.current().state === 'SOURCE_PRIMARY', 8000);
  t.match(b.current(), { state: 'SOURCE_PRIMARY', version: 3, reason: /rollback completed during a Redis outage, reconciled/ });
  await waitFor('a healthy', () => !a.health().degraded, 3000);
  t.same(a.current(), b.current(), 'a kept its SOURCE_PRIMARY');
  t.ok((await b.audit(5)).some((e) => e.kind === 'reconcile' && /wrote back the completed rollback/.test(e.reason ?? '')), 'audited');
});

t.test('open fails fast and clearly when Redis is not there', async (t) => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  // The message names the configured connect timeout: the open gave up by it, not by a default.
  await t.rejects(RedisStore.open({ url: `redis://user:secret@127.0.0.1:${port}`, connectTimeoutMs: 500 }), {
    message: new RegExp(`cannot open the Redis state store at redis://\\*\\*\\*@127\\.0\\.0\\.1:${port}: not ready after 500 ms \\(.*ECONNREFUSED`),
  });
});
