/**
 * Phase 4 operations of a running sidecar, with its configuration: the final gate (recorded in the audit log),
 * the source snapshot, and decommission (refused until the final gate passed; every step audited; a dry run
 * returns the plan). Errors are values: `{ok: false, status, reason}` for the admin API to answer with.
 */
import type { StartConfig } from '../config/load.js';
import type { CutoverState } from '../domain/states.js';
import type { StateStore } from '../control/store.js';
import { backendUrl } from '../net/database-url.js';
import { connectControl } from '../replication/control-conn.js';
import { decommission, planDecommission, type DecommissionContext, type PlannedStep, type StepOutcome } from '../replication/decommission.js';
import { dmsMonitor, type AwsClientSettings } from '../replication/dms-monitor.js';
import { runFinalGate } from '../replication/final-gate.js';
import type { GateResult } from '../domain/gate-result.js';
import { parseSnapshotDest, takeSnapshot, type SnapshotRecord } from '../replication/snapshot.js';
import { gateAuditEntry } from '../domain/audit.js';
import { buildExecutionLog, lastGateRuns } from './log.js';

export type OpResult<T> = { ok: true; value: T } | { ok: false; status: number; reason: string; value?: T };

export interface OperationsDeps {
  readonly cfg: StartConfig;
  readonly store: StateStore;
  state(): CutoverState;
  /** Stops what would recreate replication objects (heartbeat probe, monitor, slot advancer) before decommission. */
  stopReplicationWatch(): Promise<void>;
  readonly now?: () => number;
}

const DAY_MS = 24 * 3600_000;

/** StopReplicationTask, idempotent: DMS refuses to stop a task that is not running, which is the state we want. */
export async function stopDmsTask(taskArn: string, aws?: AwsClientSettings): Promise<string> {
  try {
    await dmsMonitor({ taskArn, ...(aws ? { aws } : {}) }).pause();
    return 'replication task stopped';
  } catch (e) {
    const err = e as { name?: string; message?: string };
    if (/InvalidResourceState/.test(err.name ?? '') || /InvalidResourceState|not running|is stopped/i.test(err.message ?? '')) return `already stopped (${err.message ?? err.name})`;
    throw e;
  }
}

export function createOperations(d: OperationsDeps) {
  const { cfg } = d;
  const now = d.now ?? Date.now;
  const src = backendUrl(cfg.control.source);
  const tgt = backendUrl(cfg.control.target);
  const aws = cfg.aws.endpoint || cfg.aws.region ? { ...(cfg.aws.region ? { region: cfg.aws.region } : {}), ...(cfg.aws.endpoint ? { endpoint: cfg.aws.endpoint } : {}) } : undefined;
  const names = cfg.subscription ? { subscription: cfg.subscription } : {};
  let busy: string | null = null;
  /** One Phase 4 operation at a time in this sidecar: a snapshot during decommission would race it. */
  const exclusive = async <T>(what: string, fn: () => Promise<OpResult<T>>): Promise<OpResult<T>> => {
    if (busy) return { ok: false, status: 409, reason: `${busy} is running; try again when it has finished` };
    busy = what;
    try {
      return await fn();
    } finally {
      busy = null;
    }
  };

  async function finalGate(by: string): Promise<OpResult<GateResult>> {
    return exclusive('the final gate', async () => {
      const audit = await d.store.audit(10_000);
      const r = await runFinalGate({
        sourceUrl: src,
        targetUrl: tgt,
        state: d.state(),
        audit,
        stabilityWindowMs: cfg.finish.stabilityDays * DAY_MS * cfg.timeScale,
        stabilityDays: cfg.finish.stabilityDays,
        names,
        pgBinDir: cfg.finish.pgBinDir,
        ...(aws ? { aws } : {}),
        now,
      });
      await d.store.appendAudit(gateAuditEntry({ gate: 'final', passed: r.passed, startedAt: r.at, endedAt: r.at + r.ms, criteria: r.criteria }, by));
      return { ok: true, value: r };
    });
  }

  async function snapshot(to: string | undefined, by: string): Promise<OpResult<SnapshotRecord>> {
    const where = to ?? cfg.finish.snapshotTo;
    if (!where) return { ok: false, status: 400, reason: 'no destination: pass {"to": "s3://bucket/key" | "/path"} or start the sidecar with --snapshot-to' };
    const dest = parseSnapshotDest(where);
    if (!dest) return { ok: false, status: 400, reason: `"to" must be s3://bucket/key or a file path, got ${JSON.stringify(where)}` };
    return exclusive('a snapshot', async () => {
      const r = await takeSnapshot({ sourceUrl: src, pgBinDir: cfg.finish.pgBinDir, dest, ...(aws ? { aws } : {}), now });
      await d.store.appendAudit({ at: now(), by, kind: 'snapshot', reason: r.ok ? `snapshot archived to ${r.location}` : `snapshot failed: ${r.error}`, detail: { ...r } });
      return r.ok ? { ok: true, value: r } : { ok: false, status: 502, reason: r.error ?? 'snapshot failed', value: r };
    });
  }

  async function withContext<T>(fn: (c: DecommissionContext, recorded: boolean) => Promise<T>): Promise<T> {
    const audit = await d.store.audit(10_000);
    const recorded = audit.some((e) => e.kind === 'decommissioned');
    const [source, target] = await Promise.all([connectControl(src, { purpose: 'decommission' }), connectControl(tgt, { purpose: 'decommission' })]);
    try {
      const ctx: DecommissionContext = {
        ...names,
        source,
        target,
        recorded,
        appRoles: cfg.appRoles,
        ...(cfg.dmsTaskArn ? { stopDms: () => stopDmsTask(cfg.dmsTaskArn!, aws) } : {}),
        record: () => d.store.appendAudit({ at: now(), by: 'decommission', kind: 'decommissioned', reason: 'the source was decommissioned: replication removed, application logins revoked' }),
        now,
      };
      return await fn(ctx, recorded);
    } finally {
      await Promise.allSettled([source.end(), target.end()]);
    }
  }

  /** Refused unless the last final gate passed and no rollback came after it. */
  async function precondition(): Promise<string | null> {
    const audit = await d.store.audit(10_000);
    const fin = lastGateRuns(buildExecutionLog(audit)).final;
    if (!fin) return 'the final gate has not been run: pg-cutover gate final';
    if (!fin.passed) return `the last final gate (${new Date(fin.at).toISOString()}) failed: ${fin.criteria.filter((c) => !c.passed).map((c) => c.name).join(', ')}`;
    const rollback = audit.find((e) => e.to === 'ROLLBACK' && e.at > fin.at);
    if (rollback) return `a rollback (${new Date(rollback.at).toISOString()}) came after the final gate passed: run it again`;
    if (d.state() !== 'CUTOVER_COMPLETE') return `the state is ${d.state()}, not CUTOVER_COMPLETE`;
    return null;
  }

  async function decommissionRun(dryRun: boolean, by: string): Promise<OpResult<{ dryRun: boolean; refused?: string; plan?: PlannedStep[]; steps?: StepOutcome[] }>> {
    const refused = await precondition();
    if (dryRun) {
      const plan = await withContext((c) => planDecommission(c));
      return { ok: true, value: { dryRun: true, ...(refused ? { refused } : {}), plan } };
    }
    if (refused) return { ok: false, status: 409, reason: `decommission refused: ${refused}` };
    return exclusive('decommission', async () => {
      await d.stopReplicationWatch();
      const r = await withContext((c) => decommission(c, (o) => d.store.appendAudit({ at: now(), by, kind: 'decommission-step', reason: `${o.step}: ${o.skipped ? 'already done' : o.ok ? 'done' : 'FAILED'}`, detail: { ...o } })));
      return r.ok
        ? { ok: true, value: { dryRun: false, steps: r.steps } }
        : { ok: false, status: 500, reason: `decommission stopped at ${r.steps[r.steps.length - 1]!.step}: ${r.steps[r.steps.length - 1]!.detail} (run it again to resume)`, value: { dryRun: false, steps: r.steps } };
    });
  }

  return { finalGate, snapshot, decommission: decommissionRun };
}
export type Operations = ReturnType<typeof createOperations>;
