/**
 * The project layer of one sidecar: derives the project phase from the control plane's facts and records
 * each change in the audit log (the execution log), records the error-rate baseline before the first read
 * moves, samples history for the report, and answers GET /project with phase, meaning, log and conditions.
 */
import { log } from '../support/log.js';
import type { AuditEntry } from '../domain/audit.js';
import type { BreakerReading } from '../domain/breaker.js';
import type { GateStatus } from '../domain/cutover-machine.js';
import type { ReplicationState } from '../domain/replication-machine.js';
import type { CutoverState } from '../domain/states.js';
import type { StateStore } from '../control/store.js';
import { evaluateConditions, type Conditions } from './conditions.js';
import { meaningFor, type StateMeaning } from '../domain/guarantees.js';
import type { DailyP99, HistorySample, HistoryStore } from './history.js';
import { buildExecutionLog, lastGateRuns, phaseEntry, type ExecutionLog, type GateRun } from './log.js';
import { derivePhase, type DerivedPhase, type ProjectFacts, type ProjectPhase } from './phases.js';
import type { HistoryRecorder } from './recorder.js';

export interface ProjectDeps {
  readonly store: StateStore;
  readonly history: HistoryStore;
  readonly recorder: HistoryRecorder;
  readonly sidecarId: string;
  state(): CutoverState;
  gates(): { 1?: GateStatus; 2?: GateStatus; 3?: GateStatus };
  replicationState(): ReplicationState | null;
  breakers(): readonly BreakerReading[];
  /** Source statements and server-side failures so far (for the baseline). */
  sourceCounters(): { statements: number; faults: number };
  /** Error-rate breaker's delta over the baseline (0.05). */
  readonly errorDelta: number;
  readonly now?: () => number;
}

export interface ProjectView {
  readonly at: number;
  readonly state: CutoverState;
  readonly phase: DerivedPhase;
  readonly meaning: StateMeaning;
  readonly log: ExecutionLog;
  readonly gates: Partial<Record<string, GateRun>>;
  readonly conditions: Conditions;
  readonly baselineErrorRate: number | null;
}

const AUDIT_WINDOW = 10_000;

function progressOf(audit: readonly AuditEntry[]) {
  return {
    snapshot: audit.some((e) => e.kind === 'snapshot' && e.detail?.ok === true),
    finalPassed: lastGateRuns(buildExecutionLog(audit)).final?.passed === true,
    decommissioned: audit.some((e) => e.kind === 'decommissioned'),
  };
}

export class ProjectService {
  private lastPhase: ProjectPhase | null = null;
  private progress = { snapshot: false, finalPassed: false, decommissioned: false };
  private baselineRecorded = false;
  private readonly now: () => number;
  constructor(private readonly d: ProjectDeps) {
    this.now = d.now ?? Date.now;
  }

  async audit(): Promise<AuditEntry[]> {
    return this.d.store.audit(AUDIT_WINDOW);
  }

  facts(audit: readonly AuditEntry[]): ProjectFacts {
    const runs = lastGateRuns(buildExecutionLog(audit));
    const mine = this.d.gates();
    const pick = (n: 1 | 2 | 3) => {
      const a = runs[String(n) as '1'];
      const b = mine[n];
      if (a && (!b || a.at >= b.at)) return { passed: a.passed, at: a.at };
      return b;
    };
    const g1 = pick(1);
    const g2 = pick(2);
    const g3 = pick(3);
    const fin = runs.final;
    return {
      cutover: this.d.state(),
      replication: this.d.replicationState(),
      gates: { ...(g1 ? { 1: g1 } : {}), ...(g2 ? { 2: g2 } : {}), ...(g3 ? { 3: g3 } : {}), ...(fin ? { final: { passed: fin.passed, at: fin.at } } : {}) },
      rollbacks: audit.filter((e) => (e.kind === 'transition' || e.kind === 'override') && e.to === 'ROLLBACK').length,
      decommissioned: audit.some((e) => e.kind === 'decommissioned'),
      activity: audit.some((e) => e.kind !== 'phase' && e.reason !== 'state key created' && e.reason !== 'initial state'),
    };
  }

  /** One round: a history sample, the phase, the baseline. Never throws (logged). */
  async tick(): Promise<void> {
    const at = this.now();
    try {
      await this.d.recorder.sample(at);
    } catch (e) {
      log.debug({ err: (e as Error).message }, 'history sample not recorded');
    }
    let audit: AuditEntry[];
    try {
      audit = await this.audit();
    } catch {
      return; // store unreachable: the phase is judged again next round
    }
    const p = derivePhase(this.facts(audit));
    this.progress = progressOf(audit);
    if (this.lastPhase === null) {
      const recorded = [...audit].reverse().find((e) => e.kind === 'phase');
      this.lastPhase = (recorded?.detail?.phase as ProjectPhase | undefined) ?? null;
    }
    if (p.phase !== this.lastPhase) {
      await this.d.store.appendAudit(phaseEntry(at, this.d.sidecarId, p.phase, this.lastPhase, p.why));
      log.info({ phase: p.phase, previous: this.lastPhase, why: p.why }, 'project phase changed');
      this.lastPhase = p.phase;
    }
    await this.recordBaseline(audit, at);
  }

  /** The source's error rate through the proxy, recorded once, when the state first leaves SOURCE_PRIMARY. */
  private async recordBaseline(audit: readonly AuditEntry[], at: number): Promise<void> {
    if (this.baselineRecorded) return;
    if (audit.some((e) => e.kind === 'baseline')) {
      this.baselineRecorded = true;
      return;
    }
    const c = this.d.sourceCounters();
    if (this.d.state() === 'SOURCE_PRIMARY') {
      this.pending = c;
      return;
    }
    const base = this.pending ?? c;
    this.baselineRecorded = true;
    await this.d.store.appendAudit({
      at,
      by: this.d.sidecarId,
      kind: 'baseline',
      reason: 'application error rate before the first read moved',
      detail: { errorRate: base.statements > 0 ? base.faults / base.statements : 0, statements: base.statements, faults: base.faults },
    });
  }
  private pending: { statements: number; faults: number } | null = null;

  async view(): Promise<ProjectView> {
    const at = this.now();
    const audit = await this.audit();
    const el = buildExecutionLog(audit);
    const gates = lastGateRuns(el);
    const daily: DailyP99[] = await this.d.history.daily().catch(() => []);
    const integritySource = gates.final ?? gates['2'];
    const checks = integritySource?.criteria.filter((c) => /^(checksum|rows) /.test(c.name)) ?? [];
    const baseline = [...audit].reverse().find((e) => e.kind === 'baseline');
    const baselineErrorRate = typeof baseline?.detail?.errorRate === 'number' ? baseline.detail.errorRate : null;
    const errNow = this.d.breakers().find((b) => b.name === 'error-rate')?.value ?? null;
    const conditions = evaluateConditions({
      integrity: integritySource && checks.length > 0
        ? { source: integritySource.gate === 'final' ? 'final gate' : 'gate 2', passed: checks.every((c) => c.passed), failedChecks: checks.filter((c) => !c.passed).map((c) => c.name), at: integritySource.at }
        : null,
      daily,
      streakDays: 14,
      p99BoundMs: 30,
      decommissioned: (() => {
        const e = audit.find((x) => x.kind === 'decommissioned');
        return e ? { at: e.at } : null;
      })(),
      breakers: this.d.breakers(),
      trips: audit.filter((e) => e.kind === 'breaker' && / open$/.test(e.reason ?? '')).map((e) => ({ name: (e.reason ?? '').replace(/ open$/, ''), at: e.at })),
      baselineErrorRate,
      currentErrorRate: errNow,
      errorDelta: this.d.errorDelta,
    });
    const state = this.d.state();
    this.progress = progressOf(audit);
    const meaning = meaningFor(state, this.progress);
    return { at, state, phase: derivePhase(this.facts(audit)), meaning, log: el, gates, conditions, baselineErrorRate };
  }

  /** What the current state guarantees and what is left, as of the last round (GET /state, pg-cutover status). */
  meaning(): StateMeaning {
    return meaningFor(this.d.state(), this.progress);
  }

  samples(): Promise<HistorySample[]> {
    return this.d.history.samples();
  }
}
