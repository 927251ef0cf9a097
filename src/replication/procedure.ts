/**
 * One runner for the control procedures (switchover, rollback; issue 13 item 5): a procedure is a table of
 * steps `{name, run, undo}` with typed names, run in order, each timed and recorded (StepLog). When a step fails:
 *   - before the point of no return, and the failure says a database is unreachable (`blocked`): nothing is
 *     undone, nothing released; the caller runs the table again later (every step is idempotent);
 *   - before the point of no return otherwise: the undos of the steps that started run in reverse order, each
 *     removing only what its own run created, then the `abort` steps;
 *   - from the point of no return on (a step marked `noReturn` started): the `finish` steps go forward instead.
 * The `always` steps (release the writer lock) end every outcome except `blocked`. Clean-up steps are
 * attempted: their failure is recorded, never thrown.
 */
import { StepFailure, StepLog, type StepRecord } from './steps.js';

export interface Action<S extends string> {
  readonly name: S;
  run(): Promise<unknown>;
  /** Run only when this says so (e.g. only what was created). Default: always. */
  when?(): boolean;
}

export interface ProcedureStep<S extends string> {
  readonly name: S;
  /** Does the step; the description of its result goes to the step record. */
  run(): Promise<string | void>;
  /** Removes what this step's own run created; attempted when the step started and a later one failed. */
  readonly undo?: Action<S>;
  /** From the start of this step on, the procedure goes forward (`finish`) on a failure, never back. */
  readonly noReturn?: boolean;
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
}

export type ProcedureOutcome<S extends string> =
  | { readonly kind: 'done'; readonly steps: readonly StepRecord<S>[] }
  | { readonly kind: 'undone' | 'forward' | 'blocked'; readonly steps: readonly StepRecord<S>[]; readonly failedStep: S; readonly error: string };

export async function runProcedure<S extends string>(p: Procedure<S>, now: () => number = Date.now): Promise<ProcedureOutcome<S>> {
  const log = new StepLog<S>(now);
  const attempt = async (actions: readonly Action<S>[] = []) => {
    for (const a of actions) if (!a.when || a.when()) await log.attempt(a.name, () => a.run());
  };
  let noReturn = false;
  for (const step of p.steps) {
    if (step.noReturn) noReturn = true;
    try {
      await log.run(step.name, async () => (await step.run()) ?? undefined, (d) => d);
    } catch (err) {
      const failure = err instanceof StepFailure ? err : new StepFailure(step.name, String(err), err);
      if (!noReturn && (await p.blocked?.(failure.original))) return { kind: 'blocked', steps: log.records, failedStep: step.name, error: failure.reason };
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
  await attempt(p.always);
  return { kind: 'done', steps: log.records };
}
