// Memory per idle client connection: open N real client connections (startup
// + authentication through node-postgres) and read the proxy's resident set
// size before and after.
import { readFileSync, readdirSync } from 'node:fs';
import pg from 'pg';
import type { Endpoint } from './pgbench.js';

/** VmRSS of one process in KB, or 0 when it is gone. */
export function rssKB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** PIDs of a process and all its descendants (a proxy may fork workers). */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    let tasks: string[] = [];
    try { tasks = readdirSync(`/proc/${p}/task`); } catch { continue; }
    for (const t of tasks) {
      try {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        if (kids) out.push(...kids.split(/\s+/).map(Number));
      } catch { /* task exited */ }
    }
  }
  return out;
}

export const treeRssKB = (pid: number): number => processTree(pid).reduce((s, p) => s + rssKB(p), 0);

export interface IdleMemoryResult {
  requested: number;
  opened: number;
  failed: number;
  firstError?: string;
  rssBeforeKB: number;
  rssAfterKB: number;
  perConnKB: number;
}

export interface IdleMemoryOptions {
  pid: number;
  endpoint: Endpoint;
  count: number;
  /** Connections opened at once; small so authentication does not time out. */
  concurrency?: number;
  /** Connections opened and closed before the baseline, so one-off costs (code loaded and compiled on first use) are not counted per connection. */
  warmup?: number;
  settleMs?: number;
}

/** Median of a few readings: a garbage-collected process's RSS moves between samples. */
async function steadyRssKB(pid: number, settleMs: number): Promise<number> {
  await new Promise((r) => setTimeout(r, settleMs));
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    samples.push(treeRssKB(pid));
    await new Promise((r) => setTimeout(r, 200));
  }
  return samples.sort((a, b) => a - b)[2]!;
}

export async function measureIdleMemory(o: IdleMemoryOptions): Promise<IdleMemoryResult> {
  const settleMs = o.settleMs ?? 1500;
  const warm = await openClients(o, o.warmup ?? 20);
  await Promise.all(warm.clients.map((c) => c.end().catch(() => undefined)));
  const rssBeforeKB = await steadyRssKB(o.pid, settleMs);
  const { clients, failed, firstError } = await openClients(o, o.count);
  try {
    const rssAfterKB = await steadyRssKB(o.pid, settleMs);
    const opened = clients.length;
    return {
      requested: o.count,
      opened,
      failed,
      ...(firstError !== undefined ? { firstError } : {}),
      rssBeforeKB,
      rssAfterKB,
      perConnKB: opened > 0 ? (rssAfterKB - rssBeforeKB) / opened : NaN,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }
}

async function openClients(o: IdleMemoryOptions, count: number): Promise<{ clients: pg.Client[]; failed: number; firstError?: string }> {
  const clients: pg.Client[] = [];
  let failed = 0;
  let firstError: string | undefined;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const c = new pg.Client({
        host: o.endpoint.host,
        port: o.endpoint.port,
        user: o.endpoint.user,
        password: o.endpoint.password,
        database: o.endpoint.database,
        connectionTimeoutMillis: 20_000,
      });
      c.on('error', () => undefined);
      try {
        await c.connect();
        clients.push(c);
      } catch (err) {
        failed++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 16 }, worker));
  return { clients, failed, ...(firstError !== undefined ? { firstError } : {}) };
}
