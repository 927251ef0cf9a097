/**
 * The rollback procedure of DESIGN.md, run by the sidecar whose compare-and-set committed ROLLBACK; every
 * other sidecar has already stopped sending writes to the target by following the published state.
 * It is a step table on the one procedure runner (replication/procedure.ts), like the switchover and the
 * database-level rollback it calls in step 3. Each step and each attempt is appended to the audit stream with
 * its start, end and outcome, under the numbered reason operators and the CLI read.
 */
import { log } from '../support/log.js';
import { runProcedure, type BlockedRetry, type ProcedureStep } from '../replication/procedure.js';
import type { StepRecord } from '../replication/steps.js';
import type { CutoverSnapshot } from '../domain/cutover-machine.js';
import { STATE_POLICY } from '../domain/states.js';
import type { StateStore } from './store.js';

/** The steps, in order; one of the two step-3 steps runs, by whether writes had moved to the target. */
export const CONTROL_ROLLBACK_STEPS = ['writes-off-target', 'drain-target', 'restore-source', 'nothing-to-restore', 'ramp-reads', 'pause-replication', 'complete'] as const;
export type ControlRollbackStep = (typeof CONTROL_ROLLBACK_STEPS)[number];

/** Each step's audit reason (DESIGN.md's numbering; the CLI's audit view and the tests read these). */
export const ROLLBACK_AUDIT_REASON: Readonly<Record<ControlRollbackStep, string>> = {
  'writes-off-target': '1 writes off the target (state published)',
  'drain-target': '2 drain in-flight target transactions',
  'restore-source': '3 reverse replication drained, sequences synced, source unfenced',
  'nothing-to-restore': '3 no writes had moved to the target: nothing to restore',
  'ramp-reads': '4 reads ramped back to the source',
  'pause-replication': '5 replication paused',
  complete: '6 rollback complete',
};

export interface RollbackHooks {
  /** Waits for in-flight transactions on the target to end (max `maxMs`), then cancels them; returns how many were cancelled. */
  drainTarget(maxMs: number): Promise<{ waitedMs: number; cancelled: number }>;
  /**
   * Writes had moved to the target: fence it, wait for reverse replication to apply its writes on the
   * source, sync sequences, restore forward replication, unfence the source (DESIGN.md step 3). When it fails
   * before the source was touched, writes stay on the target: it calls `revert` (the state goes back to the
   * one the rollback left) before releasing them there, then rejects. When a database cannot be reached before
   * the source was touched it rejects with RollbackBlocked (nothing undone, writes held, the writer lock kept or
   * claimed on the source): the runner calls it again with that lock's token.
   */
  restoreSourceAfterWrites(revert: () => Promise<void>, lockToken: string | null): Promise<Record<string, unknown>>;
  /** Pause replication (ALTER SUBSCRIPTION … DISABLE / DMS StopReplicationTask); false when none is configured. */
  pauseReplication(): Promise<boolean>;
}

/** Step 3 cannot go on yet (a database is unreachable); `lockToken`: the writer lock this run holds or claimed. */
export class RollbackBlocked extends Error {
  constructor(message: string, readonly lockToken: string | null) {
    super(message);
  }
}

/** Backoff between attempts of a blocked step: `firstMs`, doubled each time up to `maxMs`. */
export interface RetryPolicy {
  readonly firstMs: number;
  readonly maxMs: number;
}

/** Pure: the wait before attempt `attempt + 1` (attempt counts from 1). */
export function retryDelay(p: RetryPolicy, attempt: number): number {
  return Math.min(p.maxMs, p.firstMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
}

export interface RollbackRun {
  from: CutoverSnapshot;
  at: CutoverSnapshot;
  hooks: RollbackHooks;
  store: StateStore;
  by: string;
  rampMs: number;
  now: () => number;
  finish(reason: string): Promise<{ ok: boolean }>;
  /** Put the state back to `from` (the rollback aborted with writes still on the target). */
  revert(reason: string): Promise<boolean>;
  /** Backoff of a blocked step 3 (default 2 s doubling to 30 s; the sidecar scales it with --time-scale). */
  retry?: RetryPolicy;
  /** How long open target transactions get to end (step 2) before they are cancelled. Default 30 s. */
  drainMs?: number;
  /** Waits `ms` (a fake clock in unit tests). */
  sleep?: (ms: number) => Promise<void>;
}

export async function runRollback(r: RollbackRun): Promise<void> {
  const writesMoved = STATE_POLICY[r.from.state].writesTo === 'target';
  let reverted = false;
  const revert = async () => {
    reverted = await r.revert(`rollback aborted before the source was touched: writes stay on the target (${r.from.state})`);
    if (!reverted) throw new Error(`could not put the state back to ${r.from.state}`);
  };
  // The writer lock a blocked step 3 holds or claimed, carried to its next attempt.
  let token: string | null = null;
  const restore: ProcedureStep<ControlRollbackStep> = {
    name: 'restore-source',
    run: async () => {
      try {
        return await r.hooks.restoreSourceAfterWrites(revert, token);
      } catch (e) {
        if (e instanceof RollbackBlocked) token = e.lockToken;
        throw e;
      }
    },
  };
  // Every step but 3 goes on after a failure: each is recorded, and what follows does not depend on it (a
  // drain that runs out of time leaves the rest to the fence; a replication that cannot be paused is reported).
  const steps: ProcedureStep<ControlRollbackStep>[] = [
    { name: 'writes-off-target', mayFail: true, run: async () => ({ from: r.from.state, version: r.at.version, reason: r.at.reason }) },
    { name: 'drain-target', mayFail: true, run: () => r.hooks.drainTarget(r.drainMs ?? 30_000) },
    writesMoved ? restore : { name: 'nothing-to-restore', mayFail: true, run: async () => undefined },
    {
      name: 'ramp-reads',
      mayFail: true,
      run: async () => {
        const wait = Math.max(0, r.at.since + r.rampMs - r.now()) + 20;
        await new Promise((res) => setTimeout(res, wait));
        return { rampMs: r.rampMs };
      },
    },
    { name: 'pause-replication', mayFail: true, run: async () => ({ paused: await r.hooks.pauseReplication() }) },
    { name: 'complete', mayFail: true, run: async () => ({ toSourcePrimary: (await finishRollback(r)).ok }) },
  ];
  const out = await runProcedure<ControlRollbackStep>({ steps, blocked: (e) => e instanceof RollbackBlocked, retry: waitForDatabases(r, () => token), onRecord: (rec) => audit(r, rec) }, r.now);
  switch (out.kind) {
    case 'done':
      return;
    case 'blocked': // the state moved on while step 3 waited (waitForDatabases): nothing to undo
      return;
    case 'undone':
    case 'forward':
      if (reverted) log.error({ state: r.from.state }, 'rollback aborted: writes stay on the target, state restored');
      // Without step 3 the source may lack acknowledged writes: stay in ROLLBACK for an operator.
      else log.error('rollback halted: the source is not yet known to hold every write made on the target');
      return;
  }
}

async function audit(r: RollbackRun, rec: StepRecord<ControlRollbackStep>): Promise<void> {
  const reason = ROLLBACK_AUDIT_REASON[rec.step];
  if (!rec.ok) log.error({ step: reason, err: rec.error }, 'rollback step failed');
  const outcome = rec.ok ? { ok: true, ...rec.data } : { ok: false, error: rec.error };
  // The stores buffer what they cannot write; an audit that still fails must not stop a rollback.
  await r.store
    .appendAudit({ at: r.now(), by: 'rollback-runner', kind: 'rollback-step', reason, detail: { started: rec.startedAt, ended: rec.startedAt + rec.ms, ...outcome } })
    .catch((e: unknown) => log.warn({ step: reason, err: (e as Error).message }, 'rollback step not audited'));
}

/** To SOURCE_PRIMARY. The read-ramp guard is judged on the clock: retry briefly if it is a hair early. */
async function finishRollback(r: RollbackRun): Promise<{ ok: boolean }> {
  let done = await r.finish('rollback procedure complete');
  for (let i = 0; i < 20 && !done.ok; i++) {
    await new Promise((res) => setTimeout(res, 100));
    done = await r.finish('rollback procedure complete');
  }
  return done;
}

/**
 * Step 3, retried while a database is unreachable: the source stays fenced (the switchover's fence) and writes
 * stay held, then refused by that fence (25006), never acknowledged; each attempt is audited. It stops when the
 * state has moved on (an operator adopted the recorded writer); any other failure ends the run at once.
 */
function waitForDatabases(r: RollbackRun, token: () => string | null): BlockedRetry<ControlRollbackStep> {
  const policy = r.retry ?? { firstMs: 2000, maxMs: 30_000 };
  const ours = () => {
    const cur = r.store.current();
    return cur.state === 'ROLLBACK' && cur.version === r.at.version;
  };
  return {
    delayMs: (attempt) => retryDelay(policy, attempt),
    sleep: r.sleep ?? ((ms: number) => new Promise<void>((res) => setTimeout(res, ms))),
    async onBlocked(_step, attempt, waitMs, err) {
      log.warn({ attempt, waitMs, err: (err as Error).message }, 'rollback blocked: a database is unreachable; the source stays fenced, retrying');
      await r.store.appendAudit({ at: r.now(), by: 'rollback-runner', kind: 'rollback-step', reason: '3 blocked, retrying', detail: { attempt, retryInMs: waitMs, lockClaimed: token() !== null } }).catch(() => undefined);
    },
    async proceed(_step, attempt) {
      if (ours()) return true;
      log.warn({ state: r.store.current().state }, 'rollback stopped: the state moved on while it waited');
      await r.store.appendAudit({ at: r.now(), by: 'rollback-runner', kind: 'rollback-step', reason: '3 abandoned: the state moved on', detail: { attempt, state: r.store.current().state } }).catch(() => undefined);
      return false;
    },
  };
}
