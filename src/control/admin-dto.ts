/**
 * The admin API's reply bodies as types: the routes (admin-routes.ts) build them with `satisfies`, and the CLI
 * (src/cli/admin-client.ts) reads them with the same names, so neither side guesses a field. Types only: the
 * CLI imports nothing at run time from here.
 */
import type { CutoverSnapshot, GuardResult } from '../domain/cutover-machine.js';
import type { CutoverState } from '../domain/states.js';
import type { StateMeaning } from '../domain/guarantees.js';
import type { AuditEntry } from '../domain/audit.js';
import type { Role } from '../domain/role.js';
import type { MismatchRecord } from '../shadow/stats.js';
import type { ShadowSummary } from '../shadow/summary.js';
import type { ProbeStatus } from './backend-probe.js';

export type { GateReport } from '../domain/gate-result.js';
export type { AuditEntry } from '../domain/audit.js';
export type { MismatchRecord } from '../shadow/stats.js';

/** GET /state: the committed snapshot, what this sidecar routes by, and what the state guarantees. */
export interface StateReply extends CutoverSnapshot, StateMeaning {
  /** When this sidecar started routing by this snapshot (epoch ms). */
  readonly appliedAt: number;
  /** Reads to the target this sidecar applies now (the ramp in ROLLBACK), 0..100. */
  readonly effectiveReadPercent: number;
  readonly writesTo: Role;
  readonly shadow: boolean;
  readonly degraded: boolean;
}

/** POST /transition and POST /rollback, accepted: the new snapshot. */
export interface TransitionReply extends CutoverSnapshot {
  readonly from: CutoverState;
  readonly forced: boolean;
  /** Applied by this sidecar only (the store was unreachable). */
  readonly local: boolean;
}

/** Any 4xx: `error` always; a refused transition adds its code, the state and each guard's verdict. */
export interface RefusalReply {
  readonly error: string;
  readonly code?: string;
  readonly reason?: string;
  readonly state?: CutoverState;
  readonly guards?: readonly GuardResult[];
}

/** One breaker as GET /healthz shows it. */
export interface BreakerRow {
  readonly name: string;
  readonly status: string;
  readonly value: number | null;
  readonly threshold: number;
}

/** POST /breakers/:name/reset: the breaker closed, and what it was before. */
export interface BreakerResetReply {
  readonly reset: string;
  readonly was: 'open' | 'closed';
}

/** GET /healthz (200 ok, 503 degraded: the same body). */
export interface HealthReply {
  readonly status: 'ok' | 'degraded';
  readonly reasons: readonly string[];
  readonly backends: Partial<Record<Role, ProbeStatus>>;
  readonly state: CutoverState;
  readonly clients: number;
  readonly store: unknown;
  readonly unleash: { readonly healthy: boolean } | null;
  readonly breakers: readonly BreakerRow[];
  readonly replication: {
    readonly mode?: string;
    readonly state?: string;
    readonly lagSeconds?: number | null;
    readonly replicationError?: string | null;
    readonly [k: string]: unknown;
  } | null;
}

/** GET /audit, newest last. */
export interface AuditReply {
  readonly entries: readonly AuditEntry[];
}

/** GET /shadow/mismatches: newest first; `stats` while a shadower exists. */
export interface MismatchPage {
  readonly active: boolean;
  readonly stats?: ShadowSummary;
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly items: readonly MismatchRecord[];
}
