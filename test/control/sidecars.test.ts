/**
 * Three sidecar processes sharing one real Redis, in front of a real PostgreSQL 14 and 15: a transition
 * through one admin API reaches the other two (propagation measured over 100 flips), and a Redis outage
 * mid-run leaves every sidecar on its last state, degraded, refusing forward steps but rolling back
 * locally, until Redis is back on the same port and they reconcile to one state and version.
 *
 * The sidecars run `pg-cutover start` from the TypeScript sources (tap's loader), as bin/pg-cutover.js
 * runs it from dist/, so a stale dist/ cannot make this test pass or fail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { freePort, startPg, startRedis, type Teardown } from '../helpers/servers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/index.ts', import.meta.url));
const TS_LOADER = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<Reply> {
  const r = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

interface Child {
  id: string;
  admin: string;
  proc: ChildProcess;
  log(): string;
}

/** `pg-cutover start` in its own process on free ports; resolves when GET /healthz answers. */
async function spawnSidecar(t: Teardown, id: string, args: string[]): Promise<Child> {
  const [listen, admin] = [await freePort(), await freePort()];
  const script = `const { main } = await import(${JSON.stringify(CLI)}); await main(['node', 'pg-cutover', ...process.argv.slice(1)]);`;
  const proc = spawn(
    process.execPath,
    [...TS_LOADER, '--input-type=module', '-e', script, '--', 'start', '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--sidecar-id', id, ...args],
    { cwd: ROOT, env: { PATH: process.env.PATH, TS_NODE_TRANSPILE_ONLY: '1', PGCUTOVER_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let tail = '';
  proc.stderr!.on('data', (b: Buffer) => (tail = (tail + b.toString()).slice(-8000)));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  t.teardown(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  });
  const c: Child = { id, admin: `http://127.0.0.1:${admin}`, proc, log: () => tail };
  const deadline = Date.now() + 40_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`sidecar ${id} exited with ${proc.exitCode}:\n${tail}`);
    if (Date.now() > deadline) throw new Error(`sidecar ${id} did not answer /healthz within 40 s:\n${tail}`);
    const ok = await fetch(`${c.admin}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false);
    if (ok) return c;
    await sleep(100);
  }
}

const state = async (c: Child) => (await call('GET', `${c.admin}/state`)).body as { state: string; version: number; degraded: boolean };

async function waitFor(what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Every sidecar at `s` with one and the same version; returns it. */
async function converged(cs: Child[], s: string, ms = 10_000): Promise<number> {
  let v = -1;
  await waitFor(`all sidecars at ${s}`, async () => {
    const all = await Promise.all(cs.map(state));
    v = all[0]!.version;
    return all.every((x) => x.state === s && x.version === v);
  }, ms);
  return v;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** Polls `c`'s GET /state until it shows `version`; returns the ms since `t0` of the answer that did. */
async function seen(c: Child, version: number, t0: number): Promise<number> {
  const end = t0 + 5000;
  for (;;) {
    const s = await state(c);
    if (s.version >= version) return performance.now() - t0;
    if (performance.now() > end) throw new Error(`${c.id} still at version ${s.version}, want ${version}`);
  }
}

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const redis = await startRedis(t);
const common = ['--source', source.url(), '--target', target.url(), '--redis', redis.url, '--time-scale', '0.000001'];
// One at a time: the first creates the state key, and three TypeScript loaders at once would crowd two cores.
const sidecars: Child[] = [];
for (const id of ['sc-a', 'sc-b', 'sc-c']) sidecars.push(await spawnSidecar(t, id, common));

t.test('a transition through one admin API reaches all three; propagation over 100 flips', async (t) => {
  let v = await converged(sidecars, 'SOURCE_PRIMARY');
  const fromOk: number[] = [];
  const fromSent: number[] = [];
  for (let flip = 0; flip < 100; flip++) {
    const at = sidecars[flip % 3]!;
    const others = sidecars.filter((c) => c !== at);
    const forward = flip % 2 === 0;
    const sent = performance.now();
    const r = forward
      ? await call('POST', `${at.admin}/transition`, { to: 'READS_10PCT_AURORA', force: true, reason: `flip ${flip}: gate 2 not run in this test` })
      : await call('POST', `${at.admin}/rollback`, { reason: `flip ${flip}` });
    const ok = performance.now();
    if (r.status !== 200) {
      t.fail(`flip ${flip} via ${at.id}: ${r.status} ${JSON.stringify(r.body)}`);
      return;
    }
    const want = r.body.version as number;
    if (want !== v + 1) t.fail(`flip ${flip}: version ${want}, expected ${v + 1}`);
    const lat = await Promise.all(others.map((c) => seen(c, want, ok)));
    fromOk.push(...lat);
    fromSent.push(...lat.map((l) => l + (ok - sent)));
    // The rollback runner on `at` finishes (ramp of 3.6 ms at this time scale) with ROLLBACK → SOURCE_PRIMARY.
    v = forward ? want : await converged(sidecars, 'SOURCE_PRIMARY');
  }
  const p = (xs: number[]) => ({ p50: Number(percentile(xs, 50).toFixed(2)), p99: Number(percentile(xs, 99).toFixed(2)), max: Number(Math.max(...xs).toFixed(2)) });
  const okP = p(fromOk);
  const sentP = p(fromSent);
  t.comment(`propagation to the other 2 sidecars, ${fromOk.length} samples over 100 flips (ms): after the POST's 200: p50 ${okP.p50} p99 ${okP.p99} max ${okP.max}; after the POST was sent: p50 ${sentP.p50} p99 ${sentP.p99} max ${sentP.max}`);
  t.equal(fromOk.length, 200, 'two other sidecars per flip');
  t.ok(okP.p99 <= 250, `p99 ${okP.p99} ms ≤ 250 ms (target 100 ms)`);

  const audit = (await call('GET', `${sidecars[1]!.admin}/audit?limit=2000`)).body.entries as { kind: string; by: string; forced?: boolean; to?: string }[];
  const transitions = audit.filter((e) => e.kind === 'transition');
  t.ok(transitions.filter((e) => e.to === 'READS_10PCT_AURORA' && e.forced).length >= 50, 'every forced step is in the shared audit stream, marked forced');
  t.ok(transitions.filter((e) => e.to === 'SOURCE_PRIMARY' && e.by === 'rollback-runner').length >= 50, 'and every rollback completion');
});

t.test('Redis killed mid-run: degraded, forward refused, rollback local; restarted on the same port: reconciled', async (t) => {
  const [a, b, c] = sidecars as [Child, Child, Child];
  await converged(sidecars, 'SOURCE_PRIMARY');
  const fwd = await call('POST', `${b.admin}/transition`, { to: 'READS_10PCT_AURORA', force: true, reason: 'before the outage' });
  t.equal(fwd.status, 200);
  const before = await converged(sidecars, 'READS_10PCT_AURORA', 3000);

  process.kill(redis.pid, 'SIGKILL');
  await redis.stop();
  for (const s of sidecars) {
    await waitFor(`${s.id} degraded`, async () => (await call('GET', `${s.admin}/healthz`)).body.status === 'degraded', 5000);
  }
  const h = await call('GET', `${c.admin}/healthz`);
  t.match(h.body, { status: 'degraded', state: 'READS_10PCT_AURORA', store: { degraded: true, reason: /\S/ } }, '/healthz says degraded, keeps the last state');
  t.match(await state(b), { state: 'READS_10PCT_AURORA', version: before, degraded: true });

  const refused = await call('POST', `${b.admin}/transition`, { to: 'READS_50PCT_AURORA', force: true, reason: 'during the outage' });
  t.ok(refused.status === 409 || refused.status === 503, `forward transition refused (${refused.status}: ${refused.body.reason})`);
  t.match(refused.body, { state: 'READS_10PCT_AURORA' });
  t.match(refused.body.reason, /store|unreachable/i, 'because the shared store is unreachable');
  t.equal((await state(b)).state, 'READS_10PCT_AURORA', 'nothing changed');

  const rb = await call('POST', `${a.admin}/rollback`, { reason: 'operator rollback during a Redis outage' });
  t.match(rb, { status: 200, body: { state: 'ROLLBACK', local: true } }, 'a rollback still works, committed locally');
  await waitFor('a finishes its rollback locally', async () => (await state(a)).state === 'SOURCE_PRIMARY', 5000);
  t.equal((await state(c)).state, 'READS_10PCT_AURORA', 'the others cannot know yet');

  const child = spawn('redis-server', ['--port', String(redis.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  t.teardown(() => void child.kill('SIGKILL'));
  const v = await converged(sidecars, 'SOURCE_PRIMARY', 15_000);
  t.ok(v >= before + 2, `every sidecar at SOURCE_PRIMARY version ${v} (was ${before} before the outage)`);
  for (const s of sidecars) {
    await waitFor(`${s.id} healthy`, async () => (await call('GET', `${s.admin}/healthz`)).body.status === 'ok', 8000);
  }
  t.pass('every /healthz back to ok');
  const audit = (await call('GET', `${c.admin}/audit?limit=50`)).body.entries as { kind: string; by: string; reason: string; detail?: { local?: boolean } }[];
  t.ok(audit.some((e) => e.kind === 'reconcile' && e.by === 'sc-a'), 'the reconcile is audited');
  t.ok(audit.some((e) => e.kind === 'transition' && e.detail?.local === true && e.reason === 'operator rollback during a Redis outage'), 'the local rollback reached the shared audit');
  t.ok(audit.some((e) => e.kind === 'rollback-step'), 'with its steps');

  // Forward steps work again from any sidecar.
  const again = await call('POST', `${c.admin}/transition`, { to: 'READS_10PCT_AURORA', force: true, reason: 'after the outage' });
  t.equal(again.status, 200, 'forward transitions accepted again');
  await converged(sidecars, 'READS_10PCT_AURORA', 3000);
});
