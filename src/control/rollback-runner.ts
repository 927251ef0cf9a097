/**
 * The rollback procedure of DESIGN.md, run by the sidecar whose compare-and-set committed ROLLBACK; every
 * other sidecar has already stopped sending writes to the target by following the published state.
 * Each step is appended to the audit stream with its start, end and outcome.
 */
import { log } from '../support/log.js';
import type { CutoverSnapshot } from '../domain/cutover-machine.js';
import { STATE_POLICY } from '../domain/states.js';
import type { StateStore } from './store.js';

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
  const step = async (name: string, fn: () => Promise<Record<string, unknown> | void>): Promise<boolean> => {
    const started = r.now();
    try {
      const detail = (await fn()) ?? {};
      await r.store.appendAudit({ at: r.now(), by: 'rollback-runner', kind: 'rollback-step', reason: name, detail: { started, ended: r.now(), ok: true, ...detail } });
      return true;
    } catch (e) {
      const error = (e as Error).message;
      log.error({ step: name, err: error }, 'rollback step failed');
      await r.store.appendAudit({ at: r.now(), by: 'rollback-runner', kind: 'rollback-step', reason: name, detail: { started, ended: r.now(), ok: false, error } });
      return false;
    }
  };
  const writesMoved = STATE_POLICY[r.from.state].writesTo === 'target';
  await step('1 writes off the target (state published)', async () => ({ from: r.from.state, version: r.at.version, reason: r.at.reason }));
  await step('2 drain in-flight target transactions', async () => r.hooks.drainTarget(r.drainMs ?? 30_000));
  if (writesMoved) {
    let reverted = false;
    const revert = async () => {
      reverted = await r.revert(`rollback aborted before the source was touched: writes stay on the target (${r.from.state})`);
      if (!reverted) throw new Error(`could not put the state back to ${r.from.state}`);
    };
    const ok = await restoreWithRetry(r, step, revert);
    if (!ok && reverted) {
      log.error({ state: r.from.state }, 'rollback aborted: writes stay on the target, state restored');
      return;
    }
    if (!ok) {
      // Without step 3 the source may lack acknowledged writes: stay in ROLLBACK for an operator.
      log.error('rollback halted: the source is not yet known to hold every write made on the target');
      return;
    }
  } else {
    await step('3 no writes had moved to the target: nothing to restore', async () => undefined);
  }
  await step('4 reads ramped back to the source', async () => {
    const wait = Math.max(0, r.at.since + r.rampMs - r.now()) + 20;
    await new Promise((res) => setTimeout(res, wait));
    return { rampMs: r.rampMs };
  });
  await step('5 replication paused', async () => ({ paused: await r.hooks.pauseReplication() }));
  // The read-ramp guard is judged on the clock: retry briefly if it is a hair early.
  let done = await r.finish('rollback procedure complete');
  for (let i = 0; i < 20 && !done.ok; i++) {
    await new Promise((res) => setTimeout(res, 100));
    done = await r.finish('rollback procedure complete');
  }
  await step('6 rollback complete', async () => ({ toSourcePrimary: done.ok }));
}

type Step = (name: string, fn: () => Promise<Record<string, unknown> | void>) => Promise<boolean>;

/**
 * Step 3, retried while a database is unreachable: the source stays fenced (the switchover's fence) and writes
 * stay held, then refused by that fence (25006), never acknowledged; each attempt is audited. It stops when the
 * state has moved on (an operator adopted the recorded writer) or the attempt ends any other way.
 */
async function restoreWithRetry(r: RollbackRun, step: Step, revert: () => Promise<void>): Promise<boolean> {
  const policy = r.retry ?? { firstMs: 2000, maxMs: 30_000 };
  const sleep = r.sleep ?? ((ms: number) => new Promise<void>((res) => setTimeout(res, ms)));
  const ours = () => {
    const cur = r.store.current();
    return cur.state === 'ROLLBACK' && cur.version === r.at.version;
  };
  let token: string | null = null;
  for (let attempt = 1; ; attempt++) {
    let blocked: RollbackBlocked | null = null;
    const ok = await step('3 reverse replication drained, sequences synced, source unfenced', async () => {
      try {
        return await r.hooks.restoreSourceAfterWrites(revert, token);
      } catch (e) {
        if (e instanceof RollbackBlocked) blocked = e;
        throw e;
      }
    });
    if (ok || blocked === null) return ok;
    token = (blocked as RollbackBlocked).lockToken;
    const waitMs = retryDelay(policy, attempt);
    log.warn({ attempt, waitMs, err: (blocked as RollbackBlocked).message }, 'rollback blocked: a database is unreachable; the source stays fenced, retrying');
    await r.store.appendAudit({ at: r.now(), by: 'rollback-runner', kind: 'rollback-step', reason: '3 blocked, retrying', detail: { attempt, retryInMs: waitMs, lockClaimed: token !== null } }).catch(() => undefined);
    await sleep(waitMs);
    if (!ours()) {
      log.warn({ state: r.store.current().state }, 'rollback stopped: the state moved on while it waited');
      await r.store.appendAudit({ at: r.now(), by: 'rollback-runner', kind: 'rollback-step', reason: '3 abandoned: the state moved on', detail: { attempt, state: r.store.current().state } }).catch(() => undefined);
      return false;
    }
  }
}
