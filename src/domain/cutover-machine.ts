/**
 * The cutover state machine of shared/DESIGN.md as data (a transition table with named guards)
 * and one pure decision function. No clock, no I/O: the caller passes `now`, the gate results,
 * the breaker readings and the config, and applies the result through the state store's CAS.
 */
import type { AuditEntry } from './audit.js';
import type { CutoverConfig } from './control-config.js';
import { formatDuration } from './duration.js';
import { CUTOVER_STATES, FORWARD_PATH, STATE_POLICY, isCutoverState, parseState, type CutoverState } from './states.js';

/** What every sidecar shares (one Redis key). */
export interface CutoverSnapshot {
  readonly state: CutoverState;
  /** Incremented by every transition; the CAS compares it. */
  readonly version: number;
  /** Epoch ms the state was entered. */
  readonly since: number;
  readonly reason: string;
  /** Reads to the target, 0..100. In ROLLBACK: where the ramp down started. */
  readonly readPercent: number;
}

export const CUTOVER_EVENTS = ['advance', 'rollback', 'rollback-complete'] as const;
export type CutoverEvent = (typeof CUTOVER_EVENTS)[number];

export const GUARD_NAMES = ['store-healthy', 'min-stable', 'no-open-breaker', 'gate-2', 'gate-3', 'read-ramp-done'] as const;
export type GuardName = (typeof GUARD_NAMES)[number];

/**
 * `force` skips forceable guards. `store-healthy` is not forceable: a forward step taken while
 * the shared store is unreachable would never reach the other sidecars.
 */
export const GUARD_FORCEABLE: { readonly [G in GuardName]: boolean } = {
  'store-healthy': false,
  'min-stable': true,
  'no-open-breaker': true,
  'gate-2': true,
  'gate-3': true,
  'read-ramp-done': true,
};

export interface TransitionRule {
  readonly from: CutoverState;
  readonly to: CutoverState;
  readonly event: CutoverEvent;
  readonly guards: readonly GuardName[];
}

const FORWARD_GUARDS: Partial<Record<CutoverState, readonly GuardName[]>> = {
  // Gate 2 (data equal, CDC lag small) before any read goes to the target.
  SOURCE_PRIMARY: ['store-healthy', 'no-open-breaker', 'gate-2'],
  // Gate 3 (shadow validation) before writes move.
  SHADOW_WRITES: ['store-healthy', 'min-stable', 'no-open-breaker', 'gate-3'],
};

/** Every legal transition. Anything not listed is refused as illegal, forced or not. */
export const TRANSITIONS: readonly TransitionRule[] = [
  ...FORWARD_PATH.slice(0, -1).map((from, i) => ({
    from,
    to: FORWARD_PATH[i + 1]!,
    event: 'advance' as const,
    guards: FORWARD_GUARDS[from] ?? (['store-healthy', 'min-stable', 'no-open-breaker'] as const),
  })),
  // Rollback is never guarded: it is the way out when guards matter least.
  ...CUTOVER_STATES.filter((s) => s !== 'ROLLBACK').map((from) => ({
    from,
    to: 'ROLLBACK' as const,
    event: 'rollback' as const,
    guards: [] as const,
  })),
  { from: 'ROLLBACK', to: 'SOURCE_PRIMARY', event: 'rollback-complete', guards: ['read-ramp-done'] },
];

export function ruleFor(from: CutoverState, to: CutoverState): TransitionRule | undefined {
  return TRANSITIONS.find((r) => r.from === from && r.to === to);
}

/** Where `event` leads from `from`, or null when that event is not legal there. */
export function targetOf(from: CutoverState, event: CutoverEvent): CutoverState | null {
  return TRANSITIONS.find((r) => r.from === from && r.event === event)?.to ?? null;
}

export interface GateStatus {
  readonly passed: boolean;
  /** Epoch ms the gate run finished. */
  readonly at: number;
}

export interface TransitionContext {
  readonly now: number;
  readonly gates: { readonly 1?: GateStatus; readonly 2?: GateStatus; readonly 3?: GateStatus };
  /** Breaker readings (`BreakerSet.evaluate().readings` fits); any open one blocks forward steps. */
  readonly breakers: readonly { readonly name: string; readonly open: boolean; readonly detail?: string }[];
  readonly config: CutoverConfig;
  /** The shared store is unreachable: forward steps refused, rollback allowed. */
  readonly storeDegraded?: boolean;
}

export interface TransitionRequest {
  /** Target state; a string is parsed case-insensitively. */
  readonly to: CutoverState | string;
  /** Only needed for `rollback-complete`; otherwise inferred from (from, to). */
  readonly event?: CutoverEvent;
  readonly reason?: string;
  readonly force?: boolean;
  readonly by: string;
}

export interface GuardResult {
  readonly guard: GuardName;
  readonly ok: boolean;
  readonly detail: string;
}

export type RefusalCode = 'unknown-state' | 'illegal-transition' | 'already-in-state' | 'reason-required' | 'guard-failed';

export type TransitionDecision =
  | {
      readonly ok: true;
      readonly next: CutoverSnapshot;
      readonly event: CutoverEvent;
      readonly forced: boolean;
      /** Guards that failed but were skipped by `force` (empty when none). */
      readonly skipped: readonly GuardResult[];
    }
  | { readonly ok: false; readonly code: RefusalCode; readonly reason: string; readonly guards?: readonly GuardResult[] };

/**
 * Reads to the target right now. Outside ROLLBACK that is the snapshot's percentage; in ROLLBACK
 * it falls linearly from the snapshot's readPercent (where reads were when the rollback began) to
 * 0 over `rampMs` (DESIGN.md rollback step 4).
 */
export function effectiveReadPercent(s: CutoverSnapshot, now: number, rampMs: number): number {
  if (s.state !== 'ROLLBACK') return s.readPercent;
  if (rampMs <= 0) return 0;
  const left = 1 - (now - s.since) / rampMs;
  return left <= 0 ? 0 : s.readPercent * Math.min(1, left);
}

/** The snapshot of a fresh deployment. */
export function initialSnapshot(now: number, reason = 'initial state'): CutoverSnapshot {
  return { state: 'SOURCE_PRIMARY', version: 0, since: now, reason, readPercent: 0 };
}

export function decideTransition(current: CutoverSnapshot, req: TransitionRequest, ctx: TransitionContext): TransitionDecision {
  if (!isCutoverState(current.state)) {
    return { ok: false, code: 'unknown-state', reason: `current state ${JSON.stringify(current.state)} is not a cutover state` };
  }
  const parsed = parseState(req.to);
  if (!parsed.ok) return parsed;
  const to = parsed.state;
  const from = current.state;
  if (to === from) return { ok: false, code: 'already-in-state', reason: `already in ${from} (version ${current.version})` };

  const rule = ruleFor(from, to);
  if (!rule) return { ok: false, code: 'illegal-transition', reason: illegalReason(from, to) };
  if (req.event !== undefined && req.event !== rule.event) {
    return { ok: false, code: 'illegal-transition', reason: `${from} → ${to} is a '${rule.event}' transition, not '${req.event}'` };
  }
  if (rule.event === 'rollback-complete' && req.event !== 'rollback-complete') {
    return {
      ok: false,
      code: 'illegal-transition',
      reason: 'ROLLBACK → SOURCE_PRIMARY happens only when the rollback procedure completes (event rollback-complete)',
    };
  }
  const reason = req.reason?.trim() ?? '';
  if (rule.event === 'rollback' && reason === '') return { ok: false, code: 'reason-required', reason: 'a rollback needs a reason' };
  if (req.force && reason === '') return { ok: false, code: 'reason-required', reason: 'a forced transition needs a reason' };

  const results = rule.guards.map((g) => checkGuard(g, current, ctx));
  const failed = results.filter((r) => !r.ok);
  const blocking = failed.filter((r) => !req.force || !GUARD_FORCEABLE[r.guard]);
  if (blocking.length > 0) {
    return {
      ok: false,
      code: 'guard-failed',
      reason: `${from} → ${to} refused: ${blocking.map((r) => `${r.guard}: ${r.detail}`).join('; ')}`,
      guards: results,
    };
  }
  const readPercent = to === 'ROLLBACK' ? effectiveReadPercent(current, ctx.now, ctx.config.rollbackReadRampMs) : STATE_POLICY[to].readPercent;
  return {
    ok: true,
    event: rule.event,
    forced: failed.length > 0,
    skipped: failed,
    next: { state: to, version: current.version + 1, since: ctx.now, reason: reason || `${rule.event} by ${req.by}`, readPercent },
  };
}

/** The audit record of a decided transition. */
export function transitionAudit(current: CutoverSnapshot, d: Extract<TransitionDecision, { ok: true }>, req: TransitionRequest): AuditEntry {
  return {
    at: d.next.since,
    by: req.by,
    kind: 'transition',
    from: current.state,
    to: d.next.state,
    version: d.next.version,
    reason: d.next.reason,
    forced: d.forced,
    detail: { event: d.event, readPercent: d.next.readPercent, ...(d.forced ? { skipped: d.skipped } : {}) },
  };
}

function illegalReason(from: CutoverState, to: CutoverState): string {
  const legal = TRANSITIONS.filter((r) => r.from === from).map((r) => `${r.to} (${r.event})`);
  return `${from} → ${to} is not a legal transition; from ${from} only: ${legal.join(', ')}`;
}

function checkGuard(g: GuardName, cur: CutoverSnapshot, ctx: TransitionContext): GuardResult {
  switch (g) {
    case 'store-healthy':
      return ctx.storeDegraded
        ? { guard: g, ok: false, detail: 'shared state store unreachable: forward transitions are refused until it is back' }
        : { guard: g, ok: true, detail: 'store reachable' };
    case 'min-stable': {
      const need = ctx.config.minStableForMs[cur.state];
      const been = ctx.now - cur.since;
      return { guard: g, ok: been >= need, detail: `in ${cur.state} for ${formatDuration(been)}, needs ${formatDuration(need)}` };
    }
    case 'no-open-breaker': {
      // Each with its reading: a paused replication says so and names the command that resumes it.
      const open = ctx.breakers.filter((b) => b.open).map((b) => `${b.name}${b.detail ? ` (${b.detail})` : ''}`);
      return { guard: g, ok: open.length === 0, detail: open.length === 0 ? 'no breaker open' : `open breakers: ${open.join('; ')}` };
    }
    case 'gate-2':
    case 'gate-3':
      return gateGuard(g, g === 'gate-2' ? ctx.gates[2] : ctx.gates[3], cur, ctx);
    case 'read-ramp-done': {
      const pct = effectiveReadPercent(cur, ctx.now, ctx.config.rollbackReadRampMs);
      return { guard: g, ok: pct === 0, detail: pct === 0 ? 'reads back on the source' : `${pct.toFixed(1)}% of reads still go to the target` };
    }
    default: {
      const never: never = g;
      throw new Error(`unknown guard ${String(never)}`);
    }
  }
}

/** A gate counts only if it passed after the current state was entered and is not stale. */
function gateGuard(g: 'gate-2' | 'gate-3', s: GateStatus | undefined, cur: CutoverSnapshot, ctx: TransitionContext): GuardResult {
  const n = g === 'gate-2' ? 2 : 3;
  if (!s) return { guard: g, ok: false, detail: `gate ${n} has not been run` };
  if (!s.passed) return { guard: g, ok: false, detail: `gate ${n} failed (${formatDuration(ctx.now - s.at)} ago)` };
  if (s.at < cur.since) return { guard: g, ok: false, detail: `gate ${n} passed before ${cur.state} was entered; run it again` };
  if (ctx.now - s.at > ctx.config.gateMaxAgeMs) {
    return { guard: g, ok: false, detail: `gate ${n} passed ${formatDuration(ctx.now - s.at)} ago, older than ${formatDuration(ctx.config.gateMaxAgeMs)}` };
  }
  return { guard: g, ok: true, detail: `gate ${n} passed ${formatDuration(ctx.now - s.at)} ago` };
}
