/**
 * The execution log of the migration, built from the audit log (one record for everything, shared by every
 * sidecar): phase changes, gate attempts and results, every --force as a deviation with its reason, rollbacks
 * with their cause, and free-text lessons. The record kinds this module writes are declared here; transitions,
 * rollback steps and breaker trips come from the control plane.
 */
import type { AuditEntry } from '../domain/audit.js';
import type { ProjectPhase } from './phases.js';
import type { Criterion } from '../domain/gate-result.js';

export type GateName = 1 | 2 | 3 | 'final';

/** Audit records written by the project layer (kind → detail). */
export const PROJECT_KINDS = ['phase', 'gate', 'lesson', 'snapshot', 'decommission-step', 'decommissioned', 'baseline'] as const;

export function phaseEntry(at: number, by: string, phase: ProjectPhase, previous: ProjectPhase | null, why: string): AuditEntry {
  return { at, by, kind: 'phase', reason: why, detail: { phase, previous } };
}

export function gateEntry(at: number, by: string, gate: GateName, passed: boolean, criteria: readonly Criterion[], forced?: string): AuditEntry {
  return { at, by, kind: 'gate', reason: `gate ${gate} ${passed ? 'passed' : 'failed'}`, detail: { gate, passed, criteria: criteria.map((c) => ({ ...c })), ...(forced ? { forced } : {}) } };
}

export function lessonEntry(at: number, by: string, text: string): AuditEntry {
  return { at, by, kind: 'lesson', reason: text };
}

export interface GateRun {
  readonly gate: GateName;
  readonly at: number;
  readonly by: string;
  readonly passed: boolean;
  readonly criteria: readonly Criterion[];
}

export interface PhaseRow {
  readonly phase: string;
  readonly started: number;
  readonly gates: readonly GateRun[];
  readonly notes: readonly string[];
}

export interface ExecutionLog {
  readonly phases: readonly PhaseRow[];
  readonly gates: readonly GateRun[];
  readonly deviations: readonly { readonly at: number; readonly by: string; readonly what: string; readonly reason: string }[];
  readonly rollbacks: readonly { readonly at: number; readonly by: string; readonly from: string; readonly cause: string }[];
  readonly lessons: readonly { readonly at: number; readonly by: string; readonly text: string }[];
}

const detail = (e: AuditEntry) => (e.detail ?? {}) as Record<string, unknown>;

export function gateRunOf(e: AuditEntry): GateRun | null {
  if (e.kind !== 'gate') return null;
  const d = detail(e);
  const g = d.gate;
  if (g !== 1 && g !== 2 && g !== 3 && g !== 'final' && g !== '1' && g !== '2' && g !== '3') return null;
  const gate = (g === 'final' ? 'final' : Number(g)) as GateName;
  return { gate, at: e.at, by: e.by, passed: d.passed === true, criteria: Array.isArray(d.criteria) ? (d.criteria as Criterion[]) : [] };
}

/** Rows in the seed's form: phase, started, gate attempted, gate result, notes; plus the lists beside it. */
export function buildExecutionLog(entries: readonly AuditEntry[]): ExecutionLog {
  const sorted = [...entries].sort((a, b) => a.at - b.at);
  const phases: { phase: string; started: number; gates: GateRun[]; notes: string[] }[] = [];
  const gates: GateRun[] = [];
  const deviations: ExecutionLog['deviations'][number][] = [];
  const rollbacks: ExecutionLog['rollbacks'][number][] = [];
  const lessons: ExecutionLog['lessons'][number][] = [];
  const note = (s: string) => phases[phases.length - 1]?.notes.push(s);
  for (const e of sorted) {
    const d = detail(e);
    if (e.kind === 'phase' && typeof d.phase === 'string') {
      phases.push({ phase: d.phase, started: e.at, gates: [], notes: e.reason ? [e.reason] : [] });
      continue;
    }
    const run = gateRunOf(e);
    if (run) {
      gates.push(run);
      phases[phases.length - 1]?.gates.push(run);
      if (typeof d.forced === 'string') deviations.push({ at: e.at, by: e.by, what: `gate ${run.gate} overridden`, reason: d.forced });
      continue;
    }
    // A --force is recorded as its own 'deviation' record (control/audit.ts); a forced transition without one
    // (an older record) counts itself.
    if (e.kind === 'deviation' || (e.forced && e.kind !== 'deviation' && !hasDeviation(sorted, e))) {
      const skipped = Array.isArray(d.skipped) && d.skipped.length > 0 ? ` (skipped: ${(d.skipped as unknown[]).map(guardName).join(', ')})` : '';
      const what = `forced ${e.from ?? '?'} → ${e.to ?? '?'}${skipped}`;
      deviations.push({ at: e.at, by: e.by, what, reason: e.reason ?? '' });
      note(`deviation: ${what}: ${e.reason ?? ''}`);
    }
    if ((e.kind === 'transition' || e.kind === 'override') && e.to === 'ROLLBACK') {
      rollbacks.push({ at: e.at, by: e.by, from: e.from ?? '?', cause: e.reason ?? '' });
      note(`rollback from ${e.from ?? '?'}: ${e.reason ?? ''}`);
    } else if (e.kind === 'lesson') {
      lessons.push({ at: e.at, by: e.by, text: e.reason ?? '' });
      note(`lesson: ${e.reason ?? ''}`);
    } else if (e.kind === 'snapshot') {
      note(d.ok === true ? `snapshot archived: ${String(d.location)} (${String(d.bytes)} B)` : `snapshot failed: ${String(d.error ?? e.reason)}`);
    } else if (e.kind === 'decommissioned') {
      note('source decommissioned');
    }
  }
  return { phases, gates, deviations, rollbacks, lessons };
}

function hasDeviation(all: readonly AuditEntry[], t: AuditEntry): boolean {
  return all.some((x) => x.kind === 'deviation' && x.from === t.from && x.to === t.to && Math.abs(x.at - t.at) < 60_000);
}

/** A skipped guard as the transition reports it ({name|guard, detail}) or plain text. */
function guardName(g: unknown): string {
  if (typeof g === 'object' && g !== null) {
    const o = g as Record<string, unknown>;
    return String(o.name ?? o.guard ?? JSON.stringify(o));
  }
  return String(g);
}

/** The newest run of each gate. */
export function lastGateRuns(log: ExecutionLog): Partial<Record<`${GateName}`, GateRun>> {
  const out: Partial<Record<string, GateRun>> = {};
  for (const g of log.gates) out[String(g.gate)] = g;
  return out;
}
