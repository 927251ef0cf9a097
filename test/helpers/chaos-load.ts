/**
 * Load with an acknowledged-write ledger for the chaos suite: workers write (autocommit INSERT of a unique
 * id) and read through the proxies, reconnecting on any error; an id counts as acknowledged only when
 * its INSERT returned success. Afterwards every acknowledged id must be in the writer database. Also
 * samples what the sidecars said about themselves (/healthz) and their RSS and open file descriptors.
 */
import { readFileSync, readdirSync } from 'node:fs';
import pg from 'pg';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const LEDGER_DDL = 'create table if not exists chaos_ledger (id bigint primary key, worker int not null, at timestamptz not null default now())';

/** An error as a short, stable kind: SQLSTATE and message with numbers masked. */
export function errorKind(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const msg = String(err?.message ?? e).replace(/\d+/g, 'N').replace(/\s+/g, ' ').slice(0, 70);
  return err?.code && /^[0-9A-Z]{5}$/.test(err.code) ? `${err.code} ${msg}` : msg;
}

export interface LoadOptions {
  /** postgres:// URLs of the proxies; a worker moves to the next one after a failure. */
  urls: () => string[];
  workers: number;
  /** Every n-th operation is a read. */
  readEvery?: number;
  /** Client-side bound per query: a query stuck behind a half-open link fails instead of hanging. */
  queryTimeoutMs?: number;
  /** First id of this load (ids are unique across loads in one database). */
  idBase?: number;
}

export class Load {
  readonly acked: number[] = [];
  /** Writes that failed after being sent: they may or may not have committed. */
  uncertain = 0;
  writesOk = 0;
  readsOk = 0;
  readonly errors = new Map<string, number>();
  private stopping = false;
  private readonly running: Promise<void>[] = [];

  constructor(private readonly o: LoadOptions) {}

  start(): this {
    for (let w = 0; w < this.o.workers; w++) this.running.push(this.worker(w));
    return this;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
  }

  /** Resets the counters (not the ledger) between phases. */
  snapshot(): { writesOk: number; readsOk: number; uncertain: number; errors: Record<string, number> } {
    return { writesOk: this.writesOk, readsOk: this.readsOk, uncertain: this.uncertain, errors: Object.fromEntries(this.errors) };
  }

  private async worker(w: number): Promise<void> {
    let seq = 0;
    let at = w;
    let client: pg.Client | null = null;
    const base = (this.o.idBase ?? 0) + w * 10_000_000;
    while (!this.stopping) {
      try {
        if (client === null) {
          const urls = this.o.urls();
          const c = new pg.Client({ connectionString: urls[at % urls.length], query_timeout: this.o.queryTimeoutMs ?? 5000, connectionTimeoutMillis: this.o.queryTimeoutMs ?? 5000 });
          c.on('error', () => undefined);
          client = c;
          await c.connect();
        }
        seq++;
        if (seq % (this.o.readEvery ?? 3) === 0) {
          await client.query('select count(*) from chaos_ledger where worker = $1', [w]);
          this.readsOk++;
        } else {
          const id = base + seq;
          try {
            await client.query('insert into chaos_ledger (id, worker) values ($1, $2)', [id, w]);
          } catch (e) {
            this.uncertain++;
            throw e;
          }
          this.acked.push(id);
          this.writesOk++;
        }
      } catch (e) {
        const k = errorKind(e);
        this.errors.set(k, (this.errors.get(k) ?? 0) + 1);
        const c = client;
        client = null;
        void c?.end().catch(() => undefined);
        at++;
        await sleep(50);
      }
    }
    await client?.end().catch(() => undefined);
  }
}

/** Acknowledged ids missing from the writer database. */
export async function lostWrites(writerUrl: string, acked: readonly number[]): Promise<{ acked: number; found: number; lost: number; lostIds: number[] }> {
  const c = new pg.Client({ connectionString: writerUrl });
  await c.connect();
  try {
    const r = await c.query<{ id: string }>('select id from chaos_ledger where id = any($1::bigint[])', [acked]);
    const found = new Set(r.rows.map((x) => Number(x.id)));
    const lostIds = acked.filter((id) => !found.has(id));
    return { acked: acked.length, found: found.size, lost: lostIds.length, lostIds: lostIds.slice(0, 20) };
  } finally {
    await c.end();
  }
}

export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

export function openFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

export interface HealthLog {
  degraded: Set<string>;
  breakers: Set<string>;
  states: Set<string>;
  unanswered: number;
}

/** Polls each admin URL's /healthz until stopped: reasons given, breakers not closed, states seen. */
export function watchHealth(admins: () => string[], everyMs = 250): { log: HealthLog; stop(): Promise<void> } {
  const log: HealthLog = { degraded: new Set(), breakers: new Set(), states: new Set(), unanswered: 0 };
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await Promise.all(
        admins().map(async (a) => {
          try {
            const r = await fetch(`${a}/healthz`, { signal: AbortSignal.timeout(2000) });
            const b = (await r.json()) as { status: string; reasons?: string[]; state: string; breakers?: { name: string; status: string }[] };
            log.states.add(b.state);
            for (const x of b.reasons ?? []) log.degraded.add(x.replace(/\d+/g, 'N').slice(0, 80));
            for (const br of b.breakers ?? []) if (br.status !== 'closed') log.breakers.add(`${br.name} ${br.status}`);
          } catch {
            log.unanswered++;
          }
        }),
      );
      await sleep(everyMs);
    }
  })();
  return {
    log,
    stop: async () => {
      stopped = true;
      await loop;
    },
  };
}
