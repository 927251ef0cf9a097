/**
 * The replication state machine of shared/DESIGN.md. It is observed, not commanded: a monitor
 * (native logical replication or AWS DMS) maps what the replicator reports to an observation,
 * and this pure reducer turns the observation stream into states.
 */
import type { ReplicationConfig } from './control-config.js';

export const REPLICATION_STATES = [
  'NOT_STARTED',
  'FULL_LOAD_RUNNING',
  'FULL_LOAD_COMPLETE',
  'CDC_ACTIVE',
  'CDC_CAUGHT_UP',
  'REPLICATION_FAILED',
  // Stopped on purpose (ALTER SUBSCRIPTION … DISABLE: the rollback procedure, or `pg-cutover replicate pause`):
  // not lag, not a failure; forward steps wait until `pg-cutover replicate resume`.
  'PAUSED',
] as const;
export type ReplicationState = (typeof REPLICATION_STATES)[number];

/** What the replicator says it is doing (DMS task status, or pg_subscription_rel srsubstate i/d vs s/r). */
export type ReplicationPhase = 'not-started' | 'full-load' | 'full-load-complete' | 'cdc' | 'paused';

export interface ReplicationObservation {
  readonly phase: ReplicationPhase;
  /** Apply lag in seconds; null when it could not be measured this time. */
  readonly lagSeconds: number | null;
  /** The replicator reports an error (task failed, subscription worker erroring). */
  readonly error?: string;
  readonly now: number;
}

/** What the reducer remembers between observations. */
export interface ReplicationMemory {
  /** Since when the lag has been below caughtUpLagSeconds without a measured breach; null if not. */
  readonly lowLagSince: number | null;
}

export const INITIAL_REPLICATION_MEMORY: ReplicationMemory = { lowLagSince: null };

/** Transitions DESIGN.md names; the reducer reports others as `expected: false`, for an alert. */
export const REPLICATION_TRANSITIONS: readonly (readonly [ReplicationState, ReplicationState])[] = [
  ['NOT_STARTED', 'FULL_LOAD_RUNNING'],
  ['FULL_LOAD_RUNNING', 'FULL_LOAD_COMPLETE'],
  ['FULL_LOAD_COMPLETE', 'CDC_ACTIVE'],
  ['CDC_ACTIVE', 'CDC_CAUGHT_UP'],
  // Lag rose again (still under the failure threshold): no longer caught up.
  ['CDC_CAUGHT_UP', 'CDC_ACTIVE'],
  ...REPLICATION_STATES.filter((s) => s !== 'REPLICATION_FAILED').map((s) => [s, 'REPLICATION_FAILED'] as const),
  ['REPLICATION_FAILED', 'CDC_ACTIVE'],
  ...REPLICATION_STATES.filter((s) => s !== 'PAUSED').map((s) => [s, 'PAUSED'] as const),
  // Resumed: changes flow again, and the caught-up window starts afresh.
  ['PAUSED', 'CDC_ACTIVE'],
];

const ORDER: { readonly [S in ReplicationState]: number } = {
  NOT_STARTED: 0,
  FULL_LOAD_RUNNING: 1,
  FULL_LOAD_COMPLETE: 2,
  CDC_ACTIVE: 3,
  CDC_CAUGHT_UP: 4,
  REPLICATION_FAILED: -1,
  PAUSED: -1,
};

export interface ReplicationStep {
  readonly state: ReplicationState;
  readonly memory: ReplicationMemory;
  /** Set when the state changed. */
  readonly transition: {
    readonly from: ReplicationState;
    readonly to: ReplicationState;
    readonly reason: string;
    /**
     * False for a move DESIGN.md does not name, e.g. CDC_ACTIVE → FULL_LOAD_RUNNING (a reload).
     * A forward skip (the monitor missed a short phase, or started late) counts as expected.
     */
    readonly expected: boolean;
  } | null;
}

export function nextReplicationState(
  prev: ReplicationState,
  obs: ReplicationObservation,
  memory: ReplicationMemory,
  config: ReplicationConfig,
): ReplicationStep {
  const { state, memory: mem, reason } = observe(prev, obs, memory, config);
  if (state === prev) return { state, memory: mem, transition: null };
  const named = REPLICATION_TRANSITIONS.some(([a, b]) => a === prev && b === state);
  const forwardSkip = ORDER[prev] >= 0 && ORDER[state] >= 0 && ORDER[state] > ORDER[prev];
  return { state, memory: mem, transition: { from: prev, to: state, reason, expected: named || forwardSkip } };
}

function observe(
  prev: ReplicationState,
  obs: ReplicationObservation,
  memory: ReplicationMemory,
  c: ReplicationConfig,
): { state: ReplicationState; memory: ReplicationMemory; reason: string } {
  if (obs.error) return { state: 'REPLICATION_FAILED', memory: { lowLagSince: null }, reason: `replication error: ${obs.error}` };
  switch (obs.phase) {
    case 'not-started':
      return { state: 'NOT_STARTED', memory: { lowLagSince: null }, reason: 'replication not started' };
    case 'full-load':
      return { state: 'FULL_LOAD_RUNNING', memory: { lowLagSince: null }, reason: 'full load running' };
    case 'full-load-complete':
      return { state: 'FULL_LOAD_COMPLETE', memory: { lowLagSince: null }, reason: 'full load complete' };
    case 'cdc':
      if (prev === 'PAUSED') return { state: 'CDC_ACTIVE', memory: { lowLagSince: null }, reason: 'replication resumed' };
      return observeCdc(prev, obs, memory, c);
    case 'paused':
      return { state: 'PAUSED', memory: { lowLagSince: null }, reason: 'replication paused (subscription disabled): resume with pg-cutover replicate resume' };
    default: {
      const never: never = obs.phase;
      throw new Error(`unknown replication phase ${String(never)}`);
    }
  }
}

function observeCdc(
  prev: ReplicationState,
  obs: ReplicationObservation,
  memory: ReplicationMemory,
  c: ReplicationConfig,
): { state: ReplicationState; memory: ReplicationMemory; reason: string } {
  const lag = obs.lagSeconds;
  if (lag !== null && lag > c.failLagSeconds) {
    return { state: 'REPLICATION_FAILED', memory: { lowLagSince: null }, reason: `lag ${lag}s > ${c.failLagSeconds}s` };
  }
  // Recovering from a failure always lands in CDC_ACTIVE first: the caught-up hour starts afresh.
  if (prev === 'REPLICATION_FAILED') {
    const since = lag !== null && lag < c.caughtUpLagSeconds ? obs.now : null;
    return { state: 'CDC_ACTIVE', memory: { lowLagSince: since }, reason: `resolved: replicating, lag ${lag ?? 'unknown'}s` };
  }
  // An unmeasured sample neither breaks nor proves the streak; promotion needs a measured low lag.
  let since = memory.lowLagSince;
  if (lag !== null) since = lag < c.caughtUpLagSeconds ? (since ?? obs.now) : null;
  if (lag !== null && since !== null && obs.now - since >= c.caughtUpForMs) {
    return { state: 'CDC_CAUGHT_UP', memory: { lowLagSince: since }, reason: `lag < ${c.caughtUpLagSeconds}s for ${Math.round((obs.now - since) / 1000)}s` };
  }
  const why = prev === 'CDC_CAUGHT_UP' && lag !== null ? `lag ${lag}s ≥ ${c.caughtUpLagSeconds}s` : 'change data capture running';
  // A caught-up replica with an unmeasured sample stays caught up until a measurement says otherwise.
  if (prev === 'CDC_CAUGHT_UP' && lag === null) return { state: prev, memory: { lowLagSince: since }, reason: 'lag unknown' };
  return { state: 'CDC_ACTIVE', memory: { lowLagSince: since }, reason: why };
}
