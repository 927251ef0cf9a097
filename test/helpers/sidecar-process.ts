/**
 * `pg-cutover start` as a real child process (for signals: SIGHUP, kill -9), from the current TypeScript
 * sources transpiled once into a temp dir (a stale dist/ cannot make a test pass or fail).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { freePort, type Teardown } from './servers.js';
import { unwatchChild, watchChild } from '../../src/demo/embedded-watchdog.js';
import { COMPILED_ROOT, REPO_ROOT } from './repo.js';

const ROOT = REPO_ROOT;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let transpiled: Promise<string> | null = null;

/** Every .ts file of src/ transpiled to ESM in a temp dir (no type check: `tsc --noEmit` does that); returns the CLI entry. */
export function transpileCli(t: Teardown): Promise<string> {
  transpiled ??= (async () => {
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'pg-cutover-cli-'));
    t.teardown(() => fs.rm(out, { recursive: true, force: true }));
    if (COMPILED_ROOT) {
      // `npm test` compiled src/ with the tests (dist-test/src): the same sources, nothing to transpile.
      const bin = path.join(out, 'pg-cutover.mjs');
      const entry = pathToFileURL(path.join(COMPILED_ROOT, 'src', 'cli', 'index.js')).href;
      await fs.writeFile(bin, `import { main } from ${JSON.stringify(entry)};\nawait main(process.argv);\n`);
      return bin;
    }
    await fs.writeFile(path.join(out, 'package.json'), '{"type":"module"}\n');
    await fs.symlink(path.join(ROOT, 'node_modules'), path.join(out, 'node_modules'));
    const src = path.join(ROOT, 'src');
    for (const f of await fs.readdir(src, { recursive: true })) {
      if (!f.endsWith('.ts')) continue;
      const js = ts.transpileModule(await fs.readFile(path.join(src, f), 'utf8'), {
        fileName: f,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      }).outputText;
      const dest = path.join(out, 'src', f.replace(/\.ts$/, '.js'));
      await fs.mkdir(path.dirname(dest), { recursive: true });
      await fs.writeFile(dest, js);
    }
    const bin = path.join(out, 'pg-cutover.js');
    await fs.writeFile(bin, "import { main } from './src/cli/index.js';\nawait main(process.argv);\n");
    return bin;
  })();
  return transpiled;
}

export interface SidecarProcess {
  id: string;
  proc: ChildProcess;
  listenPort: number;
  adminPort: number;
  admin: string;
  /** The last 64 kB of its stderr (JSON log lines). */
  log(): string;
  exited: Promise<number | null>;
  alive(): boolean;
}

export interface SpawnOptions {
  /** Resolve only once GET /healthz says 200 (both backends probed, store reachable); default: any answer. */
  readonly healthy?: boolean;
}

/** Starts `pg-cutover start` on free ports; resolves when its admin API answers (any status, or 200 with `healthy`). */
export async function spawnSidecar(t: Teardown, bin: string, id: string, args: string[], env: NodeJS.ProcessEnv = {}, opts: SpawnOptions = {}): Promise<SidecarProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(t, bin, id, args, env, opts);
    } catch (e) {
      // A free port can be taken by someone else before the child binds it: try other ports.
      if (attempt >= 3 || !/EADDRINUSE/.test((e as Error).message)) throw e;
    }
  }
}

async function spawnOnce(t: Teardown, bin: string, id: string, args: string[], env: NodeJS.ProcessEnv, opts: SpawnOptions): Promise<SidecarProcess> {
  const [listen, admin] = [await freePort(), await freePort()];
  const proc = spawn(process.execPath, [bin, 'start', '--listen', `127.0.0.1:${listen}`, '--admin', `127.0.0.1:${admin}`, '--sidecar-id', id, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, PGCUTOVER_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let tail = '';
  proc.stderr!.on('data', (b: Buffer) => (tail = (tail + b.toString()).slice(-64_000)));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  if (proc.pid !== undefined) watchChild(proc.pid, 'KILL');
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    if (proc.pid !== undefined) unwatchChild(proc.pid);
  });
  const c: SidecarProcess = {
    id,
    proc,
    listenPort: listen,
    adminPort: admin,
    admin: `http://127.0.0.1:${admin}`,
    log: () => tail,
    exited,
    alive: () => proc.exitCode === null && proc.signalCode === null,
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (!c.alive()) throw new Error(`sidecar ${id} exited with ${proc.exitCode ?? proc.signalCode}:\n${tail}`);
    if (Date.now() > deadline) throw new Error(`sidecar ${id} did not answer /healthz${opts.healthy ? ' with 200' : ''} within 30 s:\n${tail}`);
    const up = await fetch(`${c.admin}/healthz`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok || !opts.healthy, () => false);
    if (up) return c;
    await sleep(100);
  }
}
