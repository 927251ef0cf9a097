/**
 * Chaos under load (issue 17): three `pg-cutover start` processes sharing a real Redis, in front of a real
 * PostgreSQL 14 (writer) and 15 (reads at 50%), each link through a fault-injecting relay. Each scenario runs
 * a write/read load with an acknowledged-write ledger, injects one fault, heals it, waits until writes flow
 * again, and checks that every acknowledged write is in the source and that every sidecar is still up.
 * Short version (npm test): five scenarios. Full version (PGCUTOVER_LONG=1, npm run test:chaos): all of them,
 * longer, written to bench/RELIABILITY.md.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { spawnSidecar, transpileCli, type SidecarProcess } from '../helpers/sidecar-process.js';
import { startFaultRelay, type RelayMode } from '../helpers/fault-relay.js';
import { killablePg, killableRedis } from '../helpers/chaos-kill.js';
import { LEDGER_DDL, Load, lostWrites, openFds, rssMb, watchHealth } from '../helpers/chaos-load.js';
import { LONG, scenarioTable, writeSection, type ScenarioResult } from '../helpers/chaos-report.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WORKERS = LONG ? 24 : 8;
const WARM_MS = LONG ? 3000 : 500;
const FAULT_MS = LONG ? 5000 : 1500;

const [bin, source, target, redis] = await Promise.all([transpileCli(t), startPg(t, 14), startPg(t, 15), killableRedis(t)]);
const src = killablePg(t, source);
const tgt = killablePg(t, target);
const relay = {
  source: await startFaultRelay(t, { host: '127.0.0.1', port: source.port }),
  target: await startFaultRelay(t, { host: '127.0.0.1', port: target.port }),
  redis: await startFaultRelay(t, { host: '127.0.0.1', port: redis.port }),
};
for (const db of [source, target]) {
  const c = new pg.Client({ connectionString: db.url() });
  await c.connect();
  await c.query(LEDGER_DDL);
  await c.end();
}
const args = [
  '--source', relay.source.url(source.url()),
  '--target', relay.target.url(target.url()),
  '--redis', relay.redis.url(redis.url),
  '--state', 'READS_50PCT_AURORA',
  '--health-probe-ms', '250',
  '--connect-timeout-ms', '2000',
];
const sidecars: SidecarProcess[] = await Promise.all(['sc-a', 'sc-b', 'sc-c'].map((id) => spawnSidecar(t, bin, id, args)));
const proxyUrl = (s: SidecarProcess) => `postgresql://postgres:postgres@127.0.0.1:${s.listenPort}/postgres`;
const sum = (xs: (number | null)[]) => (xs.some((x) => x === null) ? null : Math.round(xs.reduce<number>((a, b) => a + (b ?? 0), 0) * 10) / 10);
const pids = () => sidecars.map((s) => s.proc.pid!);

let idBase = 0;
async function scenario(name: string, fault: string, act: () => Promise<void>): Promise<ScenarioResult> {
  const before = { rss: sum(pids().map(rssMb)), fds: sum(pids().map(openFds)) };
  idBase += 1_000_000_000;
  const load = new Load({ urls: () => sidecars.filter((s) => s.alive()).map(proxyUrl), workers: WORKERS, idBase, queryTimeoutMs: 3000 }).start();
  const health = watchHealth(() => sidecars.filter((s) => s.alive()).map((s) => s.admin));
  await sleep(WARM_MS);
  await act();
  // Healed: writes must flow again through every sidecar's share of the workers.
  const at = load.writesOk;
  for (let i = 0; i < 600 && load.writesOk < at + WORKERS * 5; i++) await sleep(50);
  const recovered = load.writesOk >= at + WORKERS * 5;
  await sleep(WARM_MS);
  await load.stop();
  await health.stop();
  const ledger = await lostWrites(source.url(), load.acked);
  const s = load.snapshot();
  return {
    name,
    fault,
    writesOk: s.writesOk,
    readsOk: s.readsOk,
    errors: s.errors,
    health: { degraded: [...health.log.degraded], breakers: [...health.log.breakers], states: [...health.log.states], unanswered: health.log.unanswered },
    ledger: { acked: ledger.acked, found: ledger.found, lost: ledger.lost, uncertain: s.uncertain },
    rssMb: { before: before.rss, after: sum(pids().map(rssMb)) },
    fds: { before: before.fds, after: sum(pids().map(openFds)) },
    ...(recovered ? {} : { note: 'writes did not resume within 30 s of healing' }),
  };
}

const relayFault = (side: 'source' | 'target', mode: RelayMode, delayMs?: number) => async () => {
  relay[side].set(mode, { delayMs });
  await sleep(FAULT_MS);
  relay[side].set('pass');
};

const ALL: (readonly [name: string, fault: string, act: () => Promise<void>, short: boolean])[] = [
  ['source kill -9', `postmaster SIGKILL, restarted after ${FAULT_MS} ms`, () => src.killAndRestart(FAULT_MS), true],
  ['target kill -9', `postmaster SIGKILL, restarted after ${FAULT_MS} ms`, () => tgt.killAndRestart(FAULT_MS), false],
  ['redis kill -9', `redis-server SIGKILL, restarted after ${FAULT_MS} ms`, async () => (await redis.kill9(), await sleep(FAULT_MS), await redis.start()), false],
  [
    'sidecar kill -9',
    `one of three sidecars SIGKILL, a new one started after ${FAULT_MS} ms; its clients reconnect to the others`,
    async () => {
      const victim = sidecars[2]!;
      victim.proc.kill('SIGKILL');
      await victim.exited;
      await sleep(FAULT_MS);
      sidecars[2] = await spawnSidecar(t, bin, 'sc-c', args);
    },
    true,
  ],
  ['redis SIGSTOP', `redis-server SIGSTOP for ${FAULT_MS * 2} ms, then SIGCONT`, async () => (redis.signal('SIGSTOP'), await sleep(FAULT_MS * 2), redis.signal('SIGCONT')), true],
  ['redis partition', `relay to Redis stalls ${FAULT_MS * 2} ms (packets held, delivered on heal)`, async () => (relay.redis.set('stall'), await sleep(FAULT_MS * 2), relay.redis.set('pass')), false],
  ...(['source', 'target'] as const).flatMap((side) => [
    [`${side} link delay`, `relay adds 200 ms per chunk for ${FAULT_MS} ms`, relayFault(side, 'delay', 200), false] as const,
    [`${side} link stall`, `relay holds all bytes ${FAULT_MS} ms`, relayFault(side, 'stall'), false] as const,
    [`${side} link reset`, `relay resets every connection (RST) for ${FAULT_MS} ms`, relayFault(side, 'reset'), side === 'source'] as const,
    [`${side} link half-open`, `relay black-holes bytes without FIN/RST for ${FAULT_MS} ms`, relayFault(side, 'half-open'), side === 'target'] as const,
  ]),
];

// Every sidecar has probed both backends and reached Redis before the first fault.
for (const s of sidecars) {
  for (let i = 0; i < 200 && (await fetch(`${s.admin}/healthz`).then(async (r) => (await r.text(), r.status), () => 0)) !== 200; i++) await sleep(50);
}

const results: ScenarioResult[] = [];
for (const [name, fault, act, short] of ALL) {
  if (!LONG && !short) continue;
  t.test(name, async (t) => {
    const r = await scenario(name, fault, act);
    results.push(r);
    t.comment(JSON.stringify(r));
    t.equal(r.ledger.lost, 0, `${name}: 0 acknowledged writes lost (${r.ledger.acked} acknowledged)`);
    t.ok(r.ledger.acked > 0, 'writes were acknowledged');
    t.notOk(r.note, r.note ?? 'writes resumed after healing');
    for (const s of sidecars) {
      t.ok(s.alive(), `${s.id} still running`);
      if (!s.alive()) t.comment(`${s.id} exited (${s.proc.exitCode ?? s.proc.signalCode}); its last log lines:\n${s.log().split('\n').slice(-25).join('\n')}`);
    }
  });
}

t.teardown(() =>
  writeSection(
    '1-faults',
    'Faults under load',
    `${WORKERS} client workers (autocommit INSERT with a unique id, every third operation a read; reconnecting, to the next sidecar, after any error; 3 s client-side query timeout), starting in READS_50PCT_AURORA (writes to the source, half the reads to the target). The scenarios run one after another on the same cluster, and the breakers are left to act: when the error-rate breaker (which counts reads the target failed, retried on the source) rolls back, the later scenarios run in ROLLBACK (writes and, as the read ramp proceeds, reads on the source); "states seen" says so.\n\n` +
      scenarioTable(results),
  ),
);
