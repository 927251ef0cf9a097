/**
 * The error-rate circuit breaker and the automatic rollback, with real servers: the target PostgreSQL 15 is
 * stopped under a steady read load at READS_50PCT_AURORA; reads fall back to the source without a client
 * error, the breaker trips, the sidecar rolls back (ROLLBACK → SOURCE_PRIMARY) by itself, and the audit
 * log holds the breaker reading and every rollback step. A client's own SQL errors do not trip it.
 *
 * Time scale 1/1000: the breaker's 5 min hold is 300 ms, its rate window 60 ms (the controller samples the
 * proxy's counters once a second, so the rate is over the last second), the rollback read ramp 3.6 s.
 * Thresholds are not scaled: > 1% target faults, at least 50 target statements in the window.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy, type ProxyHandle } from '../helpers/proxy.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TIME_SCALE = '0.001';
const SERVER = "select current_setting('server_version_num')::int / 10000 as major";

async function get(p: ProxyHandle, path: string): Promise<Record<string, unknown>> {
  const r = await fetch(`${p.adminUrl}${path}`, { signal: AbortSignal.timeout(5000) });
  return (await r.json()) as Record<string, unknown>;
}

interface Reading {
  name: string;
  status: string;
  value: number | null;
}
const errorRate = async (p: ProxyHandle) => ((await get(p, '/healthz')).breakers as Reading[]).find((b) => b.name === 'error-rate');

async function waitFor(what: string, cond: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** `n` clients reading in a loop until stopped; every error is kept with its time. */
function readLoad(url: string, n: number, query: (i: number) => string) {
  let running = true;
  const errors: { at: number; code: string; message: string }[] = [];
  const served = { 14: 0, 15: 0 } as Record<number, number>;
  let queries = 0;
  /** Per client: when its query in flight was sent (null when none is). */
  const sentAt: (number | null)[] = Array.from({ length: n }, () => null);
  const clients: pg.Client[] = [];
  const loops = Array.from({ length: n }, async (_, k) => {
    const c = new pg.Client({ connectionString: url });
    clients.push(c);
    let dead = false;
    c.on('error', (e) => {
      dead = true;
      errors.push({ at: Date.now(), code: (e as { code?: string }).code ?? 'none', message: `connection: ${e.message}` });
    });
    await c.connect();
    try {
      for (let i = k; running && !dead; i += n) {
        queries++;
        sentAt[k] = Date.now();
        try {
          const r = await c.query(query(i));
          const m = r.rows[0]?.major as number | undefined;
          if (m !== undefined) served[m] = (served[m] ?? 0) + 1;
        } catch (e) {
          const err = e as { code?: string; message: string };
          errors.push({ at: Date.now(), code: err.code ?? 'none', message: err.message });
        }
        sentAt[k] = null;
      }
    } finally {
      // end() of a client whose connection already failed never resolves.
      if (!dead) await Promise.race([c.end().catch(() => undefined), sleep(2000)]);
    }
  });
  let stopping: Promise<string[]> | null = null;
  return {
    errors,
    served,
    get queries() {
      return queries;
    },
    /** Stops the loops; returns the clients whose query had not come back 5 s later (their sockets are then cut). */
    stop(beforeCut?: (hung: string[]) => Promise<void>): Promise<string[]> {
      stopping ??= (async () => {
        running = false;
        await Promise.race([Promise.all(loops), sleep(5000)]);
        const now = Date.now();
        const hung = sentAt.flatMap((at, k) => (at === null ? [] : [`client ${k}: query in flight for ${now - at} ms`]));
        if (beforeCut) await beforeCut(hung).catch(() => undefined);
        for (const c of clients) (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
        return hung;
      })();
      return stopping;
    },
  };
}

t.test('target stopped at READS_50PCT under load: fallback, breaker trip, rollback to SOURCE_PRIMARY, audited', async (t) => {
  const source = await startPg(t, 14);
  const target = await startPg(t, 15);
  const proxy = await startProxy(t, source.url(), target.url(), { state: 'READS_50PCT_AURORA', timeScale: TIME_SCALE, sidecarId: 'breaker-test' });
  const load = readLoad(proxy.url(), 4, () => SERVER);
  t.teardown(() => load.stop());

  await waitFor('the breaker has a verdict on the target', async () => (await errorRate(proxy))?.value === 0, 10_000);
  t.ok(load.served[15]! > 0 && load.served[14]! > 0, `reads split between source (${load.served[14]}) and target (${load.served[15]})`);

  const stoppedAt = Date.now();
  await target.stop();
  t.comment(`target stopped in ${Date.now() - stoppedAt} ms`);
  await waitFor('the proxy saw the target go', () => proxy.proxy.stats.targetFallbacks > 0 || proxy.proxy.stats.backendFaults.target > 0, 10_000);

  await waitFor('ROLLBACK', async () => (await get(proxy, '/state')).state !== 'READS_50PCT_AURORA', 15_000).catch(async (e: Error) => {
    // What the breaker saw: a dead target the router skips gets no statements, hence no verdict.
    t.comment(`error-rate breaker: ${JSON.stringify(await errorRate(proxy))}; proxy stats: ${JSON.stringify(proxy.proxy.stats)}`);
    throw e;
  });
  const tripAt = Date.now();
  const rolled = await get(proxy, '/state');
  t.match(rolled, { state: /ROLLBACK|SOURCE_PRIMARY/ }, 'the breaker rolled the state back');
  await waitFor('SOURCE_PRIMARY', async () => (await get(proxy, '/state')).state === 'SOURCE_PRIMARY', 40_000).catch(async (e: Error) => {
    // Say where the rollback procedure stopped.
    t.comment(JSON.stringify((await get(proxy, '/audit?limit=20')).entries, null, 1));
    throw e;
  });
  const doneAt = Date.now();
  t.comment(`stop → trip ${tripAt - stoppedAt} ms, trip → SOURCE_PRIMARY ${doneAt - tripAt} ms`);
  const servedBefore = load.served[14]!;
  await sleep(300);
  t.ok(load.served[14]! > servedBefore, 'reads keep being served by the source');
  // A hung query (seen once in CI, not reproduced since): say what the proxy's sessions were doing.
  const hung = await load.stop(async (h) => void (h.length > 0 && t.comment(JSON.stringify(await get(proxy, '/clients')))));
  t.same(hung, [], 'every query came back');

  // Reads in flight when the target went away are retried on the source; sessions whose idle target
  // connection was ended reconnect on next use: no client sees anything, not even at the moment of the loss.
  t.same(load.errors, [], `no client saw an error (${load.queries} queries)`);
  t.ok(proxy.proxy.stats.targetFallbacks > 0, `reads fell back to the source (${proxy.proxy.stats.targetFallbacks})`);

  const audit = ((await get(proxy, '/audit?limit=100')).entries as { kind: string; by: string; from?: string; to?: string; reason: string; detail?: Record<string, unknown> }[]);
  const trip = audit.find((e) => e.kind === 'breaker' && e.by === 'breaker:error-rate');
  t.ok(trip, 'the breaker trip is audited');
  t.match(trip?.detail, { reading: { name: 'error-rate', status: 'open', value: Number, threshold: 0.01 } }, 'with its reading');
  const rb = audit.find((e) => e.kind === 'transition' && e.to === 'ROLLBACK');
  t.match(rb, { from: 'READS_50PCT_AURORA', by: 'breaker:error-rate', reason: /circuit breaker error-rate/ }, 'ROLLBACK by the breaker, with its reason');
  const steps = audit.filter((e) => e.kind === 'rollback-step').map((e) => e.reason);
  t.match(steps, [/^1 /, /^2 /, /^3 /, /^4 /, /^5 /, /^6 /], 'every rollback step, in order');
  t.ok(audit.filter((e) => e.kind === 'rollback-step').every((e) => e.detail?.ok === true && typeof e.detail.started === 'number' && typeof e.detail.ended === 'number'), 'each step with its timestamps, all ok');
  t.match(audit.find((e) => e.kind === 'transition' && e.to === 'SOURCE_PRIMARY'), { from: 'ROLLBACK', by: 'rollback-runner' });
});

t.test('client SQL errors (5% syntax errors, 5% division by zero) at READS_50PCT do not trip the breaker', async (t) => {
  const source = await startPg(t, 14);
  const target = await startPg(t, 15);
  const proxy = await startProxy(t, source.url(), target.url(), { state: 'READS_50PCT_AURORA', timeScale: TIME_SCALE });
  // Syntax errors (42601) cannot be classified and go to the writer; division by zero (22012) is a read and
  // half of those reach the target: both are the client's fault.
  const load = readLoad(proxy.url(), 4, (i) => (i % 20 === 0 ? 'selec 1' : i % 20 === 10 ? 'select 1/0 as major' : SERVER));
  t.teardown(() => load.stop());
  let verdicts = 0;
  let maxRate = 0;
  const end = Date.now() + 4000;
  while (Date.now() < end) {
    const r = await errorRate(proxy);
    if (r?.value !== null && r?.value !== undefined) {
      verdicts++;
      maxRate = Math.max(maxRate, r.value);
    }
    await sleep(200);
  }
  t.same(await load.stop(), [], 'every query came back');
  const codes = new Set(load.errors.map((e) => e.code));
  t.same([...codes].sort(), ['22012', '42601'], 'only the client errors we sent');
  const share = load.errors.length / load.queries;
  t.ok(share > 0.08 && share < 0.12, `${(share * 100).toFixed(1)}% of ${load.queries} queries failed`);
  t.ok(verdicts > 0, `the breaker measured the target (${verdicts} verdicts)`);
  t.equal(maxRate, 0, 'client errors are not target faults');
  t.equal((await errorRate(proxy))?.status, 'closed', 'breaker closed');
  t.equal((await get(proxy, '/state')).state, 'READS_50PCT_AURORA', 'no rollback');
  t.ok(proxy.proxy.stats.errors.target > 0, `client errors did reach the target (${proxy.proxy.stats.errors.target})`);
});
