/**
 * The migration as a project (the seed's PROJECT_STATE machine): a pure function of facts the control plane
 * already holds (cutover state, replication state, gate results, rollback and decommission history), never a
 * second set of buttons. The execution log records each change of the derived phase.
 */
import type { CutoverState } from '../domain/states.js';
import type { ReplicationState } from '../domain/replication-machine.js';

export const PROJECT_PHASES = [
  'NOT_STARTED',
  'PHASE_1_ACTIVE',
  'GATE_1',
  'PHASE_2_ACTIVE',
  'FULL_LOAD',
  'CDC_ACTIVE',
  'GATE_2',
  'PHASE_3_ACTIVE',
  'READS_MIGRATING',
  'SHADOW_WRITES',
  'WRITES_MIGRATED',
  'GATE_3',
  'PARALLEL_RUN',
  'PHASE_4_ACTIVE',
  'COMPLETE',
  'ROLLBACK',
] as const;
export type ProjectPhase = (typeof PROJECT_PHASES)[number];

/** Which of the seed's four phases a project state belongs to (ROLLBACK returns to phase 3). */
export const PHASE_NUMBER: { readonly [P in ProjectPhase]: 0 | 1 | 2 | 3 | 4 } = {
  NOT_STARTED: 0,
  PHASE_1_ACTIVE: 1,
  GATE_1: 1,
  PHASE_2_ACTIVE: 2,
  FULL_LOAD: 2,
  CDC_ACTIVE: 2,
  GATE_2: 2,
  PHASE_3_ACTIVE: 3,
  READS_MIGRATING: 3,
  SHADOW_WRITES: 3,
  WRITES_MIGRATED: 3,
  GATE_3: 3,
  PARALLEL_RUN: 3,
  ROLLBACK: 3,
  PHASE_4_ACTIVE: 4,
  COMPLETE: 4,
};

export interface GateFact {
  readonly passed: boolean;
  readonly at: number;
}

export interface ProjectFacts {
  readonly cutover: CutoverState;
  /** Observed replication state; null when no replication is watched by this sidecar. */
  readonly replication: ReplicationState | null;
  /** Last result of each gate (any sidecar's, from the audit log, or this one's). */
  readonly gates: { readonly 1?: GateFact; readonly 2?: GateFact; readonly 3?: GateFact; readonly final?: GateFact };
  /** Rollbacks so far (transitions to ROLLBACK). */
  readonly rollbacks: number;
  /** The decommission recorded its end. */
  readonly decommissioned: boolean;
  /** Anything recorded at all (a gate attempt, a transition, a lesson): the project has begun. */
  readonly activity: boolean;
}

export interface DerivedPhase {
  readonly phase: ProjectPhase;
  /** One line: which fact decided it. */
  readonly why: string;
}

const passed = (g: GateFact | undefined) => g?.passed === true;

/** The project state for these facts. Exhaustive over the cutover states; replication and gates refine phase 1–2. */
export function derivePhase(f: ProjectFacts): DerivedPhase {
  if (f.decommissioned) return { phase: 'COMPLETE', why: 'the source was decommissioned' };
  switch (f.cutover) {
    case 'CUTOVER_COMPLETE':
      return { phase: 'PHASE_4_ACTIVE', why: passed(f.gates.final) ? 'CUTOVER_COMPLETE, final gate passed: decommission is next' : 'CUTOVER_COMPLETE: final validation and decommission remain' };
    case 'SOURCE_READ_ONLY':
      return { phase: 'PARALLEL_RUN', why: 'SOURCE_READ_ONLY: writes on the target, the source kept current by reverse replication' };
    case 'WRITES_TO_AURORA':
      return passed(f.gates[3])
        ? { phase: 'GATE_3', why: 'writes on the target with gate 3 passed: the parallel run is next' }
        : { phase: 'WRITES_MIGRATED', why: 'WRITES_TO_AURORA without a passed gate 3 on record' };
    case 'SHADOW_WRITES':
      return { phase: 'SHADOW_WRITES', why: 'SHADOW_WRITES: sampled writes in lock-step on the target' };
    case 'READS_10PCT_AURORA':
    case 'READS_50PCT_AURORA':
    case 'READS_100PCT_AURORA':
      return { phase: 'READS_MIGRATING', why: `${f.cutover}` };
    case 'ROLLBACK':
      return { phase: 'ROLLBACK', why: 'a rollback is running; the project returns to phase 3' };
    case 'SOURCE_PRIMARY':
      return beforeTraffic(f);
    default: {
      const never: never = f.cutover;
      throw new Error(`unknown cutover state ${String(never)}`);
    }
  }
}

/** SOURCE_PRIMARY: phases 1 and 2 (or phase 3 again after a rollback), from replication and gate results. */
function beforeTraffic(f: ProjectFacts): DerivedPhase {
  if (f.rollbacks > 0) return { phase: 'PHASE_3_ACTIVE', why: `SOURCE_PRIMARY after ${f.rollbacks} rollback(s): phase 3 starts again` };
  if (passed(f.gates[2])) return { phase: 'GATE_2', why: 'gate 2 passed: reads may move' };
  switch (f.replication) {
    case 'FULL_LOAD_RUNNING':
    case 'FULL_LOAD_COMPLETE':
      return { phase: 'FULL_LOAD', why: `replication ${f.replication}` };
    case 'CDC_ACTIVE':
    case 'CDC_CAUGHT_UP':
    case 'REPLICATION_FAILED':
    case 'PAUSED':
      return { phase: 'CDC_ACTIVE', why: `replication ${f.replication}${f.gates[2] ? ', gate 2 not passed yet' : ''}` };
    case 'NOT_STARTED':
    case null:
      break;
    default: {
      const never: never = f.replication;
      throw new Error(`unknown replication state ${String(never)}`);
    }
  }
  if (passed(f.gates[1])) {
    return f.replication === null
      ? { phase: 'GATE_1', why: 'gate 1 passed; no replication watched yet' }
      : { phase: 'PHASE_2_ACTIVE', why: 'gate 1 passed; replication configured, not started' };
  }
  if (f.gates[1] || f.activity) return { phase: 'PHASE_1_ACTIVE', why: f.gates[1] ? 'gate 1 attempted, not passed' : 'assessment under way, gate 1 not run' };
  return { phase: 'NOT_STARTED', why: 'nothing recorded yet' };
}
