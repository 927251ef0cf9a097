/** The targets pgbench runs through: PostgreSQL itself, PgBouncer, a bare Node forwarder, pg-cutover (one backend or the read split). */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startEmbeddedPostgres } from '../src/demo/embedded.js';
import { pgbenchInit, psql, waitForSql } from './pgbench.js';
import { startPgbouncer } from './pgbouncer.js';
import type { Cleanup } from './cleanup.js';

export const TARGETS = ['direct', 'pgbouncer', 'forwarder', 'pg-cutover', 'pg-cutover-split', 'pg-cutover-old', 'pg-cutover-split-old', 'direct-split', 'forwarder-split', 'pg-cutover-split-hash'] as const;
/** Targets measured unless --only says otherwise (the split target starts a second server). */
export const DEFAULT_TARGETS = ['direct', 'pgbouncer', 'forwarder', 'pg-cutover'];
export type Target = (typeof TARGETS)[number];

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');

function portAccepts(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); res(true); });
    s.once('error', () => res(false));
  });
}

export interface Running {
  port: number;
  /** Process whose RSS the memory check reads (0 for direct). */
  pid: number;
  /**
   * The split baselines (direct-split, forwarder-split): the port on 127.0.0.1 leading to the PostgreSQL 15 the
   * split targets read from; half the clients go there (runPgbenchSplit), none through a proxy's routing.
   */
  splitPort?: number;
  exited(): boolean;
  stderrTail(): string;
  /** Idempotent; also registered with Cleanup. */
  stop(): Promise<void>;
}

/** Spawns a Node child, keeps the tail of its output, resolves once its port accepts. */
async function spawnNode(name: string, args: string[], port: number, env: NodeJS.ProcessEnv, cleanup: Cleanup): Promise<Running> {
  // stdin stays an open pipe: the forwarder exits when it closes.
  const child: ChildProcess = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (c: Buffer): void => { tail = (tail + c.toString()).slice(-4000); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const killSync = (): void => { if (!exited()) child.kill('SIGKILL'); };
  const stop = async (): Promise<void> => {
    if (exited()) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5_000))]);
    killSync();
  };
  cleanup.add(name, stop, killSync);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (exited()) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${tail}`);
    if (await portAccepts(port)) return { port, pid: child.pid ?? 0, exited, stderrTail: () => tail, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not listen on ${port} within 20 s: ${tail}`);
}

/** How the pg-cutover targets are run (bench options). */
export interface TargetSetup {
  /** pgbench scale of the split targets' second server. */
  splitScale: number;
  /** Checkout the `-old` targets run (--baseline). */
  baseline: string | null;
  /** State the split targets run in. */
  splitState: string;
  /** node --cpu-prof output directory (--cpu-prof-dir), or null. */
  cpuProfDir: string | null;
}

function rootOf(t: Target, setup: TargetSetup): string {
  if (!t.endsWith('-old')) return repoRoot;
  if (setup.baseline === null) throw new Error(`${t} needs --baseline <dir> (a compiled checkout of the old build)`);
  return setup.baseline;
}

function nodeArgs(t: Target, setup: TargetSetup): string[] {
  const prof = setup.cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(setup.cpuProfDir, t)}`];
  return [...prof, join(rootOf(t, setup), 'bin', 'pg-cutover.js'), 'start'];
}

/** The PostgreSQL 15 the split targets read from: started once, shared by them. */
let splitUrl: Promise<string> | null = null;
function splitTarget(db: string, cleanup: Cleanup, scale: number): Promise<string> {
  splitUrl ??= (async () => {
    const pg15 = await startEmbeddedPostgres({ major: 15, settings: { max_connections: '300', 'pg_stat_statements.track': 'none' } });
    cleanup.add('postgres-15', () => pg15.stop());
    const ep15 = { host: pg15.host, port: pg15.port, user: pg15.user, password: pg15.password, database: 'postgres' };
    await waitForSql(ep15);
    await psql(ep15, `create database ${db}`);
    await pgbenchInit({ ...ep15, database: db }, scale);
    return pg15.url(db);
  })();
  return splitUrl;
}

/** Starts one target in front of the PostgreSQL at pgHost:pgPort. */
export async function startTarget(t: Target, pgHost: string, pgPort: number, url: string, db: string, cleanup: Cleanup, setup: TargetSetup): Promise<Running> {
  switch (t) {
    case 'direct':
      return { port: pgPort, pid: 0, exited: () => false, stderrTail: () => '', stop: async () => undefined };
    case 'pgbouncer': {
      const b = await startPgbouncer({
        listenPort: await freePort(), pgHost, pgPort, database: db, user: 'postgres',
        password: decodeURIComponent(new URL(url).password),
      });
      cleanup.add('pgbouncer', () => b.stop(), () => b.killSync());
      return { port: b.port, pid: b.pid, exited: () => false, stderrTail: () => '', stop: () => b.stop() };
    }
    case 'forwarder': {
      const port = await freePort();
      return spawnNode('forwarder', [join(here, 'forwarder.js'), String(port), pgHost, String(pgPort)], port, process.env, cleanup);
    }
    case 'direct-split': {
      // The machine's bound for the split path: half the clients on each server, no proxy (same 2 cores, two servers).
      const split = Number(new URL(await splitTarget(db, cleanup, setup.splitScale)).port);
      return { port: pgPort, splitPort: split, pid: 0, exited: () => false, stderrTail: () => '', stop: async () => undefined };
    }
    case 'forwarder-split': {
      // One bare forwarder process with a port per server: Node's floor for the split path.
      const u = new URL(await splitTarget(db, cleanup, setup.splitScale));
      const [port, split] = [await freePort(), await freePort()];
      const r = await spawnNode('forwarder-split', [join(here, 'forwarder.js'), String(port), pgHost, String(pgPort), String(split), u.hostname, u.port], port, process.env, cleanup);
      return { ...r, splitPort: split };
    }
    case 'pg-cutover':
    case 'pg-cutover-old': {
      const [port, admin] = [await freePort(), await freePort()];
      // Nothing is routed to the target yet, so the source doubles as target.
      const args = [...nodeArgs(t, setup), '--source', url, '--target', url, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`];
      return spawnNode(t, args, port, { ...process.env, PGCUTOVER_LOG_LEVEL: 'warn' }, cleanup);
    }
    case 'pg-cutover-split':
    case 'pg-cutover-split-old':
    case 'pg-cutover-split-hash': {
      // READS_50PCT_AURORA (or --split-state): half the reads go to a PostgreSQL 15 holding the same pgbench data;
      // -hash: split by session (--read-split session-hash), so a session's reads stay on one backend.
      const target = await splitTarget(db, cleanup, setup.splitScale);
      const [port, admin] = [await freePort(), await freePort()];
      const hash = t === 'pg-cutover-split-hash' ? ['--read-split', 'session-hash'] : [];
      const args = [...nodeArgs(t, setup), '--source', url, '--target', target, '--listen', `127.0.0.1:${port}`, '--admin', `127.0.0.1:${admin}`, '--state', setup.splitState, ...hash];
      return spawnNode(t, args, port, { ...process.env, PGCUTOVER_LOG_LEVEL: 'warn' }, cleanup);
    }
    default: { const never: never = t; throw new Error(`unknown target ${String(never)}`); }
  }
}
