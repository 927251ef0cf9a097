// Control-plane benchmark: three `pg-cutover start` processes sharing one Redis in front of PostgreSQL 14
// (source) and 15 (target). Measures
//   1. flip propagation: a transition POSTed to one sidecar's admin API until the other two route by it
//      (p50/p99 over --flips flips), by polling their GET /state and by their own adoption stamps;
//   2. rollback to last target write: sidecars at WRITES_TO_AURORA under a steady INSERT load, a rollback
//      POSTed to one of them (what a tripped breaker does), until the last INSERT any sidecar sent to the
//      target, read from the target's rows (clock_timestamp(), same host clock).
// Prints a markdown table and writes JSON to bench/results/<date>-propagation.json.
//   npx tsc -p tsconfig.json && node dist/bench/propagation.js [--flips 100] [--rounds 5] [--writers 2]
import { Command } from 'commander';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { freePort, startEmbeddedPostgres, type EmbeddedPg } from '../src/demo/embedded.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const BIN = join(repoRoot, 'bin', 'pg-cutover.js');
const say = (msg: string): void => void process.stderr.write(`[propagation] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- Everything started is stopped: on return, error, Ctrl-C or SIGTERM ----
const stops: { name: string; stop: () => Promise<void>; kill: () => void }[] = [];
process.once('exit', () => stops.forEach((s) => s.kill()));
for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
  process.once(sig, () => void stopAll().finally(() => process.exit(code)));
}
async function stopAll(): Promise<void> {
  for (const s of stops.splice(0).reverse()) {
    await Promise.race([s.stop().catch((e: unknown) => say(`stopping ${s.name}: ${String(e)}`)), sleep(15_000)]);
  }
}

/** A child process; `stop` sends SIGTERM, then SIGKILL after `graceMs`. */
function own(name: string, child: ChildProcess, graceMs: number) {
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  const kill = () => void (exited() || child.kill('SIGKILL'));
  const entry = {
    name,
    kill,
    stop: async () => {
      if (exited()) return;
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(graceMs)]);
      kill();
      await gone;
    },
  };
  stops.push(entry);
  return { exited, stop: async () => { stops.splice(stops.indexOf(entry), 1); await entry.stop(); } };
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(500, () => (s.destroy(), res(false)));
    s.once('error', () => res(false));
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (b) => (s.destroy(), res(b.toString().startsWith('+PONG'))));
  });
}

async function startRedis(): Promise<string> {
  const dir = await fsp.mkdtemp(join(os.tmpdir(), 'pg-cutover-bench-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const h = own('redis-server', child, 5000);
  stops.push({ name: 'redis dir', stop: () => fsp.rm(dir, { recursive: true, force: true }), kill: () => undefined });
  for (const end = Date.now() + 10_000; Date.now() < end; await sleep(20)) {
    if (h.exited()) throw new Error('redis-server exited at start');
    if (await redisPing(port)) return `redis://127.0.0.1:${port}`;
  }
  throw new Error(`redis-server did not answer on ${port}`);
}

async function startPg(major: 14 | 15): Promise<EmbeddedPg> {
  const p = await startEmbeddedPostgres({ major });
  stops.push({ name: `postgres ${major}`, stop: () => p.stop(), kill: () => undefined });
  return p;
}

// ---- Sidecars ----
interface Sidecar {
  id: string;
  admin: string;
  proxyUrl: string;
  stop(): Promise<void>;
}

async function call(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

interface StateBody {
  state: string;
  version: number;
  since: number;
  appliedAt: number;
}
const getState = async (s: Sidecar) => (await call('GET', `${s.admin}/state`)).body as unknown as StateBody;

async function startSidecar(id: string, src: EmbeddedPg, tgt: EmbeddedPg, redis: string, prefix: string, state: string): Promise<Sidecar> {
  const [listen, admin] = [await freePort(), await freePort()];
  const args = [
    BIN, 'start', '--source', src.url(), '--target', tgt.url(), '--redis', redis, '--redis-prefix', prefix, '--state', state,
    '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--sidecar-id', id,
    // Stable-time guards and the rollback read ramp become negligible (1 h → 3.6 ms).
    '--time-scale', '0.000001', '--shutdown-timeout-ms', '500',
  ];
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, PGCUTOVER_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let tail = '';
  child.stderr!.on('data', (b: Buffer) => (tail = (tail + b.toString()).slice(-4000)));
  const h = own(`sidecar ${id}`, child, 3000);
  const s: Sidecar = { id, admin: `http://127.0.0.1:${admin}`, proxyUrl: `postgresql://postgres:${src.password}@127.0.0.1:${listen}/postgres`, stop: h.stop };
  for (const end = Date.now() + 30_000; ; await sleep(50)) {
    if (h.exited()) throw new Error(`sidecar ${id} exited: ${tail}`);
    if (Date.now() > end) throw new Error(`sidecar ${id} did not answer /healthz: ${tail}`);
    if (await fetch(`${s.admin}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)) return s;
  }
}

async function startThree(src: EmbeddedPg, tgt: EmbeddedPg, redis: string, prefix: string, state: string): Promise<Sidecar[]> {
  // The first creates the state key with `state`; the others read it.
  const first = await startSidecar('sc-1', src, tgt, redis, prefix, state);
  return [first, ...(await Promise.all(['sc-2', 'sc-3'].map((id) => startSidecar(id, src, tgt, redis, prefix, state))))];
}

// ---- Statistics ----
interface Dist {
  n: number;
  p50: number;
  p99: number;
  max: number;
  min: number;
}
function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
  const r = (x: number) => Math.round(x * 100) / 100;
  return { n: s.length, p50: r(at(50)), p99: r(at(99)), max: r(s[s.length - 1] ?? NaN), min: r(s[0] ?? NaN) };
}

// ---- 1. Flip propagation ----
async function propagation(sidecars: Sidecar[], flips: number) {
  const polled: number[] = [];
  const adopted: number[] = [];
  const postMs: number[] = [];
  let v = (await getState(sidecars[0]!)).version;
  for (let flip = 0; flip < flips; flip++) {
    const at = sidecars[flip % sidecars.length]!;
    const forward = flip % 2 === 0;
    const sent = performance.now();
    const r = forward
      ? await call('POST', `${at.admin}/transition`, { to: 'READS_10PCT_AURORA', force: true, reason: `bench flip ${flip}` })
      : await call('POST', `${at.admin}/rollback`, { reason: `bench flip ${flip}` });
    const ok = performance.now();
    if (r.status !== 200) throw new Error(`flip ${flip} via ${at.id}: ${r.status} ${JSON.stringify(r.body)}`);
    postMs.push(ok - sent);
    const want = r.body.version as number;
    await Promise.all(
      sidecars.filter((s) => s !== at).map(async (s) => {
        for (;;) {
          const st = await getState(s);
          if (st.version >= want) {
            polled.push(performance.now() - ok);
            if (st.version === want) adopted.push(st.appliedAt - st.since);
            return;
          }
          if (performance.now() - ok > 10_000) throw new Error(`${s.id} did not reach version ${want}`);
        }
      }),
    );
    v = want;
    if (!forward) {
      // The rollback runner ends ROLLBACK → SOURCE_PRIMARY by itself; wait for every sidecar to route by it.
      for (const end = Date.now() + 10_000; ; await sleep(2)) {
        const all = await Promise.all(sidecars.map(getState));
        if (all.every((s) => s.state === 'SOURCE_PRIMARY' && s.version === all[0]!.version)) {
          v = all[0]!.version;
          break;
        }
        if (Date.now() > end) throw new Error(`rollback after flip ${flip} did not complete everywhere`);
      }
    }
  }
  return { flips, version: v, postMs: dist(postMs), polledMs: dist(polled), adoptedMs: dist(adopted) };
}

// ---- 2. Rollback to last target write ----
interface RoundResult {
  round: number;
  origin: string;
  /** ms from the rollback POST being sent to the last INSERT each sidecar ran on the target (negative: before). */
  lastTargetAfterPostMs: Record<string, number | null>;
  /** The same, from the ROLLBACK snapshot's `since` (stamped by the sidecar that committed it). */
  lastTargetAfterCommitMs: Record<string, number | null>;
  /** INSERTs that landed on the target in the round (after the rollback, writes are held until the source is restored). */
  targetWrites: number;
  clientErrors: number;
}

function writers(sidecars: Sidecar[], perSidecar: number, round: number) {
  let running = true;
  let errors = 0;
  const clients: pg.Client[] = [];
  const loops = sidecars.flatMap((s) =>
    Array.from({ length: perSidecar }, async () => {
      const c = new pg.Client({ connectionString: s.proxyUrl });
      c.on('error', () => undefined);
      clients.push(c);
      await c.connect();
      while (running) {
        try {
          await c.query('insert into bench_writes (sidecar, round) values ($1, $2)', [s.id, round]);
        } catch {
          if (!running) return;
          errors++;
          await sleep(5);
        }
      }
    }),
  );
  return {
    get errors() {
      return errors;
    },
    async stop() {
      running = false;
      // A write parked by the rollback's hold would wait for it: end the connections after a grace period.
      await Promise.race([Promise.allSettled(loops), sleep(1000)]);
      await Promise.allSettled(clients.map((c) => Promise.race([c.end(), sleep(1000)])));
    },
  };
}

async function rollbackRound(src: EmbeddedPg, tgt: EmbeddedPg, redis: string, round: number, perSidecar: number): Promise<RoundResult> {
  const sidecars = await startThree(src, tgt, redis, `bench-rollback-${round}:`, 'WRITES_TO_AURORA');
  try {
    const origin = sidecars[round % sidecars.length]!;
    const load = writers(sidecars, perSidecar, round);
    await sleep(700);
    const postAt = Date.now();
    const r = await call('POST', `${origin.admin}/rollback`, { reason: `bench round ${round}: as a tripped breaker would` });
    if (r.status !== 200) throw new Error(`rollback round ${round}: ${r.status} ${JSON.stringify(r.body)}`);
    const committedAt = r.body.since as number;
    await sleep(1000);
    await load.stop();
    const q = async (p: EmbeddedPg, sql: string) => {
      const c = new pg.Client({ connectionString: p.url() });
      await c.connect();
      try {
        return (await c.query(sql, [round])).rows as { sidecar: string; ms: number; n: number }[];
      } finally {
        await c.end();
      }
    };
    const onTarget = await q(tgt, 'select sidecar, extract(epoch from max(at)) * 1000 as ms, count(*)::int as n from bench_writes where round = $1 group by sidecar');
    const per = (rows: { sidecar: string; ms: number }[], from: number) =>
      Object.fromEntries(sidecars.map((s) => {
        const row = rows.find((x) => x.sidecar === s.id);
        return [s.id, row ? Math.round((Number(row.ms) - from) * 10) / 10 : null];
      }));
    return {
      round,
      origin: origin.id,
      lastTargetAfterPostMs: per(onTarget, postAt),
      lastTargetAfterCommitMs: per(onTarget, committedAt),
      targetWrites: onTarget.reduce((n, x) => n + x.n, 0),
      clientErrors: load.errors,
    };
  } finally {
    await Promise.all(sidecars.map((s) => s.stop()));
  }
}

// ---- Main ----
async function main(): Promise<void> {
  const o = new Command('propagation')
    .option('--flips <n>', 'transitions POSTed for the propagation measurement', '100')
    .option('--rounds <n>', 'rollback rounds (fresh sidecars each)', '5')
    .option('--writers <n>', 'INSERT loops per sidecar during the rollback rounds', '2')
    .parse(process.argv)
    .opts<{ flips: string; rounds: string; writers: string }>();
  const opts = { flips: Number(o.flips), rounds: Number(o.rounds), writers: Number(o.writers) };
  const started = new Date();
  const loadStart = os.loadavg()[0]!;
  say(`options ${JSON.stringify(opts)}; starting PostgreSQL 14 and 15 and Redis`);
  const [src, tgt, redis] = await Promise.all([startPg(14), startPg(15), startRedis()]);
  for (const p of [src, tgt]) {
    const c = new pg.Client({ connectionString: p.url() });
    await c.connect();
    await c.query('create table bench_writes (id bigint generated always as identity primary key, sidecar text not null, round int not null, at timestamptz not null default clock_timestamp())');
    await c.end();
  }

  say(`propagation: ${opts.flips} flips across 3 sidecars`);
  const three = await startThree(src, tgt, redis, 'bench-propagation:', 'SOURCE_PRIMARY');
  const prop = await propagation(three, opts.flips);
  await Promise.all(three.map((s) => s.stop()));

  const rounds: RoundResult[] = [];
  for (let r = 1; r <= opts.rounds; r++) {
    say(`rollback round ${r}/${opts.rounds}`);
    rounds.push(await rollbackRound(src, tgt, redis, r, opts.writers));
  }
  const vals = (k: 'lastTargetAfterPostMs' | 'lastTargetAfterCommitMs', origin: boolean | null) =>
    rounds.flatMap((r) => Object.entries(r[k]).filter(([id, v]) => v !== null && (origin === null || (id === r.origin) === origin)).map(([, v]) => v!));
  const lastAny = dist(rounds.map((r) => Math.max(...Object.values(r.lastTargetAfterPostMs).filter((v): v is number => v !== null))));
  const summary = {
    propagation: prop,
    rollback: {
      rounds: opts.rounds,
      lastTargetWriteAnySidecarMs: lastAny,
      lastTargetWriteOriginMs: dist(vals('lastTargetAfterPostMs', true)),
      lastTargetWriteOthersMs: dist(vals('lastTargetAfterPostMs', false)),
      lastTargetWriteAfterCommitMs: dist(vals('lastTargetAfterCommitMs', null)),
      clientErrors: rounds.reduce((n, r) => n + r.clientErrors, 0),
    },
  };
  const machine = { cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? 'unknown', node: process.version, loadAvgStart: loadStart, loadAvgEnd: os.loadavg()[0]! };
  process.stdout.write(report(summary, machine, started));
  const outDir = join(repoRoot, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `${started.toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-propagation.json`);
  writeFileSync(file, JSON.stringify({ date: started.toISOString(), machine, options: opts, summary, rounds }, null, 2) + '\n');
  say(`wrote ${file}`);
}

function report(s: { propagation: Awaited<ReturnType<typeof propagation>>; rollback: Record<string, unknown> }, m: Record<string, string | number>, started: Date): string {
  const row = (what: string, d: Dist) => `| ${what} | ${d.n} | ${d.p50} | ${d.p99} | ${d.max} |`;
  const rb = s.rollback as Record<string, Dist> & { clientErrors: number; rounds: number };
  return [
    `## Control-plane propagation ${started.toISOString().slice(0, 10)}`,
    '',
    `3 sidecar processes, one Redis, PostgreSQL 14 → 15; ${m.cpus} × ${m.cpu}, Node ${m.node}; 1-minute load average ${Number(m.loadAvgStart).toFixed(1)} at start, ${Number(m.loadAvgEnd).toFixed(1)} at end.`,
    '',
    '| measurement (ms) | n | p50 | p99 | max |',
    '|---|---|---|---|---|',
    row(`flip: POST /transition or /rollback answered (${s.propagation.flips} flips)`, s.propagation.postMs),
    row('flip: POST answered → other sidecar\'s GET /state shows it', s.propagation.polledMs),
    row('flip: state committed → other sidecar adopted it (its own clock)', s.propagation.adoptedMs),
    row(`rollback POST → last INSERT on the target, any sidecar (${rb.rounds} rounds)`, rb.lastTargetWriteAnySidecarMs!),
    row('rollback POST → last INSERT on the target, the sidecar that rolled back', rb.lastTargetWriteOriginMs!),
    row('rollback POST → last INSERT on the target, the other sidecars', rb.lastTargetWriteOthersMs!),
    row('ROLLBACK committed → last INSERT on the target, per sidecar', rb.lastTargetWriteAfterCommitMs!),
    '',
    `Client errors during the rollback rounds: ${rb.clientErrors}. Negative values: the last target write ran before the POST was sent.`,
    'After the rollback, new writes are held (the source is still fenced until reverse replication has drained, which this bench does not set up), so the rounds measure only when writes stop reaching the target.',
    '',
  ].join('\n');
}

main().then(
  () => stopAll().then(() => process.exit(0)),
  (e: unknown) => {
    say(`failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    void stopAll().finally(() => process.exit(1));
  },
);
