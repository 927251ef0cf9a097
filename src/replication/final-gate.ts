/**
 * The final gate (seed Phase 4, before decommission): the stability window passed without a rollback, full
 * checksums equal in the current replication direction, a source snapshot archived and verified (read back
 * now), and no application session left on the source. Every criterion carries its measured value.
 */
import type { AuditEntry } from '../domain/audit.js';
import type { CutoverState } from '../domain/states.js';
import { formatDuration } from '../domain/duration.js';
import { CONTROL_APPLICATION_NAME, connectControl, controlPool, type Db } from './control-conn.js';
import { CHECKSUM_SESSION_SETTINGS } from './checksum.js';
import { compareTables, subscriptionSync, type TableComparison } from './chunk-check.js';
import { criterion, gateResult, type Criterion, type GateResult } from '../domain/gate-result.js';
import { tableCriteria } from './gate2.js';
import { HEARTBEAT_TABLE } from './heartbeat.js';
import { directionNames, type DirectionNames } from './reverse.js';
import { describeDest, parseSnapshotDest, verifySnapshot } from './snapshot.js';
import type { AwsClientSettings } from './dms-monitor.js';
import type { RowDifference } from './narrow.js';
import { publicationExists, subscriptionInfo } from './subscription.js';
import { publicationTables, resolveTables } from './tables.js';

export interface FinalGateOptions {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly state: CutoverState;
  /** The audit log, any order: switchover, rollbacks and snapshots are read from it. */
  readonly audit: readonly AuditEntry[];
  /** 90 days, scaled by --time-scale. */
  readonly stabilityWindowMs: number;
  /** The window in unscaled days, for the criterion's label. Default 90. */
  readonly stabilityDays?: number;
  readonly names?: DirectionNames;
  readonly pgBinDir: string;
  readonly aws?: AwsClientSettings;
  readonly chunkRows?: number;
  readonly now?: () => number;
}

export interface Stability {
  /** When writes last moved to the target; null if they never did. */
  readonly writesMovedAt: number | null;
  readonly rollbacksInWindow: readonly AuditEntry[];
  readonly passed: boolean;
}

const isTo = (e: AuditEntry, s: CutoverState) => (e.kind === 'transition' || e.kind === 'override') && e.to === s;

/** Writes on the target for the whole window, and no rollback within it. Pure. */
export function judgeStability(audit: readonly AuditEntry[], now: number, windowMs: number): Stability {
  const moved = audit.filter((e) => isTo(e, 'WRITES_TO_AURORA')).map((e) => e.at);
  const writesMovedAt = moved.length ? Math.max(...moved) : null;
  const rollbacksInWindow = audit.filter((e) => isTo(e, 'ROLLBACK') && e.at >= now - windowMs);
  return { writesMovedAt, rollbacksInWindow, passed: writesMovedAt !== null && now - writesMovedAt >= windowMs && rollbacksInWindow.length === 0 };
}

export interface SnapshotFact {
  readonly at: number;
  readonly ok: boolean;
  readonly location: string;
  readonly bytes?: number;
  readonly sha256?: string;
  readonly tocEntries?: number;
  readonly error?: string;
}

/** The newest snapshot record (kind 'snapshot'), successful or not. Pure. */
export function lastSnapshot(audit: readonly AuditEntry[]): SnapshotFact | null {
  const s = audit.filter((e) => e.kind === 'snapshot').sort((a, b) => a.at - b.at).pop();
  if (!s) return null;
  const d = (s.detail ?? {}) as Record<string, unknown>;
  return {
    at: s.at,
    ok: d.ok === true,
    location: String(d.location ?? ''),
    ...(typeof d.bytes === 'number' ? { bytes: d.bytes } : {}),
    ...(typeof d.sha256 === 'string' ? { sha256: d.sha256 } : {}),
    ...(typeof d.tocEntries === 'number' ? { tocEntries: d.tocEntries } : {}),
    ...(typeof d.error === 'string' ? { error: d.error } : {}),
  };
}

export interface SourceSession {
  readonly pid: number;
  readonly user: string;
  readonly application: string;
  readonly client: string | null;
  readonly state: string | null;
}

/**
 * Application sessions on the source: client backends other than ours. Walsenders and apply workers are not
 * client backends; the control plane's sessions are those of its own login with its application_name (a
 * client cannot claim both).
 */
export async function applicationSessions(db: Db): Promise<SourceSession[]> {
  const r = await db.query<{ pid: number; usename: string; application_name: string; client_addr: string | null; state: string | null }>(
    `SELECT pid, usename::text, coalesce(application_name, '') AS application_name, client_addr::text, state
       FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
        AND NOT (usename = current_user AND coalesce(application_name, '') LIKE $1)
      ORDER BY pid`,
    [`${CONTROL_APPLICATION_NAME}%`],
  );
  return r.rows.map((x) => ({ pid: x.pid, user: x.usename, application: x.application_name, client: x.client_addr, state: x.state }));
}

/** Checksums in the direction replication runs now: target → source while writes are on the target. */
async function checksumCriteria(o: FinalGateOptions, s: Db, t: Db): Promise<Criterion[]> {
  const names = directionNames(o.names);
  const reverse = await subscriptionInfo(s, names.reverseSubscription);
  const tables = ((await publicationExists(s, names.publication)) ? await publicationTables(s, names.publication) : (await resolveTables(s, 'all')).tables)
    .filter((x) => !(x.schema === 'public' && x.name === HEARTBEAT_TABLE));
  if (tables.length === 0) return [criterion('checksums', 'no tables found', 'every table equal', false)];
  const pools = {
    source: controlPool(o.sourceUrl, 3, { purpose: 'final-gate', settings: CHECKSUM_SESSION_SETTINGS }),
    target: controlPool(o.targetUrl, 3, { purpose: 'final-gate', settings: CHECKSUM_SESSION_SETTINGS }),
  };
  try {
    // The publisher is compared first and the subscriber made as current as it before a differing chunk is judged.
    const writesOnTarget = reverse !== null;
    const sync = writesOnTarget
      ? subscriptionSync(names.reverseSubscription, 10_000)
      : async () => (await new Promise((r) => setTimeout(r, 500)), true);
    const compared = await compareTables({
      source: writesOnTarget ? pools.target : pools.source,
      target: writesOnTarget ? pools.source : pools.target,
      concurrency: 2,
      chunkRows: o.chunkRows ?? 10_000,
      rechecks: 5,
      maxRows: 20,
      sync,
    }, tables);
    const dir = writesOnTarget ? `target → source (reverse subscription ${names.reverseSubscription})` : 'source and target, no reverse replication running';
    return compared.flatMap((c): Criterion[] => {
      const asSourceTarget: TableComparison = writesOnTarget ? swapSides(c) : c;
      return tableCriteria(asSourceTarget).map((x) => ({ ...x, detail: [x.detail, `compared ${dir}`].filter(Boolean).join('\n') }));
    });
  } finally {
    await Promise.all([pools.source.end(), pools.target.end()].map((p) => p.catch(() => undefined)));
  }
}

/** A comparison made publisher-first (target → source) told as source and target again, rows included. */
export function swapSides(c: TableComparison): TableComparison {
  const row = (r: RowDifference): RowDifference => ({
    key: r.key,
    kind: r.kind === 'missing on target' ? 'extra on target' : r.kind === 'extra on target' ? 'missing on target' : 'differs',
    ...(r.target !== undefined ? { source: r.target } : {}),
    ...(r.source !== undefined ? { target: r.source } : {}),
  });
  return {
    ...c,
    sourceRows: c.targetRows,
    targetRows: c.sourceRows,
    chunks: c.chunks.map((x) => ({
      ...x,
      source: x.target,
      target: x.source,
      verdict: x.verdict.kind === 'differs' ? { ...x.verdict, rows: x.verdict.rows.map(row) } : x.verdict,
    })),
  };
}

async function snapshotCriterion(o: FinalGateOptions, since: number | null): Promise<Criterion> {
  const name = 'source snapshot archived and verified';
  const snap = lastSnapshot(o.audit);
  if (!snap) return criterion(name, 'none', 'verified, taken after writes moved', false, 'run `pg-cutover snapshot` first');
  if (!snap.ok) return criterion(name, `last attempt failed (${new Date(snap.at).toISOString()})`, 'verified, taken after writes moved', false, snap.error);
  if (since !== null && snap.at < since) return criterion(name, `taken ${new Date(snap.at).toISOString()}`, 'taken after writes moved', false, 'the source changed since: take a new snapshot');
  const dest = parseSnapshotDest(snap.location);
  if (!dest || snap.bytes === undefined || !snap.sha256) return criterion(name, snap.location, 'verified', false, 'the snapshot record lacks its location, size or hash');
  const v = await verifySnapshot({ dest, pgBinDir: o.pgBinDir, ...(o.aws ? { aws: o.aws } : {}) }, { bytes: snap.bytes, sha256: snap.sha256 });
  const measured = `${describeDest(dest)}: ${v.bytes} B, sha256 ${v.sha256.slice(0, 12)}…, ${v.tocEntries} TOC entries`;
  return criterion(name, measured, 'size, SHA-256 and pg_restore --list as written', v.ok, v.ok ? `read back and verified now; taken ${new Date(snap.at).toISOString()}` : v.error);
}

export async function runFinalGate(o: FinalGateOptions): Promise<GateResult> {
  const now = o.now ?? Date.now;
  const started = now();
  const c: Criterion[] = [criterion('cutover state', o.state, 'CUTOVER_COMPLETE', o.state === 'CUTOVER_COMPLETE')];
  const st = judgeStability(o.audit, started, o.stabilityWindowMs);
  const onTarget = st.writesMovedAt === null ? null : started - st.writesMovedAt;
  c.push(criterion(
    'no rollback within the stability window',
    onTarget === null ? 'writes never moved to the target' : `${formatDuration(onTarget)} with writes on the target, ${st.rollbacksInWindow.length} rollback(s) in the window`,
    `${formatDuration(o.stabilityWindowMs)} (${o.stabilityDays ?? 90} days × --time-scale), 0 rollbacks`,
    st.passed,
    st.rollbacksInWindow.map((e) => `rollback ${new Date(e.at).toISOString()} from ${e.from ?? '?'}: ${e.reason ?? ''}`).join('\n') || undefined,
  ));
  let s: Db | null = null;
  let t: Db | null = null;
  try {
    s = await connectControl(o.sourceUrl, { purpose: 'final-gate' });
    t = await connectControl(o.targetUrl, { purpose: 'final-gate' });
    const sessions = await applicationSessions(s);
    c.push(criterion('application sessions on the source', sessions.length, 0, sessions.length === 0,
      sessions.map((x) => `pid ${x.pid} ${x.user}${x.application ? ` (${x.application})` : ''}${x.client ? ` from ${x.client}` : ''} ${x.state ?? ''}`).join('\n') || 'replication and control sessions excluded'));
    c.push(...(await checksumCriteria(o, s, t)));
  } catch (e) {
    c.push(criterion('databases reachable', 'no', 'yes', false, (e as Error).message));
  } finally {
    await Promise.all([s?.end(), t?.end()].map((p) => p?.catch(() => undefined)));
  }
  c.push(await snapshotCriterion(o, st.writesMovedAt));
  return gateResult('final', c, started, now());
}
