/**
 * Write switchover SHADOW_WRITES → WRITES_TO_AURORA without losing a write (DESIGN.md "Write
 * switchover"), as steps over two control sessions and a WriteGate the proxy implements:
 *   lock: the writer-change lock on both databases (src/replication/writer-record.ts); a second request
 *     anywhere is refused with the holder's name
 *   0 preflight: forward replication running with every table copied, lag ≤ startLagBytes, the
 *     target can publish
 *   1–2 hold new writes and drain in-flight ones (gate.hold), then fence the source
 *   3 read the source's LSN, wait until the target has applied it
 *   4 set target sequences to the source's values
 *   5 disable the forward subscription (and wait for its worker to exit), start reverse replication
 *   6 unfence the target (an earlier rollback fenced it), release writes to the target
 * The fence of the source writes `{epoch, writer: target}` there in its own transaction; the unfence of
 * the target writes the same there. The steps are a table run by src/replication/procedure.ts: if one fails,
 * the undos of the steps that started run in reverse (the reverse replication this run created dropped,
 * forward re-enabled, source unfenced and recorded as writer again, writes released to the source). The lock
 * is released last.
 */
import type { Db } from './control-conn.js';
import { committedLsn, waitForApplied, walNudge } from './apply-wait.js';
import { fence, unfence } from './fence.js';
import { fenceProblems } from './fence-catalog.js';
import { acquireWriterLock, releaseWriterLock, type WriterLock } from './writer-record.js';
import { readNativeStatus } from './native.js';
import { directionNames, disableAndWait, startReverseReplication, stopReverseReplication, type DirectionNames, type ReverseCreated } from './reverse.js';
import { syncSequences } from './sequences.js';
import { withTimeout, type StepRecord } from './steps.js';
import { runProcedure, type ProcedureStep } from './procedure.js';
import { setSubscriptionEnabled, subscriptionInfo } from './subscription.js';
import type { Role } from '../domain/role.js';

/** What the proxy offers the switchover: hold application writes, then let them go to one side. */
export interface WriteGate {
  /**
   * Queue new write transactions (do not fail them) and resolve once every in-flight write
   * transaction has finished. With several sidecars: resolve once all have acknowledged.
   */
  hold(): Promise<void>;
  /** Stop holding: held and new writes go to `to`. */
  release(to: Role): void | Promise<void>;
}

export const SWITCHOVER_STEPS = [
  'lock-writer', 'preflight', 'hold-writes', 'fence-source', 'wait-target-applied', 'sync-sequences', 'disable-forward',
  'start-reverse', 'unfence-target', 'release-writes',
  // Undo, after a failure:
  'undo-reverse', 'undo-enable-forward', 'undo-unfence-source', 'undo-release-to-source',
  // Always, once the lock is held:
  'unlock-writer',
] as const;
export type SwitchoverStep = (typeof SWITCHOVER_STEPS)[number];

export interface SwitchoverOptions extends DirectionNames {
  /** Application roles to fence on the source (and unfence on the target). */
  appRoles: readonly string[];
  /** Who runs this (sidecar id): named to a second request while this one holds the writer lock. */
  holder?: string;
  /** How the source reaches the target, for the reverse subscription (URL or conninfo). */
  targetConninfo: string;
  /** Refuse to start above this replication lag. Default 1 MiB (switchoverStartLagBytes). */
  startLagBytes?: number;
  /** Longest wait for in-flight writes to drain. Default 30 s. */
  drainTimeoutMs?: number;
  /** Longest wait for the target to apply the source's last LSN. Default 5 s (switchoverPauseMs). */
  applyTimeoutMs?: number;
  now?: () => number;
}

export type SwitchoverResult = {
  readonly ok: boolean;
  readonly steps: readonly StepRecord<SwitchoverStep>[];
  /** From the start of the hold to the release (to either side); null if writes were never held. */
  readonly pauseMs: number | null;
  /** The source LSN the target applied before taking writes. */
  readonly switchLsn: string | null;
  /** Where writes go now. */
  readonly writesOn: Role;
  readonly failedStep?: SwitchoverStep;
  readonly error?: string;
};

export async function switchWritesToTarget(source: Db, target: Db, gate: WriteGate, opts: SwitchoverOptions): Promise<SwitchoverResult> {
  const now = opts.now ?? Date.now;
  const names = directionNames(opts);
  let holdStarted: number | null = null;
  let switchLsn: string | null = null;
  let lock: WriterLock | null = null;
  const held = (): WriterLock => lock!;
  const locked = () => lock !== null;
  const created: ReverseCreated = { publication: false, subscription: false };
  const steps: ProcedureStep<SwitchoverStep>[] = [
    {
      name: 'lock-writer',
      run: async () => {
        lock = await acquireWriterLock(source, target, opts.holder ?? 'switchover');
        return `epoch ${lock.epoch} by ${lock.holder}`;
      },
    },
    { name: 'preflight', run: async () => `lag ${await preflight(source, target, names, opts)} B` },
    {
      name: 'hold-writes',
      run: async () => {
        holdStarted = now();
        await withTimeout(gate.hold(), opts.drainTimeoutMs ?? 30_000, 'draining in-flight writes');
      },
      undo: { name: 'undo-release-to-source', run: async () => gate.release('source') },
    },
    {
      name: 'fence-source',
      run: async () => {
        const f = await fence(source, opts.appRoles, { lock: held(), writer: 'target' });
        return `${f.roles.join(', ')} fenced (${f.changes} right(s) taken), ${f.terminated} session(s) ended`;
      },
      undo: { name: 'undo-unfence-source', when: locked, run: () => unfence(source, opts.appRoles, { lock: held(), writer: 'source' }) },
    },
    {
      name: 'wait-target-applied',
      run: async () => {
        const lsn = await committedLsn(source, 'switchover');
        const w = await waitForApplied(target, names.subscription, lsn, { timeoutMs: opts.applyTimeoutMs ?? 5000, pollMs: 5, nudge: walNudge(source) });
        if (!w.ok) throw new Error(`the target applied only up to ${w.applied ?? 'nothing'} of ${lsn} within ${w.waitedMs} ms`);
        switchLsn = lsn;
        return `source LSN ${lsn} applied`;
      },
    },
    {
      name: 'sync-sequences',
      run: async () => {
        const r = await syncSequences(source, target);
        return `${r.set.length} sequence(s) set${r.missing.length ? `, missing on target: ${r.missing.join(', ')}` : ''}`;
      },
    },
    {
      name: 'disable-forward',
      run: async () => void (await disableAndWait(target, names.subscription)),
      undo: { name: 'undo-enable-forward', run: () => setSubscriptionEnabled(target, names.subscription, true) },
    },
    {
      name: 'start-reverse',
      run: async () => `${(await startReverseReplication(source, target, opts.targetConninfo, names, created)).length} table(s)`,
      // Only the publication / subscription this run created, never another run's.
      undo: { name: 'undo-reverse', when: () => created.publication || created.subscription, run: () => stopReverseReplication(source, target, names, created) },
    },
    {
      name: 'unfence-target',
      run: async () => {
        const u = await unfence(target, opts.appRoles, { lock: held(), writer: 'target' });
        return `${u.restored} right(s) given back${u.failed.length ? `, ${u.failed.length} failed: ${u.failed.join('; ')}` : ''}`;
      },
    },
    { name: 'release-writes', run: async () => void (await gate.release('target')) },
  ];
  const out = await runProcedure<SwitchoverStep>({ steps, always: [{ name: 'unlock-writer', when: locked, run: () => releaseWriterLock(source, target, held()) }] }, now);
  const pauseMs = holdStarted === null ? null : now() - holdStarted;
  if (out.kind === 'done') return { ok: true, steps: out.steps, pauseMs, switchLsn, writesOn: 'target' };
  return { ok: false, steps: out.steps, pauseMs, switchLsn, writesOn: 'source', failedStep: out.failedStep, error: out.error };
}

/** Step 0: forward replication running and caught up, the target can publish, both sides can be fenced. */
async function preflight(source: Db, target: Db, names: ReturnType<typeof directionNames>, opts: SwitchoverOptions): Promise<number> {
  const st = await readNativeStatus(source, target, names);
  if (!st.subscription) throw new Error(`forward subscription ${names.subscription} not found on the target`);
  if (!st.subscription.enabled || st.subscription.worker.pid === null) throw new Error(`forward subscription ${names.subscription} is not running`);
  const copying = st.subscription.tables.filter((x) => x.state !== 'r').map((x) => `${x.table} (${x.state})`);
  if (copying.length > 0) throw new Error(`the full load is not finished: ${copying.join(', ')}`);
  const max = opts.startLagBytes ?? 1024 * 1024;
  if (st.lagBytes === null || st.lagBytes > max) throw new Error(`replication lag ${st.lagBytes ?? 'unknown'} B is over ${max} B: the write pause would be long`);
  const wl = (await target.query<{ v: string }>(`SELECT current_setting('wal_level') AS v`)).rows[0]!.v;
  if (wl !== 'logical') throw new Error(`the target has wal_level = ${wl}: reverse replication (for rollback) needs logical`);
  if (await subscriptionInfo(source, names.reverseSubscription)) throw new Error(`a reverse subscription ${names.reverseSubscription} already exists on the source`);
  // The fence must hold on the source now and on the target for a later rollback: refuse before holding writes.
  for (const [side, db] of [['source', source], ['target', target]] as const) {
    const problems = await fenceProblems(db, opts.appRoles);
    if (problems.length > 0) throw new Error(`the ${side} cannot be fenced: ${problems.join('; ')}`);
  }
  return st.lagBytes;
}
