/**
 * The four circuit breakers of shared/DESIGN.md on an injected clock. Inputs arrive through
 * cheap recorders (`recordQuery` is on the proxy's hot path: no allocation, O(1)); `evaluate`
 * runs periodically (e.g. every second), returns every breaker's reading and the breakers that
 * opened or closed since the last call. What to do about an open breaker (rollback, pause,
 * scale hook, alert) is the caller's job; the action is named in each reading.
 */
import { DEFAULT_BREAKER_CONFIG, type BreakerConfig } from './control-config.js';
import { formatDuration } from './duration.js';
import { CounterWindow } from './window.js';
import type { Role } from './role.js';

export const BREAKER_NAMES = ['error-rate', 'replication-lag', 'target-cpu', 'replication-error'] as const;
export type BreakerName = (typeof BREAKER_NAMES)[number];
export type BreakerAction = 'rollback' | 'pause-forward' | 'scale-hook' | 'alert';
export type BreakerStatus = 'closed' | 'open';

export const BREAKER_ACTION: { readonly [B in BreakerName]: BreakerAction } = {
  'error-rate': 'rollback',
  'replication-lag': 'pause-forward',
  'target-cpu': 'scale-hook',
  'replication-error': 'alert',
};

/** The closed/open machine every breaker shares. */
export interface BreakerMemory {
  readonly status: BreakerStatus;
  readonly openedAt: number | null;
}
export const CLOSED: BreakerMemory = { status: 'closed', openedAt: null };

/**
 * One step of a breaker. `trip`: the condition has held long enough to open. `clearSince`: since
 * when the condition has been false (null while it holds). A latched breaker stays open until
 * `reset`; another closes once the condition has been clear for `closeAfterMs`.
 */
export function stepBreaker(m: BreakerMemory, now: number, trip: boolean, clearSince: number | null, closeAfterMs: number, latch: boolean): BreakerMemory {
  switch (m.status) {
    case 'closed':
      return trip ? { status: 'open', openedAt: now } : m;
    case 'open':
      return !latch && clearSince !== null && now - clearSince >= closeAfterMs ? CLOSED : m;
    default: {
      const never: never = m.status;
      throw new Error(`unknown breaker status ${String(never)}`);
    }
  }
}

export interface BreakerReading {
  readonly name: BreakerName;
  readonly action: BreakerAction;
  readonly status: BreakerStatus;
  readonly open: boolean;
  /** The measured value (fraction for error-rate, seconds of lag, CPU percent, 1/0 for replication-error); null if unknown. */
  readonly value: number | null;
  readonly threshold: number;
  /** Since when the condition has held; null when it does not. */
  readonly conditionSince: number | null;
  readonly holdMs: number;
  readonly openedAt: number | null;
  /** One human line with the measurement and why it is (not) open. */
  readonly detail: string;
}

export interface BreakerTransition {
  readonly name: BreakerName;
  readonly action: BreakerAction;
  readonly from: BreakerStatus;
  readonly to: BreakerStatus;
  readonly at: number;
  readonly reading: BreakerReading;
}

export interface BreakerEvaluation {
  readonly readings: readonly BreakerReading[];
  readonly transitions: readonly BreakerTransition[];
}

/** Series in the short (target) and baseline (source) windows. */
const TOTAL = 0;
const FAULTS = 1;
const BUCKETS = 60;

interface Gauge {
  value: number | null;
  aboveSince: number | null;
  belowSince: number | null;
}

export class BreakerSet {
  private readonly clock: () => number;
  private readonly cfg: BreakerConfig;
  private readonly target: CounterWindow;
  private readonly source: CounterWindow;
  private readonly mem: Record<BreakerName, BreakerMemory> = {
    'error-rate': CLOSED,
    'replication-lag': CLOSED,
    'target-cpu': CLOSED,
    'replication-error': CLOSED,
  };
  private sustainedSince: number | null = null;
  private spikeSince: number | null = null;
  private readonly lag: Gauge = { value: null, aboveSince: null, belowSince: null };
  private readonly cpu: Gauge = { value: null, aboveSince: null, belowSince: null };
  private replError: { message: string | null; since: number | null; clearedAt: number | null } = { message: null, since: null, clearedAt: null };
  private last: readonly BreakerReading[] = [];

  constructor(opts: { now: () => number; config?: BreakerConfig }) {
    this.clock = opts.now;
    this.cfg = opts.config ?? DEFAULT_BREAKER_CONFIG;
    this.target = new CounterWindow(this.cfg.errorRate.windowMs, BUCKETS, 2);
    this.source = new CounterWindow(this.cfg.errorRate.baselineWindowMs, BUCKETS, 2);
  }

  /**
   * One finished query (or failed attempt) through the proxy. `fault`: it failed and the failure
   * is a server fault (`isTargetFault` for the target, `isServerFault` for the source; the source's
   * rate is the learned baseline). Hot path: O(1), no allocation.
   */
  recordQuery(backend: Role, fault: boolean, now: number = this.clock()): void {
    const w = backend === 'target' ? this.target : this.source;
    w.add(now, TOTAL, 1);
    if (fault) w.add(now, FAULTS, 1);
  }

  /** Replication lag in seconds from the lag probe or DMS; null when unmeasured (keeps the last verdict). */
  observeLag(seconds: number | null, now: number = this.clock()): void {
    observeGauge(this.lag, seconds, this.cfg.replicationLag.threshold, now);
  }

  /** Target CPUUtilization percent (CloudWatch); null when unmeasured. */
  observeCpu(percent: number | null, now: number = this.clock()): void {
    observeGauge(this.cpu, percent, this.cfg.targetCpu.threshold, now);
  }

  /** The replication task's error, or null when it has none. */
  /**
   * Replication PAUSED on purpose (since when, why), or null. It is not lag: the lag gauge forgets its reading
   * (the backlog grows by design), and the lag breaker holds forward steps with a reading that says PAUSED and
   * names the command that resumes it, instead of a lag figure. It closes as soon as replication resumes.
   */
  observeReplicationPaused(p: { since: number; why: string } | null): void {
    if (p !== null) {
      this.paused = p;
      this.lag.value = null;
      this.lag.aboveSince = null;
      this.lag.belowSince = null;
    } else if (this.paused !== null) {
      this.paused = null;
      this.mem['replication-lag'] = CLOSED;
    }
  }

  private paused: { since: number; why: string } | null = null;

  observeReplicationError(message: string | null, now: number = this.clock()): void {
    const e = this.replError;
    if (message === null) this.replError = { message: null, since: null, clearedAt: e.clearedAt ?? now };
    else this.replError = { message, since: e.since ?? now, clearedAt: null };
  }

  evaluate(now: number = this.clock()): BreakerEvaluation {
    const readings = [this.evalErrorRate(now), this.evalLag(now), this.evalCpu(now), this.evalReplError(now)];
    const transitions: BreakerTransition[] = [];
    for (const r of readings) {
      const before = this.last.find((p) => p.name === r.name)?.status ?? 'closed';
      if (before !== r.status) transitions.push({ name: r.name, action: r.action, from: before, to: r.status, at: now, reading: r });
    }
    this.last = readings;
    return { readings, transitions };
  }

  /** The readings of the last `evaluate` (empty before the first). */
  readings(): readonly BreakerReading[] {
    return this.last;
  }

  isOpen(name: BreakerName): boolean {
    return this.mem[name].status === 'open';
  }

  /**
   * Close a breaker by hand (the error-rate breaker latches: reset it once the rollback is done
   * and the cause understood). Its recent target samples are forgotten so it does not re-trip on
   * the failure it already acted on. The next `evaluate` reports the transition.
   */
  reset(name: BreakerName): void {
    this.mem[name] = CLOSED;
    if (name === 'error-rate') {
      this.target.clear();
      this.sustainedSince = null;
      this.spikeSince = null;
    }
  }

  private evalErrorRate(now: number): BreakerReading {
    const c = this.cfg.errorRate;
    const total = this.target.sum(now, TOTAL);
    const faults = this.target.sum(now, FAULTS);
    // Under minSamples a mixed window gives no verdict (1 fault in 3 is not a 33% rate), but an outage does:
    // clients that back off send few queries, and every one fails. All failed is 100%, none failed is 0%.
    const rate = total >= c.minSamples ? faults / total : total > 0 && (faults === total || faults === 0) ? faults / total : null;
    const srcTotal = this.source.sum(now, TOTAL);
    const baseline = c.baselineRate ?? (srcTotal >= c.minSamples ? this.source.sum(now, FAULTS) / srcTotal : 0);
    const sustained = rate !== null && rate > c.threshold;
    const spike = rate !== null && rate > baseline + c.baselineDelta;
    // A window without a verdict (no target traffic: the clients are backing off) neither starts nor ends a
    // hold; a trip needs the current window to show the faults too.
    if (rate !== null) {
      this.sustainedSince = sustained ? (this.sustainedSince ?? now) : null;
      this.spikeSince = spike ? (this.spikeSince ?? now) : null;
    }
    const trip =
      (sustained && this.sustainedSince !== null && now - this.sustainedSince >= c.holdMs) ||
      (spike && this.spikeSince !== null && now - this.spikeSince >= c.spikeHoldMs);
    const m = (this.mem['error-rate'] = stepBreaker(this.mem['error-rate'], now, trip, null, 0, true));
    const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
    const measured =
      rate === null
        ? `${total} target queries in ${formatDuration(this.target.spanMs)} (< ${c.minSamples}${total > 0 ? ', some failed' : ''}): no verdict`
        : `target fault rate ${pct(rate)} (${faults}/${total} in ${formatDuration(this.target.spanMs)}), baseline ${pct(baseline)}`;
    const since = minNonNull(this.sustainedSince, this.spikeSince);
    const held = spike
      ? `; > baseline + ${pct(c.baselineDelta)} for ${formatDuration(now - this.spikeSince!)} of ${formatDuration(c.spikeHoldMs)}`
      : sustained
        ? `; > ${pct(c.threshold)} for ${formatDuration(now - this.sustainedSince!)} of ${formatDuration(c.holdMs)}`
        : '';
    return reading('error-rate', m, rate, c.threshold, since, c.holdMs, measured + held);
  }

  private evalLag(now: number): BreakerReading {
    const c = this.cfg.replicationLag;
    if (this.paused !== null) {
      const m = (this.mem['replication-lag'] = stepBreaker(this.mem['replication-lag'], now, true, null, c.closeAfterMs, false));
      const detail = `replication PAUSED since ${new Date(this.paused.since).toISOString()} (${this.paused.why}); not lag. Forward steps wait: resume with \`pg-cutover replicate resume\``;
      return reading('replication-lag', m, null, c.threshold, this.paused.since, 0, detail);
    }
    return this.evalGauge('replication-lag', this.lag, c.threshold, c.holdMs, c.closeAfterMs, now, (v) => `replication lag ${v}s`);
  }

  private evalCpu(now: number): BreakerReading {
    const c = this.cfg.targetCpu;
    return this.evalGauge('target-cpu', this.cpu, c.threshold, c.holdMs, c.closeAfterMs, now, (v) => `target CPU ${v}%`);
  }

  private evalGauge(
    name: BreakerName,
    g: Gauge,
    threshold: number,
    holdMs: number,
    closeAfterMs: number,
    now: number,
    what: (v: number) => string,
  ): BreakerReading {
    const trip = g.aboveSince !== null && now - g.aboveSince >= holdMs;
    const m = (this.mem[name] = stepBreaker(this.mem[name], now, trip, g.belowSince, closeAfterMs, false));
    const detail =
      g.value === null
        ? 'not measured yet'
        : g.aboveSince === null
          ? `${what(g.value)} ≤ ${threshold}`
          : `${what(g.value)} > ${threshold} for ${formatDuration(now - g.aboveSince)} of ${formatDuration(holdMs)}`;
    return reading(name, m, g.value, threshold, g.aboveSince, holdMs, detail);
  }

  private evalReplError(now: number): BreakerReading {
    const e = this.replError;
    const m = (this.mem['replication-error'] = stepBreaker(
      this.mem['replication-error'],
      now,
      e.since !== null,
      e.clearedAt,
      this.cfg.replicationError.closeAfterMs,
      false,
    ));
    const detail = e.message === null ? 'no replication error' : `replication error: ${e.message}`;
    return reading('replication-error', m, e.since === null ? 0 : 1, 0, e.since, 0, detail);
  }
}

function observeGauge(g: Gauge, value: number | null, threshold: number, now: number): void {
  if (value === null || Number.isNaN(value)) return;
  g.value = value;
  const above = value > threshold;
  g.aboveSince = above ? (g.aboveSince ?? now) : null;
  g.belowSince = above ? null : (g.belowSince ?? now);
}

function reading(
  name: BreakerName,
  m: BreakerMemory,
  value: number | null,
  threshold: number,
  conditionSince: number | null,
  holdMs: number,
  detail: string,
): BreakerReading {
  return {
    name,
    action: BREAKER_ACTION[name],
    status: m.status,
    open: m.status === 'open',
    value,
    threshold,
    conditionSince,
    holdMs,
    openedAt: m.openedAt,
    detail: m.status === 'open' ? `OPEN (${BREAKER_ACTION[name]}): ${detail}` : detail,
  };
}

function minNonNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.min(a, b);
}
