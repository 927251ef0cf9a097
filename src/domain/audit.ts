/**
 * One audit record: a transition, a rollback step, a breaker trip, a reconcile after a Redis
 * outage. Appended by the control plane, read back by `GET /audit` and `pg-cutover audit`.
 */
import type { CutoverState } from './states.js';
import type { Criterion } from './gate-result.js';

export interface AuditEntry {
  /** Epoch ms when it happened. */
  readonly at: number;
  /** Who did it: `operator:<name>`, `breaker:error-rate`, `unleash`, `rollback-runner`, a sidecar id. */
  readonly by: string;
  /** What kind of record: 'transition', 'rollback-step', 'breaker', 'reconcile', ... */
  readonly kind: string;
  readonly from?: CutoverState;
  readonly to?: CutoverState;
  /** Snapshot version after the transition. */
  readonly version?: number;
  readonly reason?: string;
  /** The transition skipped guards with `force`; `detail.skipped` names them. */
  readonly forced?: boolean;
  /** Anything else worth keeping: breaker readings, step timings, skipped guards. JSON-safe. */
  readonly detail?: Readonly<Record<string, unknown>>;
  /** Store-assigned id (Redis stream id, or a counter in memory); absent before it is stored. */
  readonly id?: string;
}

/** Parse one stored audit record; null when it is not an object with `at`, `by` and `kind`. */
export function parseAuditEntry(json: string, id?: string): AuditEntry | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.at !== 'number' || typeof o.by !== 'string' || typeof o.kind !== 'string') return null;
  return id === undefined ? (o as unknown as AuditEntry) : ({ ...o, id } as unknown as AuditEntry);
}

/**
 * One gate run as the audit log keeps it (kind 'gate'): every criterion with its measured value, threshold and
 * verdict, when it started and ended. A typed record so the project's execution log can reuse it.
 */
export interface GateRunRecord {
  /** 1, 2, 3, or 'final' (Phase 4, src/replication/final-gate.ts). */
  readonly gate: number | 'final';
  readonly passed: boolean;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly criteria: readonly Criterion[];
}

export function gateAuditEntry(r: GateRunRecord, by: string): AuditEntry {
  const failed = r.criteria.filter((c) => !c.passed).map((c) => c.name);
  return {
    at: r.endedAt,
    by,
    kind: 'gate',
    reason: `gate ${r.gate} ${r.passed ? 'passed' : `failed: ${failed.join(', ')}`}`,
    detail: { ...r, criteria: r.criteria.map((c) => ({ ...c })) },
  };
}

/** What a `--force` skipped (kind 'deviation'): the transition went ahead against these failing guards, for this reason. */
export interface DeviationRecord {
  readonly from: CutoverState;
  readonly to: CutoverState;
  readonly reason: string;
  readonly skipped: readonly unknown[];
}

export function deviationAuditEntry(d: DeviationRecord, by: string, at: number): AuditEntry {
  return { at, by, kind: 'deviation', from: d.from, to: d.to, reason: d.reason, forced: true, detail: { skipped: [...d.skipped] } };
}
