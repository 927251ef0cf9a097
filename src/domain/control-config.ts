/**
 * Tunables of the control plane with DESIGN.md's defaults. Every duration is in milliseconds and
 * can be scaled down for demos and tests with `scaleControlConfig` (time scale, not thresholds).
 */
import type { CutoverState } from './states.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export interface CutoverConfig {
  /**
   * Minimum time spent in a state before advancing out of it, keyed by the state being left.
   * Defaults (DESIGN.md): READS_10PCT 24h, READS_50PCT 48h, READS_100PCT 72h, SHADOW_WRITES 0
   * (its guard is gate 3's shadow validation), WRITES_TO_AURORA 24h, SOURCE_READ_ONLY 7d.
   * SOURCE_PRIMARY 0 (its guard is gate 2).
   */
  readonly minStableForMs: { readonly [S in CutoverState]: number };
  /** How long reads take to move back to the source in ROLLBACK. Default 1h. */
  readonly rollbackReadRampMs: number;
  /** A gate pass older than this no longer satisfies a guard. Default 24h. */
  readonly gateMaxAgeMs: number;
}

export const DEFAULT_CUTOVER_CONFIG: CutoverConfig = {
  minStableForMs: {
    SOURCE_PRIMARY: 0,
    READS_10PCT_AURORA: 24 * HOUR,
    READS_50PCT_AURORA: 48 * HOUR,
    READS_100PCT_AURORA: 72 * HOUR,
    SHADOW_WRITES: 0,
    WRITES_TO_AURORA: 24 * HOUR,
    SOURCE_READ_ONLY: 7 * DAY,
    CUTOVER_COMPLETE: 0,
    ROLLBACK: 0,
  },
  rollbackReadRampMs: HOUR,
  gateMaxAgeMs: DAY,
};

export interface ErrorRateBreakerConfig {
  /** Target-fault rate that trips when held for `holdMs`. Default 0.01 (1%). */
  readonly threshold: number;
  /** Default 5 min. */
  readonly holdMs: number;
  /** Trips when the rate exceeds baseline + this many points (fraction) for `spikeHoldMs`. Default 0.05. */
  readonly baselineDelta: number;
  /** Default 60s: the spike rule needs one full rate window, not five minutes. */
  readonly spikeHoldMs: number;
  /** Window over which the current rate is measured. Default 60s (60 buckets). */
  readonly windowMs: number;
  /** Fewer target queries than this in the window: no verdict (condition false). Default 50. */
  readonly minSamples: number;
  /**
   * Fixed baseline rate (fraction). Default null: learned as the source's rate of the same error
   * classes over `baselineWindowMs`, so the target is compared with what the source gives.
   */
  readonly baselineRate: number | null;
  /** Default 1h (60 buckets). */
  readonly baselineWindowMs: number;
}

export interface GaugeBreakerConfig {
  /** Condition is `value > threshold`. */
  readonly threshold: number;
  /** How long the condition must hold before the breaker opens. */
  readonly holdMs: number;
  /** How long the condition must be clear before the breaker closes again. */
  readonly closeAfterMs: number;
}

export interface BreakerConfig {
  /** Application errors through the proxy, target-attributed only. Action: rollback (latched). */
  readonly errorRate: ErrorRateBreakerConfig;
  /** Replication lag in seconds; default > 60 for 5 min, closes after 60s clear. Action: pause-forward. */
  readonly replicationLag: GaugeBreakerConfig;
  /** Target CPUUtilization percent; default > 80 for 10 min, closes after 60s clear. Action: scale-hook. */
  readonly targetCpu: GaugeBreakerConfig;
  /** Replication task error; opens at once, closes `closeAfterMs` after the error clears (default 0). */
  readonly replicationError: { readonly closeAfterMs: number };
}

export const DEFAULT_BREAKER_CONFIG: BreakerConfig = {
  errorRate: {
    threshold: 0.01,
    holdMs: 5 * MIN,
    baselineDelta: 0.05,
    spikeHoldMs: MIN,
    windowMs: MIN,
    minSamples: 50,
    baselineRate: null,
    baselineWindowMs: HOUR,
  },
  replicationLag: { threshold: 60, holdMs: 5 * MIN, closeAfterMs: MIN },
  targetCpu: { threshold: 80, holdMs: 10 * MIN, closeAfterMs: MIN },
  replicationError: { closeAfterMs: 0 },
};

export interface ReplicationConfig {
  /** CDC_CAUGHT_UP needs lag below this (seconds) ... Default 10. */
  readonly caughtUpLagSeconds: number;
  /** ... continuously for this long. Default 1h. */
  readonly caughtUpForMs: number;
  /** Lag above this (seconds) is REPLICATION_FAILED. Default 60. */
  readonly failLagSeconds: number;
}

export const DEFAULT_REPLICATION_CONFIG: ReplicationConfig = {
  caughtUpLagSeconds: 10,
  caughtUpForMs: HOUR,
  failLagSeconds: 60,
};

export interface ControlConfig {
  readonly cutover: CutoverConfig;
  readonly breakers: BreakerConfig;
  readonly replication: ReplicationConfig;
}

export const DEFAULT_CONTROL_CONFIG: ControlConfig = {
  cutover: DEFAULT_CUTOVER_CONFIG,
  breakers: DEFAULT_BREAKER_CONFIG,
  replication: DEFAULT_REPLICATION_CONFIG,
};

/**
 * Multiply every duration by `factor` (e.g. 1/3600 turns an hour into a second for a demo).
 * Thresholds (rates, seconds of lag, CPU percent) are not durations and stay as they are.
 */
export function scaleControlConfig(c: ControlConfig, factor: number): ControlConfig {
  if (!(factor > 0) || !Number.isFinite(factor)) throw new RangeError(`time scale must be a positive number, got ${factor}`);
  const s = (ms: number): number => Math.round(ms * factor);
  const stable = Object.fromEntries(
    Object.entries(c.cutover.minStableForMs).map(([k, v]) => [k, s(v)]),
  ) as CutoverConfig['minStableForMs'];
  const e = c.breakers.errorRate;
  const gauge = (g: GaugeBreakerConfig): GaugeBreakerConfig => ({ ...g, holdMs: s(g.holdMs), closeAfterMs: s(g.closeAfterMs) });
  return {
    cutover: { minStableForMs: stable, rollbackReadRampMs: s(c.cutover.rollbackReadRampMs), gateMaxAgeMs: s(c.cutover.gateMaxAgeMs) },
    breakers: {
      errorRate: {
        ...e,
        holdMs: s(e.holdMs),
        spikeHoldMs: s(e.spikeHoldMs),
        windowMs: Math.max(60, s(e.windowMs)),
        baselineWindowMs: Math.max(60, s(e.baselineWindowMs)),
      },
      replicationLag: gauge(c.breakers.replicationLag),
      targetCpu: gauge(c.breakers.targetCpu),
      replicationError: { closeAfterMs: s(c.breakers.replicationError.closeAfterMs) },
    },
    replication: { ...c.replication, caughtUpForMs: s(c.replication.caughtUpForMs) },
  };
}
