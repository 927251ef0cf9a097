/**
 * The admin API's routes (DESIGN.md, Interfaces): health, state, guarded transitions, rollback, gates,
 * audit, metrics, shadow mismatches. Bad input gets a 4xx with a JSON reason and changes nothing.
 */
import type { Registry } from 'prom-client';
import type { Route, Reply } from './admin-api.js';
import type { Controller } from './controller.js';
import type { ProxyServer } from '../proxy/server.js';
import type { Shadower } from '../shadow/shadower.js';
import type { UnleashBinding } from './unleash.js';
import type { StateStore } from './store.js';
import type { TransitionOutcome } from './transition.js';
import { parseState } from '../domain/states.js';
import { BREAKER_NAMES, type BreakerName } from '../domain/breaker.js';
import { shadowSummary } from '../shadow/summary.js';
import { healthVerdict, type ProbeStatus } from './backend-probe.js';
import { STATE_MEANING, type StateMeaning } from '../domain/guarantees.js';
import type { Role } from '../domain/role.js';
import type { AuditReply, BreakerResetReply, GateReport, HealthReply, MismatchPage, RefusalReply, StateReply, TransitionReply } from './admin-dto.js';

export interface AdminDeps {
  controller: Controller;
  proxy: ProxyServer;
  registry: Registry;
  store: StateStore;
  shadower(): Shadower | null;
  /** The last write shadower, kept after SHADOW_WRITES ended so its mismatches stay readable (evidence). */
  lastWriteShadower?(): Shadower | null;
  unleash(): UnleashBinding | null;
  /** Replication runtime status (state, lag, heartbeat, slots); absent without --subscription/--dms-task-arn. */
  replication?(): Record<string, unknown> | null;
  /** Last probe answer per backend; absent: not probed (tests without observers). */
  backends?(): Partial<Record<Role, ProbeStatus>>;
  /** What the state guarantees and what is left, with Phase 4 progress (src/project); default the static table. */
  meaning?(): StateMeaning;
}

const STATUS: Record<string, number> = {
  'unknown-state': 400,
  'reason-required': 400,
  invalid: 400,
  'illegal-transition': 409,
  'already-in-state': 409,
  'guard-failed': 409,
  conflict: 409,
  unavailable: 503,
};

function outcome(o: TransitionOutcome): Reply {
  if (o.ok) return { status: 200, body: { ...o.next, from: o.from.state, forced: o.forced, local: o.local } satisfies TransitionReply };
  return { status: STATUS[o.code] ?? 409, body: { error: o.reason, code: o.code, reason: o.reason, state: o.current.state, guards: o.guards ?? [] } satisfies RefusalReply };
}

const str = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/**
 * The audit's `by`: the credential's identity, never the body's word. A body's `note` (or a legacy `by`)
 * is kept, labelled as what the caller said, cut to 200 characters.
 */
export function auditActor(actor: string, body: { note?: unknown; by?: unknown }): string {
  const said = str(body.note) ? body.note : str(body.by) ? body.by : null;
  return `operator:${actor}${said === null ? '' : ` (note: ${said.slice(0, 200)})`}`;
}

const gateNumber = (raw: string): 1 | 2 | 3 | null => (raw === '1' || raw === '2' || raw === '3' ? (Number(raw) as 1 | 2 | 3) : null);
const noGate = (raw: string): Reply => ({ status: 400, body: { error: `no gate ${JSON.stringify(raw)}: gates are 1, 2 and 3` } });

export function adminRoutes(d: AdminDeps): Route[] {
  const stateBody = () => {
    const s = d.controller.snapshot();
    const p = d.controller.policy();
    return { ...s, appliedAt: d.controller.appliedAt(), effectiveReadPercent: p.readPercent, writesTo: p.writesTo, shadow: p.shadow, degraded: d.controller.health().degraded, ...(d.meaning?.() ?? STATE_MEANING[s.state]) } satisfies StateReply;
  };
  /** The last full report of each gate run here (POST /gates/:n); GET /gates/:n reads it and runs nothing. */
  const lastGate: Partial<Record<1 | 2 | 3, GateReport>> = {};
  return [
    {
      method: 'GET',
      path: '/healthz',
      handler: () => {
        const h = d.controller.health();
        const u = d.unleash();
        const replication = d.replication?.() ?? null;
        const backends = d.backends?.() ?? {};
        const v = healthVerdict({ store: h.store, backends, replication });
        // 503 when degraded: load balancers and orchestrators read the status code, not the body.
        return {
          status: v.status === 'ok' ? 200 : 503,
          body: {
            status: v.status,
            reasons: v.reasons,
            backends,
            state: d.controller.snapshot().state,
            clients: d.proxy.clientCount,
            store: h.store,
            unleash: u ? { healthy: u.healthy() } : null,
            breakers: h.breakers.map((b) => ({ name: b.name, status: b.status, value: b.value, threshold: b.threshold })),
            replication,
          } satisfies HealthReply,
        };
      },
    },
    { method: 'GET', path: '/state', handler: () => ({ status: 200, body: stateBody() }) },
    {
      method: 'POST',
      path: '/transition',
      mutates: true,
      handler: async ({ body, actor }) => {
        const b = body as { to?: unknown; reason?: unknown; force?: unknown; by?: unknown; note?: unknown };
        if (!str(b.to)) return { status: 400, body: { error: 'body must be {"to": STATE, "reason"?: string, "force"?: boolean}' } };
        const to = parseState(b.to);
        if (!to.ok) return { status: 400, body: { error: to.reason, code: to.code } };
        if (b.reason !== undefined && typeof b.reason !== 'string') return { status: 400, body: { error: '"reason" must be a string' } };
        if (b.force !== undefined && typeof b.force !== 'boolean') return { status: 400, body: { error: '"force" must be true or false' } };
        return outcome(await d.controller.transition({ to: to.state, reason: b.reason, force: b.force === true, by: auditActor(actor, b) }));
      },
    },
    {
      method: 'POST',
      path: '/rollback',
      mutates: true,
      handler: async ({ body, actor }) => {
        const b = body as { reason?: unknown; by?: unknown; note?: unknown };
        if (!str(b.reason)) return { status: 400, body: { error: 'a rollback needs {"reason": "..."}' } };
        return outcome(await d.controller.rollback(b.reason, auditActor(actor, b)));
      },
    },
    {
      method: 'POST',
      path: '/breakers/:name/reset',
      mutates: true,
      handler: async ({ params, body, actor }) => {
        const name = params.name as BreakerName;
        if (!BREAKER_NAMES.includes(name)) return { status: 400, body: { error: `no breaker ${JSON.stringify(params.name)}; breakers: ${BREAKER_NAMES.join(', ')}` } };
        // The error-rate breaker latches after a rollback until an operator has understood the cause.
        const was = d.controller.breakers.isOpen(name) ? 'open' : 'closed';
        d.controller.breakers.reset(name);
        const b = (body ?? {}) as { reason?: unknown; note?: unknown; by?: unknown };
        const reason = str(b.reason) ? b.reason.slice(0, 500) : 'reset by an operator';
        await d.store.appendAudit({ at: Date.now(), by: auditActor(actor, b), kind: 'breaker', reason: `${name} reset: ${reason}`, detail: { name, was } });
        return { status: 200, body: { reset: name, was } satisfies BreakerResetReply };
      },
    },
    {
      // Running a gate costs (gate 2 checksums both databases) and sets what the guards read: POST only.
      method: 'POST',
      path: '/gates/:n',
      mutates: true,
      handler: async ({ params }) => {
        const n = gateNumber(params.n);
        if (n === null) return noGate(params.n);
        const report = await d.controller.gate(n);
        lastGate[n] = report;
        return { status: 200, body: report };
      },
    },
    {
      method: 'GET',
      path: '/gates/:n',
      handler: ({ params }) => {
        const n = gateNumber(params.n);
        if (n === null) return noGate(params.n);
        const last = lastGate[n];
        if (last === undefined) return { status: 404, body: { error: `gate ${n} has not been run on this sidecar; POST /gates/${n} runs it` } };
        return { status: 200, body: last };
      },
    },
    {
      method: 'GET',
      path: '/audit',
      handler: async ({ query }) => {
        const limit = Math.min(10_000, Math.max(1, Number(query.get('limit') ?? 100) || 100));
        try {
          return { status: 200, body: { entries: await d.store.audit(limit) } satisfies AuditReply };
        } catch (e) {
          return { status: 503, body: { error: `audit log unavailable: ${(e as Error).message}` } };
        }
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async () => ({ status: 200, body: await d.registry.metrics(), contentType: d.registry.contentType }),
    },
    {
      method: 'GET',
      path: '/clients',
      handler: ({ query }) => {
        const limit = Math.min(10_000, Math.max(1, Number(query.get('limit') ?? 1000) || 1000));
        return { status: 200, body: { total: d.proxy.clientCount, holdingWrites: d.proxy.holding(), clients: d.proxy.describeSessions(limit) } };
      },
    },
    {
      method: 'GET',
      path: '/shadow/mismatches',
      handler: ({ query }) => {
        const offset = Math.max(0, Number(query.get('offset') ?? 0) || 0);
        const limit = Math.min(1000, Math.max(1, Number(query.get('limit') ?? 100) || 100));
        const live = d.shadower();
        const sh = live ?? d.lastWriteShadower?.() ?? null;
        if (sh === null) return { status: 200, body: { active: false, total: 0, offset, limit, items: [] } satisfies MismatchPage };
        return { status: 200, body: { active: live !== null, stats: shadowSummary(sh), offset, limit, ...sh.mismatches(offset, limit) } satisfies MismatchPage };
      },
    },
  ];
}
