/**
 * Is each backend reachable? One control session per backend (replication/control-server.ts) runs `select 1`
 * at start and then every interval; a lost session reconnects on the next round, a failed connect is tried
 * again each round (the interval is the backoff). /healthz reads the last answer.
 * Without this, /healthz said ok with both backends down: nothing looked until a client came.
 */
import { log } from '../support/log.js';
import { controlServer } from '../replication/control-server.js';
import type { ControlSession } from '../replication/control-session.js';
import { ROLES, type Role } from '../domain/role.js';

export interface ProbeStatus {
  /** null until the first round has answered. */
  readonly ok: boolean | null;
  /** Epoch ms of the last answer. */
  readonly at: number | null;
  readonly error?: string;
}

export interface BackendProbeOptions {
  name: Role;
  url: string;
  intervalMs: number;
  /** Bound on connect and on the query. */
  timeoutMs: number;
  now?: () => number;
}

export class BackendProbe {
  // A control session: fencing leaves it alone, so a fenced database is not reported unreachable.
  private readonly session: ControlSession;
  private last: ProbeStatus = { ok: null, at: null };
  private running: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly o: BackendProbeOptions) {
    const bound = { connectTimeoutMs: o.timeoutMs, queryTimeoutMs: o.timeoutMs, minBackoffMs: 0, maxBackoffMs: 0 };
    this.session = controlServer(o.url, o.name).session('health', { ...bound, ...(o.now ? { now: o.now } : {}) });
    this.timer = setInterval(() => void this.probe(), o.intervalMs);
    this.timer.unref();
    void this.probe();
  }

  status(): ProbeStatus {
    return this.last;
  }

  /** One round now (a round already running is joined, not doubled). */
  probe(): Promise<void> {
    this.running ??= this.round().finally(() => (this.running = null));
    return this.running;
  }

  private async round(): Promise<void> {
    const now = this.o.now ?? Date.now;
    const r = await this.session.ask('select 1');
    if (r.ok) {
      if (this.last.ok === false) log.info({ backend: this.o.name }, 'backend reachable again');
      this.last = { ok: true, at: now() };
    } else {
      if (this.last.ok !== false) log.warn({ backend: this.o.name, err: r.error.message, kind: r.error.kind }, 'backend unreachable');
      this.last = { ok: false, at: now(), error: r.error.message };
    }
    if (this.closed) await this.session.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.session.close();
  }
}

export interface HealthInputs {
  store: { degraded: boolean; reason?: string };
  backends: Partial<Record<Role, ProbeStatus>>;
  /** The replication runtime's status (its `state`), null when nothing watches replication. */
  replication: { state?: unknown; replicationError?: unknown } | null;
}

/** ok, or degraded with one reason per problem: a backend unreachable, replication failed, the store lost. */
export function healthVerdict(h: HealthInputs): { status: 'ok' | 'degraded'; reasons: string[] } {
  const reasons: string[] = [];
  for (const name of ROLES) {
    const b = h.backends[name];
    if (b === undefined) continue;
    if (b.ok === false) reasons.push(`${name} unreachable: ${b.error ?? 'no answer'}`);
    else if (b.ok === null) reasons.push(`${name} not probed yet`);
  }
  if (h.replication?.state === 'REPLICATION_FAILED') {
    reasons.push(`replication failed${typeof h.replication.replicationError === 'string' ? `: ${h.replication.replicationError}` : ''}`);
  }
  if (h.store.degraded) reasons.push(`shared store unreachable: ${h.store.reason ?? 'no contact'}`);
  return { status: reasons.length === 0 ? 'ok' : 'degraded', reasons };
}
