/**
 * One runner for the control procedures (switchover, rollback; issue 13 item 5): a procedure is a table of
 * steps `{name, run, undo}` with typed names, run in order, each timed and recorded (StepLog). When a step fails:
 *   - before the point of no return, and the failure says a database is unreachable (`blocked`): nothing is
 *     undone, nothing released; the caller runs the table again later (every step is idempotent);
 *   - before the point of no return otherwise: the undos of the steps that started run in reverse order, each
 *     removing only what its own run created, then the `abort` steps;
 *   - from the point of no return on (a step marked `noReturn` started): the `finish` steps go forward instead.
 * The `always` steps (release the writer lock) end every outcome except `blocked`. Clean-up steps are
 * attempted: their failure is recorded, never thrown. A step marked `mayFail` is recorded either way and the
 * procedure goes on (e.g. the control rollback's drain: the fence ends what is still open).
 * With a `retry` policy a blocked step is run again in place after a wait, for as long as the policy says the
 * run still applies (the control rollback waits for an unreachable database this way: control/rollback-runner.ts).
 * `onRecord` sees every record as it is made (the control rollback audits each step and attempt).
 */
import { StepFailure, StepLog, type StepRecord, type StepResult } from './steps.js';

export interface Action<S extends string> {
  readonly name: S;
  run(): Promise<unknown>;
  /** Run only when this says so (e.g. only what was created). Default: always. */
  when?(): boolean;
}

export interface ProcedureStep<S extends string> {
  readonly name: S;
  /** Does the step; the description of its result (a sentence or fields) goes to the step record. */
  run(): Promise<StepResult | void>;
  /** Removes what this step's own run created; attempted when the step started and a later one failed. */
  readonly undo?: Action<S>;
  /** From the start of this step on, the procedure goes forward (`finish`) on a failure, never back. */
  readonly noReturn?: boolean;
  /** A failure is recorded and the procedure goes on (nothing that follows depends on this step). */
  readonly mayFail?: boolean;
}

/** How a blocked step is waited out and run again (instead of ending the run as `blocked`). */
export interface BlockedRetry<S extends string> {
  /** The wait before attempt `attempt + 1` (attempts count from 1). */
  delayMs(attempt: number): number;
  sleep(ms: number): Promise<void>;
  /** Before each wait (e.g. audit the blocked attempt). */
  onBlocked?(step: S, attempt: number, waitMs: number, err: unknown): Promise<void> | void;
  /** After the wait: false ends the run as `blocked`, nothing undone (e.g. the state moved on meanwhile). */
  proceed(step: S, attempt: number): boolean | Promise<boolean>;
}

export interface Procedure<S extends string> {
  readonly steps: readonly ProcedureStep<S>[];
  /** After the undos, on a failure before the point of no return. */
  readonly abort?: readonly Action<S>[];
  /** On a failure from the point of no return on. */
  readonly finish?: readonly Action<S>[];
  /** Last, on every outcome but `blocked`. */
  readonly always?: readonly Action<S>[];
  /** The failure only says a database cannot be reached now: before the point of no return, stop as is. */
  blocked?(err: unknown): boolean | Promise<boolean>;
  /** Run a blocked step again after a wait; without it a blocked step ends the run. */
  readonly retry?: BlockedRetry<S>;
  /** Each step record (steps, attempts, clean-up actions) as it is made; awaited, in order. */
  onRecord?(r: StepRecord<S>): Promise<void> | void;
}

export type ProcedureOutcome<S extends string> =
  | { readonly kind: 'done'; readonly steps: readonly StepRecord<S>[] }
  | { readonly kind: 'undone' | 'forward' | 'blocked'; readonly steps: readonly StepRecord<S>[]; readonly failedStep: S; readonly error: string };

export async function runProcedure<S extends string>(p: Procedure<S>, now: () => number = Date.now): Promise<ProcedureOutcome<S>> {
  const log = new StepLog<S>(now);
  let told = 0;
  const tell = async () => {
    for (; told < log.records.length; told++) await p.onRecord?.(log.records[told]!);
  };
  const attempt = async (actions: readonly Action<S>[] = []) => {
    for (const a of actions) {
      if (!a.when || a.when()) await log.attempt(a.name, () => a.run());
      await tell();
    }
  };
  let noReturn = false;
  for (const step of p.steps) {
    if (step.noReturn) noReturn = true;
    for (let n = 1; ; n++) {
      try {
        await log.run(step.name, async () => (await step.run()) ?? undefined, (d) => d);
        await tell();
        break;
      } catch (err) {
        await tell();
        if (step.mayFail) break;
        const failure = err instanceof StepFailure ? err : new StepFailure(step.name, String(err), err);
        if (!noReturn && (await p.blocked?.(failure.original))) {
          if (p.retry && (await waitOut(p.retry, step.name, n, failure.original))) continue;
          return { kind: 'blocked', steps: log.records, failedStep: step.name, error: failure.reason };
        }
        if (noReturn) {
          await attempt(p.finish);
        } else {
          const started = p.steps.filter((s) => log.started(s.name));
          for (const s of started.reverse()) if (s.undo) await attempt([s.undo]);
          await attempt(p.abort);
        }
        await attempt(p.always);
        return { kind: noReturn ? 'forward' : 'undone', steps: log.records, failedStep: step.name, error: failure.reason };
      }
    }
  }
  await attempt(p.always);
  return { kind: 'done', steps: log.records };
}

/** Waits before attempt `n + 1` of a blocked step; whether to make it. */
async function waitOut<S extends string>(r: BlockedRetry<S>, step: S, n: number, err: unknown): Promise<boolean> {
  const waitMs = r.delayMs(n);
  await r.onBlocked?.(step, n, waitMs, err);
  await r.sleep(waitMs);
  return r.proceed(step, n);
}
