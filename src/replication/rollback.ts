/**
 * Rollback after writes moved to the target (WRITES_TO_AURORA / SOURCE_READ_ONLY → ROLLBACK), with
 * zero data loss (DESIGN.md "Rollback procedure", steps 1–3):
 *   hold writes and drain (max drainTimeoutMs; stragglers are ended by the fence), fence the
 *   target, wait until reverse replication has applied the target's LSN on the source, set source
 *   sequences to the target's values, drop reverse replication, advance the forward slot past the
 *   WAL that came from the target (PostgreSQL < 16 cannot filter it by origin), re-enable forward
 *   replication, unfence the source, release writes to the source.
 * A failure before the source is touched (up to the sequence sync) puts writes back on the target,
 * unfenced: a working if unwanted state, never a lost write. After that, the source has every
 * write, so the procedure still unfences it and releases writes there, and reports what failed.
 */
import type { Db } from './control-conn.js';
import { committedLsn, waitForApplied, walNudge } from './apply-wait.js';
import { fence, unfence } from './fence.js';
import { fenceProblems } from './fence-catalog.js';
import { acquireWriterLock, readWriterRecord, releaseWriterLock, type WriterLock, type WriterRecord } from './writer-record.js';
import { advanceSlot, directionNames, stopReverseReplication, type DirectionNames } from './reverse.js';
import { syncSequences } from './sequences.js';
import { withTimeout, type StepRecord } from './steps.js';
import { runProcedure, type ProcedureStep } from './procedure.js';
import { setSubscriptionEnabled, subscriptionInfo } from './subscription.js';
import type { WriteGate } from './switchover.js';
import type { Role } from '../domain/role.js';
import { SqlState } from '../protocol/sqlstate.js';
import { isUnreachable } from './unreachable.js';

export const ROLLBACK_STEPS = [
  'lock-writer', 'hold-writes', 'fence-target', 'wait-source-applied', 'sync-sequences', 'drop-reverse', 'advance-forward-slot',
  'enable-forward', 'unfence-source', 'release-writes',
  // After a failure:
  'undo-unfence-target', 'undo-release-to-target', 'finish-unfence-source', 'finish-release-to-source',
  'unlock-writer',
] as const;
export type RollbackStep = (typeof ROLLBACK_STEPS)[number];


export interface RollbackOptions extends DirectionNames {
  appRoles: readonly string[];
  /** Who runs this (sidecar id): named to a second request while this one holds the writer lock. */
  holder?: string;
  /** Resume a blocked run: the token of its writer lock (claimed or taken before), which must still hold. */
  lockToken?: string;
  /** Wait this long for in-flight target writes; then the fence ends them. Default 30 s. */
  drainTimeoutMs?: number;
  /** Longest wait for reverse replication to apply the target's LSN on the source. Default 60 s. */
  applyTimeoutMs?: number;
  now?: () => number;
}

export interface RollbackResult {
  readonly ok: boolean;
  readonly steps: readonly StepRecord<RollbackStep>[];
  /** From the start of the hold to the release; null if writes were never held. */
  readonly pauseMs: number | null;
  /** The target LSN the source applied before taking writes back. */
  readonly targetLsn: string | null;
  /** `none` (blocked): writes stay held, then meet the source's fence, until the run resumes. */
  readonly writesOn: Role | 'none';
  readonly failedStep?: RollbackStep;
  readonly error?: string;
  /**
   * A database could not be reached before the source was touched: nothing was undone (the target keeps any
   * fence, the lock stays held, writes stay held): retry with `lockToken` once it answers.
   */
  readonly blocked?: boolean;
  readonly lockToken?: string | null;
}

export async function rollbackWritesToSource(source: Db, target: Db, gate: WriteGate, opts: RollbackOptions): Promise<RollbackResult> {
  const now = opts.now ?? Date.now;
  const names = directionNames(opts);
  const holdStarted = now();
  let targetLsn: string | null = null;
  let lock: WriterLock | null = null;
  let sourceUnfenced = false;
  // The databases, not this run's memory, say whether the source is already the writer (DESIGN "Fencing" 3).
  let alreadyDone: string | null = null;
  let releasedTo: Role | null = null;
  const held = (): WriterLock => lock!;
  const locked = () => lock !== null;
  const unlessDone = (run: () => Promise<string | void>) => async () => (alreadyDone !== null ? `skipped: ${alreadyDone}` : run());
  const steps: ProcedureStep<RollbackStep>[] = [
    {
      // Before anything else: a second writer change anywhere is refused here, and this one's fence must hold.
      name: 'lock-writer',
      run: async () => {
        const problems = await fenceProblems(target, opts.appRoles);
        if (problems.length > 0) throw new Error(`the target cannot be fenced: ${problems.join('; ')}`);
        lock = await acquireWriterLock(source, target, opts.holder ?? 'rollback', opts.lockToken);
        // A rollback already completed (by this or another sidecar, e.g. during a store outage): the source
        // writes, unfenced. Nothing to restore, and writes must never go back to the target.
        const rec = await readWriterRecord(source, target);
        if (sourceWrites(rec)) alreadyDone = `the databases record the source as writer, unfenced (epoch ${rec.epoch}): a rollback already completed`;
        return `epoch ${lock.epoch} by ${lock.holder}${alreadyDone ? `; ${alreadyDone}, nothing to restore` : ''}`;
      },
    },
    {
      name: 'hold-writes',
      run: unlessDone(async () => {
        // Not a failure when it times out: fencing the target next ends what is still running.
        try {
          await withTimeout(gate.hold(), opts.drainTimeoutMs ?? 30_000, 'draining in-flight writes');
          return 'drained';
        } catch (err) {
          return `not drained in time (${(err as Error).message}); the fence ends the rest`;
        }
      }),
    },
    {
      name: 'fence-target',
      run: unlessDone(async () => {
        const f = await fence(target, opts.appRoles, { lock: held(), writer: 'source' });
        return `${f.roles.join(', ')} fenced (${f.changes} right(s) taken), ${f.terminated} session(s) ended`;
      }),
      // Only what this run fenced is given back: a run refused at the lock touched nothing.
      undo: { name: 'undo-unfence-target', when: () => locked() && alreadyDone === null, run: () => unfence(target, opts.appRoles, { lock: held(), writer: 'target' }) },
    },
    {
      name: 'wait-source-applied',
      run: unlessDone(async () => {
        const lsn = await committedLsn(target, 'rollback');
        // A target that dies meanwhile ends the wait at once (blocked), not after the whole bound.
        const watch = watchAlive(target);
        const w = await Promise.race([waitForApplied(source, names.reverseSubscription, lsn, { timeoutMs: opts.applyTimeoutMs ?? 60_000, pollMs: 5, nudge: walNudge(target) }), watch.gone]).finally(watch.stop);
        if (!w.ok) throw new Error(`reverse replication applied only up to ${w.applied ?? 'nothing'} of the target's ${lsn} within ${w.waitedMs} ms`);
        targetLsn = lsn;
        return `target LSN ${lsn} applied on the source`;
      }),
    },
    { name: 'sync-sequences', run: unlessDone(async () => `${(await syncSequences(target, source)).set.length} sequence(s) set`) },
    // The source holds every write now: from here a failure goes forward (writes to the source), never back.
    { name: 'drop-reverse', noReturn: true, run: unlessDone(async () => void (await stopReverseReplication(source, target, names))) },
    {
      name: 'advance-forward-slot',
      run: unlessDone(async () => {
        const sub = await subscriptionInfo(target, names.subscription);
        if (!sub?.slot) throw new Error(`forward subscription ${names.subscription} (with a slot) not found on the target`);
        if (sub.enabled) throw new Error(`forward subscription ${names.subscription} is enabled; expected it disabled since the switchover`);
        const a = await advanceSlot(source, sub.slot);
        return `slot ${a.slot} ${a.from ?? '?'} → ${a.to} (${a.skipped} B skipped)`;
      }),
    },
    { name: 'enable-forward', run: unlessDone(async () => void (await setSubscriptionEnabled(target, names.subscription, true))) },
    {
      name: 'unfence-source',
      run: unlessDone(async () => {
        const u = await unfence(source, opts.appRoles, { lock: held(), writer: 'source' });
        sourceUnfenced = true;
        return `${u.restored} right(s) given back, ${u.replaced} session(s) opened under the fence ended${u.failed.length ? `, ${u.failed.length} failed: ${u.failed.join('; ')}` : ''}`;
      }),
    },
    { name: 'release-writes', run: async () => void (await gate.release('source')) },
  ];
  const out = await runProcedure<RollbackStep>({
    steps,
    // Writes go back to the target only when the databases say it is the writer again (its fence undone); if they
    // record the source as writer, unfenced (a rollback completed meanwhile), writes go to the source.
    abort: [{ name: 'undo-release-to-target', run: async () => {
      const rec = await readWriterRecord(source, target).catch(() => null);
      releasedTo = rec !== null && sourceWrites(rec) ? 'source' : 'target';
      await gate.release(releasedTo);
      return releasedTo === 'source' ? 'the databases record the source as writer, unfenced: released to the source, not the target' : undefined;
    } }],
    finish: [
      { name: 'finish-unfence-source', when: () => !sourceUnfenced, run: () => unfence(source, opts.appRoles, { lock: held(), writer: 'source' }) },
      { name: 'finish-release-to-source', run: async () => gate.release('source') },
    ],
    always: [{ name: 'unlock-writer', when: locked, run: () => releaseWriterLock(source, target, held()) }],
    // Unreachable by the error itself, or by a database gone now (a wait that timed out because the target died):
    // undoing half-blind there would leave a fenced side no one can unfence.
    blocked: async (err) => isUnreachable(err) || !(await answers(target)) || !(await answers(source)),
  }, now);
  const base = { steps: out.steps, pauseMs: now() - holdStarted, targetLsn };
  switch (out.kind) {
    case 'done':
      return { ok: true, ...base, writesOn: 'source' };
    case 'blocked':
      // The target may hold writes the source lacks: never release to the source, never undo half-blind.
      return { ok: false, ...base, blocked: true, lockToken: (lock as WriterLock | null)?.token ?? opts.lockToken ?? null, writesOn: 'none', failedStep: out.failedStep, error: `${out.error} (rollback blocked: a database is unreachable; retry)` };
    case 'forward':
      return { ok: false, ...base, writesOn: 'source', failedStep: out.failedStep, error: `${out.error} (writes are on the source, which has every write; forward replication needs repair)` };
    case 'undone':
      return { ok: false, ...base, writesOn: releasedTo ?? 'target', failedStep: out.failedStep, error: `${out.error} (rollback aborted: writes stay on the target)` };
  }
}

/** Both records name the source as writer and it is not fenced: it takes the writes (a rollback completed). */
export function sourceWrites(rec: Pick<WriterRecord, 'epoch' | 'writer' | 'source'>): boolean {
  return rec.epoch > 0 && rec.writer === 'source' && rec.source.writer === 'source' && !rec.source.fenced;
}

/** The control session still gets an answer (within 5 s). */
function answers(db: Db): Promise<boolean> {
  return withTimeout(db.query('SELECT 1'), 5000, 'a liveness probe').then(() => true, () => false);
}

/** Probes `db` every second; `gone` rejects (as an unreachable database) once it stops answering. */
function watchAlive(db: Db): { gone: Promise<never>; stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const gone = new Promise<never>((_, reject) => {
    const tick = async () => {
      if (stopped) return;
      if (!(await answers(db))) return reject(Object.assign(new Error('the target stopped answering during the wait'), { code: SqlState.ConnectionFailure }));
      if (!stopped) timer = setTimeout(() => void tick(), 1000);
    };
    timer = setTimeout(() => void tick(), 1000);
  });
  gone.catch(() => undefined);
  return { gone, stop: () => ((stopped = true), clearTimeout(timer)) };
}
