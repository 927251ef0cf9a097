import { spawn } from 'node:child_process';
import { appendFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Kills our child servers if this Node process dies without cleaning up: SIGKILL, an OOM kill, or a
 * signal whose handler never reaches process 'exit' (a test runner's timeout). A detached shell,
 * started once per process, polls our pid once a second; when we are gone it signals every child
 * still listed in the registry file and removes their directories. It costs one sleeping `sh`.
 */
const SCRIPT = `
f="$1"; p="$2"
while kill -0 "$p" 2>/dev/null; do sleep 1; done
[ -f "$f" ] || exit 0
while read -r sig pid dir; do kill -"$sig" "$pid" 2>/dev/null; done < "$f"
sleep 2
while read -r sig pid dir; do kill -KILL "$pid" 2>/dev/null; [ -n "$dir" ] && rm -rf "$dir"; done < "$f"
rm -f "$f"
`;

interface Entry {
  signal: 'QUIT' | 'TERM' | 'KILL';
  dir: string;
}

const entries = new Map<number, Entry>();
let registry: string | undefined;

function registryFile(): string {
  if (registry) return registry;
  registry = path.join(os.tmpdir(), `pg-cutover-watch-${process.pid}`);
  writeFileSync(registry, '');
  const dog = spawn('sh', ['-c', SCRIPT, 'pg-cutover-watchdog', registry, String(process.pid)], {
    detached: true, // own session: survives a kill of our process group
    stdio: 'ignore',
  });
  dog.on('error', () => undefined); // no sh: lose only this safety net
  dog.unref();
  process.on('exit', () => {
    if (entries.size === 0 && registry) rmSync(registry, { force: true });
  });
  return registry;
}

/**
 * Registers a child server to be signalled (and `dir` removed) if we die. `signal`: QUIT for
 * PostgreSQL (immediate shutdown), TERM or KILL for others.
 */
export function watchChild(pid: number, signal: Entry['signal'], dir = ''): void {
  entries.set(pid, { signal, dir });
  appendFileSync(registryFile(), `${signal} ${pid} ${dir}\n`);
}

/** Drops a child that was stopped normally, so a recycled pid is never signalled. */
export function unwatchChild(pid: number): void {
  if (!entries.delete(pid) || !registry) return;
  writeFileSync(registry, [...entries].map(([p, e]) => `${e.signal} ${p} ${e.dir}\n`).join(''));
}
