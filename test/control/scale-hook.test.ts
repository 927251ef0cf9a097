import t from 'tap';
import http from 'node:http';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createScaleHook } from '../../src/control/scale-hook.js';

const dir = mkdtempSync(join(tmpdir(), 'scale-hook-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const reading = { value: 91.25, threshold: 80, detail: 'OPEN (scale-hook): target CPU 91.25% > 80 for 10m of 10m' };
const ctx = { sidecarId: 'sc-1', target: 'aurora.example:5432' };

t.test('a shell command runs with the reading in its environment', async (t) => {
  const out = join(dir, 'env.txt');
  const hook = createScaleHook({ command: `env | grep '^PGCUTOVER_' | sort > ${out}; echo scaled up`, minIntervalMs: 0 });
  const r = await hook.run(reading, ctx);
  t.equal(r.ok, true);
  t.equal(r.how, 'command');
  t.match(r.detail, /^command exited 0 in .*stdout: scaled up/);
  const env = Object.fromEntries(readFileSync(out, 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  t.same(env, {
    PGCUTOVER_BREAKER: 'target-cpu',
    PGCUTOVER_CPU_PERCENT: '91.25',
    PGCUTOVER_DETAIL: reading.detail,
    PGCUTOVER_SIDECAR: 'sc-1',
    PGCUTOVER_TARGET: 'aurora.example:5432',
    PGCUTOVER_THRESHOLD: '80',
  });
});

t.test('a non-zero exit is ok:false with the tail of stderr', async (t) => {
  const hook = createScaleHook({ command: `echo "modify-db-cluster: AccessDenied" >&2; exit 3` });
  const r = await hook.run(reading, ctx);
  t.equal(r.ok, false);
  t.equal(r.how, 'command');
  t.match(r.detail, /^command exited 3 in .*stderr: modify-db-cluster: AccessDenied$/);
});

/** Whether `pid` is gone (or a zombie) within 10 s: a signal is delivered asynchronously, so wait for it. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** A process that exists and is not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

t.test('a command past its timeout is killed with its whole process group', async (t) => {
  const marker = join(dir, 'late.txt');
  // The sleep is a child of the shell: killing only /bin/sh would leave it holding our pipes.
  const pidFile = join(dir, 'sleep.pid');
  const hook = createScaleHook({ command: `echo starting; sleep 5 & echo $! > ${pidFile}; wait; touch ${marker}`, timeoutMs: 200 });
  const r = await hook.run(reading, ctx);
  t.equal(r.ok, false);
  t.match(r.detail, /^command timed out after 200ms; stdout: starting$/);
  t.ok(await gone(Number(readFileSync(pidFile, 'utf8'))), 'the shell\'s child was killed with the group');
  t.notOk(existsSync(marker), 'the rest of the script never ran');
});

t.test('a command that ignores SIGTERM is SIGKILLed after a grace period', async (t) => {
  const pidFile = join(dir, 'stubborn.pid');
  const hook = createScaleHook({ command: `trap '' TERM; echo $$ > ${pidFile}; echo stubborn; while :; do sleep 0.05; done`, timeoutMs: 100, killGraceMs: 100 });
  const r = await hook.run(reading, ctx);
  t.equal(r.ok, false);
  t.match(r.detail, /^command timed out after 100ms; stdout: stubborn$/);
  t.ok(await gone(Number(readFileSync(pidFile, 'utf8'))), 'the shell that ignored SIGTERM is gone (SIGKILL)');
});

t.test('a webhook gets the reading as JSON', async (t) => {
  const got: { body: Record<string, unknown>; type: string | undefined }[] = [];
  let status = 202;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      got.push({ body: JSON.parse(raw) as Record<string, unknown>, type: req.headers['content-type'] });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 202 ? 'queued' : 'boom');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scale`;
  const clock = { now: Date.UTC(2024, 4, 1, 12, 0, 0) };
  const hook = createScaleHook({ webhookUrl: url, minIntervalMs: 0, now: () => clock.now });
  const r = await hook.run(reading, ctx);
  t.same(r, { ok: true, how: 'webhook', detail: 'webhook answered HTTP 202: queued' });
  t.same(got[0], {
    type: 'application/json',
    body: { breaker: 'target-cpu', sidecar: 'sc-1', target: 'aurora.example:5432', cpuPercent: 91.25, threshold: 80, detail: reading.detail, at: '2024-05-01T12:00:00.000Z' },
  });
  status = 500;
  const failed = await hook.run(reading, ctx);
  t.same(failed, { ok: false, how: 'webhook', detail: 'webhook answered HTTP 500: boom' });

});

t.test('an unreachable or silent webhook is ok:false, not an exception', async (t) => {
  const silent = http.createServer(() => {}); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as AddressInfo).port;
  const slow = await createScaleHook({ webhookUrl: `http://127.0.0.1:${port}/`, timeoutMs: 150 }).run(reading, ctx);
  t.same(slow, { ok: false, how: 'webhook', detail: 'webhook failed: no answer within 150ms' });
  silent.closeAllConnections();
  await new Promise<void>((r) => silent.close(() => r()));
  const dead = await createScaleHook({ webhookUrl: `http://127.0.0.1:${port}/`, timeoutMs: 1000 }).run(reading, ctx);
  t.equal(dead.ok, false);
  t.match(dead.detail, /^webhook failed: .*(ECONNREFUSED|closed)/);
});

t.test('the hook is not run again within the minimum interval', async (t) => {
  const count = join(dir, 'count.txt');
  const clock = { now: 1_000_000 };
  const hook = createScaleHook({ command: `echo run >> ${count}`, minIntervalMs: 600_000, now: () => clock.now });
  t.equal((await hook.run(reading, ctx)).how, 'command');
  clock.now += 599_999;
  const again = await hook.run(reading, ctx);
  t.same(again, { ok: true, how: 'suppressed', detail: 'scale hook ran 9m 59s ago (minimum interval 10m)' });
  clock.now += 1;
  t.equal((await hook.run(reading, ctx)).how, 'command', 'runs again once the interval has passed');
  t.equal(readFileSync(count, 'utf8'), 'run\nrun\n');

  const both = await Promise.all([hook.run(reading, ctx), hook.run(reading, ctx)].map((p) => p.then((r) => r.how)));
  t.same(both, ['suppressed', 'suppressed'], 'still within the interval of the last run');
  clock.now += 600_000;
  const concurrent = await Promise.all([hook.run(reading, ctx), hook.run(reading, ctx)].map((p) => p.then((r) => r.how)));
  t.same(concurrent, ['command', 'suppressed'], 'a call while one runs is suppressed');
});

t.test('with nothing configured run is a no-op', async (t) => {
  t.same(await createScaleHook({}).run(reading, ctx), { ok: true, how: 'none', detail: 'no scale command or webhook configured' });
});
