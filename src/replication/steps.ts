/**
 * Timed, named steps for the switchover and rollback procedures: each step's start, duration and
 * outcome is recorded (the audit log wants every step with timestamps, DESIGN.md "Rollback").
 */
import { errorText } from './control-conn.js';

export interface StepRecord<S extends string = string> {
  readonly step: S;
  readonly ok: boolean;
  /** ms since the epoch. */
  readonly startedAt: number;
  readonly ms: number;
  readonly detail?: string;
  /** What a step returned as fields (e.g. the control rollback's drain counts), for the audit log. */
  readonly data?: Readonly<Record<string, unknown>>;
  readonly error?: string;
}

/** What a step describes its result with: a sentence (`detail`) or fields (`data`). */
export type StepResult = string | Readonly<Record<string, unknown>> | undefined;

export class StepLog<S extends string> {
  readonly records: StepRecord<S>[] = [];
  constructor(private readonly now: () => number = Date.now) {}

  /** Runs one step; a throw is recorded and rethrown as a StepFailure naming the step. */
  async run<T>(step: S, fn: () => Promise<T>, describe?: (v: T) => StepResult): Promise<T> {
    const startedAt = this.now();
    try {
      const v = await fn();
      const d = describe?.(v);
      const said = typeof d === 'string' ? (d ? { detail: d } : {}) : d ? { data: d } : {};
      this.records.push({ step, ok: true, startedAt, ms: this.now() - startedAt, ...said });
      return v;
    } catch (err) {
      const error = errorText(err);
      this.records.push({ step, ok: false, startedAt, ms: this.now() - startedAt, error });
      throw new StepFailure(step, error, err);
    }
  }

  /** Like run, for clean-up: failures are recorded, not thrown. */
  async attempt(step: S, fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await this.run(step, fn);
      return true;
    } catch {
      return false;
    }
  }

  started(step: S): boolean {
    return this.records.some((r) => r.step === step);
  }
}

export class StepFailure extends Error {
  /** `original`: what the step threw (e.g. a lost connection, see unreachable.ts). */
  constructor(readonly step: string, readonly reason: string, readonly original?: unknown) {
    super(`${step}: ${reason}`);
  }
}

/** Rejects after `ms` with `what` timed out; clears its timer when `p` settles. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
