/**
 * kill -9 and restart of the real servers under a chaos test: an embedded PostgreSQL (same data directory and
 * port, so the proxy's backend URL stays valid) and a redis-server of our own on a fixed port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { EmbeddedPg } from '../../src/demo/embedded.js';
import { spawnPostmaster, stopPostmaster, type Postmaster } from '../../src/demo/embedded-process.js';
import { postgresRunAs } from '../../src/demo/embedded-os.js';
import { unwatchChild, watchChild } from '../../src/demo/embedded-watchdog.js';
import { freePort, type Teardown } from './servers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `postmaster.opts`: the binary then each argument in double quotes. */
function postmasterCommand(dataDir: string): { binary: string; args: string[] } {
  const text = readFileSync(`${dataDir}/postmaster.opts`, 'utf8').trim();
  const binary = text.split(/\s+/)[0]!;
  const args = [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!);
  return { binary, args };
}

export interface KillablePg {
  readonly pg: EmbeddedPg;
  /** SIGKILL to the postmaster (its backends die with it), `downMs` down, then the same server again. */
  killAndRestart(downMs: number): Promise<void>;
  /** SIGKILL to the postmaster only (restart() brings the same server back). */
  kill(): void;
  restart(): Promise<void>;
}

export function killablePg(t: Teardown, pg: EmbeddedPg): KillablePg {
  let pid = pg.pid;
  let current: Postmaster | null = null;
  t.teardown(async () => {
    if (current) {
      await stopPostmaster(current);
      if (current.child.pid !== undefined) unwatchChild(current.child.pid);
    }
  });
  let args: { binary: string; args: string[] } | null = null;
  const k: KillablePg = {
    pg,
    kill() {
      args ??= postmasterCommand(pg.dataDir);
      process.kill(pid, 'SIGKILL');
      if (current?.child.pid !== undefined) unwatchChild(current.child.pid);
    },
    async restart() {
      const { binary, args: argv } = args ?? postmasterCommand(pg.dataDir);
      const who = await postgresRunAs();
      // Backends notice their postmaster's death and exit; until they have, the old shared memory is in use.
      for (let attempt = 1; ; attempt++) {
        try {
          current = await spawnPostmaster(binary, argv, who, 30_000);
          break;
        } catch (e) {
          if (attempt >= 50) throw e;
          await sleep(200);
        }
      }
      pid = current.child.pid!;
      watchChild(pid, 'QUIT');
    },
    async killAndRestart(downMs) {
      k.kill();
      await sleep(downMs);
      await k.restart();
    },
  };
  return k;
}

export interface KillableRedis {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
  kill9(): Promise<void>;
  start(): Promise<void>;
  signal(sig: NodeJS.Signals): void;
}

async function redisUp(port: number): Promise<void> {
  const net = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write('PING\r\n');
      });
      s.once('data', (d) => (s.destroy(), r(d.toString().startsWith('+PONG'))));
      s.once('error', () => r(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`redis-server did not come up on ${port}`);
}

export async function killableRedis(t: Teardown): Promise<KillableRedis> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const r: KillableRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? -1;
    },
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      if (child.pid !== undefined) watchChild(child.pid, 'KILL');
      await redisUp(port);
    },
    async kill9() {
      const c = child;
      if (!c) return;
      const gone = new Promise((res) => c.once('exit', res));
      c.kill('SIGKILL');
      await gone;
      if (c.pid !== undefined) unwatchChild(c.pid);
      child = null;
    },
    signal(sig) {
      child?.kill(sig);
    },
  };
  t.teardown(async () => {
    r.signal('SIGCONT');
    await r.kill9();
  });
  await r.start();
  return r;
}
