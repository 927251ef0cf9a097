/**
 * Gate 2 (DESIGN.md "Gates"): exact row counts and checksums per table, chunked by primary-key
 * range and run in parallel with bounded concurrency; tables without a primary key reported; CDC
 * lag over the window and replication errors. Under live writes a chunk can differ only because
 * the target has not applied it yet, so a differing chunk is checked again after the target has
 * applied the source LSN read after the source's checksum, a few times; a difference that
 * survives is narrowed to its rows, one that keeps moving is reported as unstable.
 */
import { connectControl, controlPool, type Db } from './control-conn.js';
import { CHECKSUM_SESSION_SETTINGS } from './checksum.js';
import { compareTables, subscriptionSync, type ChunkVerdict, type TableComparison } from './chunk-check.js';
import { openChecksumState } from './checksum-state.js';
import { criterion, gateResult, notJudged, type Criterion, type GateResult } from '../domain/gate-result.js';
import { describeRange } from './key-range.js';
import { startLagSampler, type LagSamples } from './lag-sampler.js';
import { DEFAULT_PUBLICATION, DEFAULT_SUBSCRIPTION } from './native.js';
import { DEFAULT_REVERSE_PUBLICATION, DEFAULT_REVERSE_SUBSCRIPTION } from './reverse.js';
import type { RowDifference } from './narrow.js';
import { applyWorker, publicationExists, subscriptionErrorCounts, subscriptionInfo } from './subscription.js';
import type { TableSelection } from './tables.js';
import { consistentPoint, type WriteHold } from './consistent-point.js';
import { gate2Scope, type TableNote } from './gate2-scope.js';

export interface Gate2Options {
  /**
   * Tables to check. Default: every table of the application schemas on both sides, published or not, plus a
   * schema diff and the publication's coverage. The heartbeat table is skipped.
   */
  tables?: TableSelection;
  /** Tables not compared, each with its reason (shown as a criterion). */
  exclude?: readonly TableNote[];
  /** Tables compared whose differences do not fail the gate, each with its reason. */
  accept?: readonly TableNote[];
  /**
   * Parks writes at every sidecar for one consistent point (consistent-point.ts). Without it (no proxy in
   * front, e.g. `pg-cutover validate`), chunks that keep changing are reported unstable.
   */
  hold?: WriteHold;
  /** Longest write hold per consistent point. Default 200 ms. */
  holdBudgetMs?: number;
  /** Consistent points tried at most. Default 8. */
  consistentRounds?: number;
  publication?: string;
  /** Native subscription on the target. null: none (e.g. DMS); rechecks then wait recheckDelayMs and lag/errors are not judged here. */
  subscription?: string | null;
  /** Rows per chunk. Default 10 000. */
  chunkRows?: number;
  /** Chunks checked at once (connections per side). Default 4. */
  concurrency?: number;
  /** Re-checks of a differing chunk. Default 5, 2 with a hold (consistent points settle the rest). */
  rechecks?: number;
  /** Longest wait for the target to apply a source LSN. Default 10 s. */
  applyTimeoutMs?: number;
  /** Without a subscription, the wait before a re-check. Default 1 s. */
  recheckDelayMs?: number;
  /** Default 10 s (DESIGN.md). */
  maxLagSeconds?: number;
  /** Lag is sampled for at least this long. Default 5 s. */
  lagWindowMs?: number;
  /** Differing rows reported per chunk. Default 20. */
  maxRows?: number;
  onProgress?: (p: Gate2Progress) => void;
  /**
   * Resume from / record progress in this file: chunks found equal are skipped by the next run
   * against the same pair. Removed when the check completes.
   */
  stateFile?: string;
}

export interface Gate2Progress {
  readonly doneChunks: number;
  readonly totalChunks: number;
  readonly rows: number;
  readonly elapsedMs: number;
  /** Chunks taken from the state file of an earlier run. */
  readonly resumed: number;
  /** Tables planned. */
  readonly tables: number;
}

function showRow(d: RowDifference): string {
  const clip = (s: string | undefined) => (s && s.length > 160 ? `${s.slice(0, 160)}…` : s);
  switch (d.kind) {
    case 'missing on target':
      return `${d.key} missing on target`;
    case 'extra on target':
      return `${d.key} only on target`;
    case 'differs':
      return `${d.key} differs: source ${clip(d.source)} / target ${clip(d.target)}`;
    default: {
      const never: never = d.kind;
      throw new Error(`unknown difference ${String(never)}`);
    }
  }
}

/** Criteria for one compared table: row count and checksum. */
export function tableCriteria(c: TableComparison, acceptedBecause?: string): Criterion[] {
  const differs = c.chunks.filter((x) => x.verdict.kind === 'differs');
  const unstable = c.chunks.filter((x) => x.verdict.kind === 'unstable');
  const settled = c.chunks.filter((x) => x.verdict.kind === 'equal' && x.verdict.rechecks > 0 && !x.verdict.atPoint).length;
  const atPoint = c.chunks.filter((x) => x.verdict.kind === 'equal' && x.verdict.atPoint).length;
  const equal = c.chunks.length - differs.length - unstable.length;
  const lines = [
    ...differs.map((x) => {
      const v = x.verdict as Extract<ChunkVerdict, { kind: 'differs' }>;
      return `${describeRange(c.key, x.range)}: ${v.rows.map(showRow).join('; ')}${v.truncated ? '; … more' : ''}`;
    }),
    ...unstable.map((x) => `${describeRange(c.key, x.range)}: unstable (still changing after the re-checks), not verified`),
  ];
  if (settled) lines.push(`${settled} chunk(s) equal after waiting for replication`);
  if (atPoint) lines.push(`${atPoint} chunk(s) still changing, equal at a consistent point (short write hold)`);
  if (!c.key.columns) lines.push('no primary key or replica identity index: checksummed whole, ordered by row text');
  const ok = (v: boolean) => v || acceptedBecause !== undefined;
  if (acceptedBecause !== undefined && (differs.length || unstable.length || c.sourceRows !== c.targetRows)) lines.push(`difference accepted: ${acceptedBecause}`);
  return [
    criterion(`rows ${c.table}`, `source ${c.sourceRows}, target ${c.targetRows}`, 'equal', ok(c.sourceRows === c.targetRows), `count(*) over ${c.chunks.length} key range(s)`),
    criterion(`checksum ${c.table}`, `${equal}/${c.chunks.length} chunks equal`, 'all chunks', ok(differs.length === 0 && unstable.length === 0), lines.join('\n') || undefined),
  ];
}

/**
 * Which direction replication runs now: forward (source → target), or reverse after the write switchover (the
 * forward subscription disabled on the target, the reverse one enabled on the source). Gate 2 judges the
 * direction that carries the writes; the forward subscription lying disabled then is no failure.
 */
export async function replicationDirection(sourceUrl: string, targetUrl: string, subscription: string): Promise<'forward' | 'reverse'> {
  const [s, t] = [await connectControl(sourceUrl, { purpose: 'gate2' }), await connectControl(targetUrl, { purpose: 'gate2' })];
  try {
    const fwd = await subscriptionInfo(t, subscription);
    if (fwd?.enabled) return 'forward';
    const rev = await subscriptionInfo(s, DEFAULT_REVERSE_SUBSCRIPTION);
    return rev?.enabled ? 'reverse' : 'forward';
  } finally {
    await Promise.allSettled([s.end(), t.end()]);
  }
}

/**
 * Gate 2 in the direction replication runs: after the switchover, the target is compared as the upstream and the
 * source as the downstream, on the reverse subscription (in the rows, "source" then reads as the target and
 * "target" as the source; a first criterion says so).
 */
export async function runGate2Directed(sourceUrl: string, targetUrl: string, opts: Gate2Options = {}): Promise<GateResult> {
  const sub = opts.subscription === undefined ? DEFAULT_SUBSCRIPTION : opts.subscription;
  const dir = sub === null ? 'forward' : await replicationDirection(sourceUrl, targetUrl, sub);
  if (dir === 'forward') return runGate2(sourceUrl, targetUrl, opts);
  const g = await runGate2(targetUrl, sourceUrl, { ...opts, subscription: DEFAULT_REVERSE_SUBSCRIPTION, publication: DEFAULT_REVERSE_PUBLICATION });
  const note = criterion('replication direction', 'reverse: target → source', 'the direction carrying the writes', true,
    `after the write switchover: upstream is the target, downstream the source (read "source" as the target and "target" as the source below); forward subscription ${sub} is disabled by design`);
  return { ...g, criteria: [note, ...g.criteria] };
}

export async function runGate2(sourceUrl: string, targetUrl: string, opts: Gate2Options = {}): Promise<GateResult> {
  const started = Date.now();
  const sub = opts.subscription === undefined ? DEFAULT_SUBSCRIPTION : opts.subscription;
  const s = await connectControl(sourceUrl, { purpose: 'gate2' });
  const t = await connectControl(targetUrl, { purpose: 'gate2' }).catch(async (err: unknown) => {
    await s.end();
    throw err;
  });
  const conc = Math.max(1, opts.concurrency ?? 4);
  const pools = {
    source: controlPool(sourceUrl, conc + 1, { purpose: 'checksum', settings: CHECKSUM_SESSION_SETTINGS }),
    target: controlPool(targetUrl, conc, { purpose: 'checksum', settings: CHECKSUM_SESSION_SETTINGS }),
  };
  const c: Criterion[] = [];
  try {
    const native = sub !== null && (await subscriptionInfo(t, sub)) !== null;
    const errorsBefore = native ? await subscriptionErrorCounts(t, sub) : null;
    const sampler = native ? await startLagSampler(sourceUrl, targetUrl, sub, { minWindowMs: opts.lagWindowMs ?? 5000, timeoutMs: 15_000 }) : null;
    let lag: LagSamples | null = null;
    try {
      const scope = await gate2Scope(s, t, {
        publication: opts.publication ?? DEFAULT_PUBLICATION,
        published: await publicationExists(s, opts.publication ?? DEFAULT_PUBLICATION),
        ...(opts.tables ? { tables: opts.tables } : {}),
        ...(opts.exclude ? { exclude: opts.exclude } : {}),
        ...(opts.accept ? { accept: opts.accept } : {}),
      });
      const tables = scope.tables;
      c.push(...scope.criteria);
      let total = 0;
      let done = 0;
      let rows = 0;
      const sync = native
        ? subscriptionSync(sub, opts.applyTimeoutMs ?? 10_000)
        : async () => (await new Promise((r) => setTimeout(r, opts.recheckDelayMs ?? 1000)), true);
      const budgetMs = opts.holdBudgetMs ?? 200;
      const points = { taken: 0, failed: 0, maxHoldMs: 0, reasons: [] as string[] };
      const consistent = native && opts.hold
        ? {
            point: () => consistentPoint({ source: pools.source, target: pools.target, lsnConn: s, subscription: sub, hold: opts.hold!, budgetMs }),
            rounds: opts.consistentRounds ?? 8,
            delayMs: 100,
            onPoint: (p: { ok: boolean; holdMs: number; reason?: string }) => {
              if (p.ok) points.taken++;
              else points.failed++;
              points.maxHoldMs = Math.max(points.maxHoldMs, p.holdMs);
              if (p.reason && points.reasons.length < 3) points.reasons.push(p.reason);
            },
          }
        : undefined;
      const store = opts.stateFile ? await openChecksumState(opts.stateFile, sourceUrl, targetUrl) : undefined;
      const compared = await compareTables({
        ...pools,
        ...(store ? { store } : {}),
        concurrency: conc,
        chunkRows: opts.chunkRows ?? 10_000,
        rechecks: opts.rechecks ?? (consistent ? 2 : 5),
        ...(consistent ? { consistent } : {}),
        maxRows: opts.maxRows ?? 20,
        sync,
        onChunk: (n) => {
          done++;
          rows += n;
          opts.onProgress?.({ doneChunks: done, totalChunks: total, rows, elapsedMs: Date.now() - started, resumed: store?.resumed ?? 0, tables: tables.length });
        },
      }, tables, (n) => (total = n)).finally(() => store?.flush());
      await store?.complete();
      if (consistent && points.taken + points.failed > 0) {
        c.push(criterion('write hold per consistent point (ms)', points.maxHoldMs, `budget ${budgetMs}`, true,
          `${points.taken} point(s) taken, ${points.failed} not taken${points.reasons.length ? ` (${points.reasons.join('; ')})` : ''}`));
      }
      for (const x of compared) c.push(...tableCriteria(x, scope.accepted.get(`${x.key.table.schema}.${x.key.table.name}`)));
    } finally {
      lag = sampler ? await sampler.stop() : null;
    }
    if (native && lag) {
      const max = Math.max(...lag.seconds);
      c.push(criterion('replication lag max over the window (s)', Number(max.toFixed(3)), opts.maxLagSeconds ?? 10, max < (opts.maxLagSeconds ?? 10),
        `${lag.seconds.length} samples (time for the target to apply the source's current LSN)${lag.timeouts ? `, ${lag.timeouts} timed out` : ''}`));
      const after = await subscriptionErrorCounts(t, sub);
      const info = await subscriptionInfo(t, sub);
      const worker = await applyWorker(t, sub);
      const fresh = errorsBefore && after ? after.apply - errorsBefore.apply + after.sync - errorsBefore.sync : 0;
      const running = info?.enabled === true && worker.pid !== null;
      c.push(criterion('replication errors during the check', fresh, 0, fresh === 0 && running,
        [running ? `apply worker ${worker.pid} running` : `subscription ${sub} ${info?.enabled ? 'has no apply worker' : 'is disabled'}`,
          after ? `cumulative: apply ${after.apply}, sync ${after.sync}` : ''].filter(Boolean).join('; ')));
    } else {
      c.push(notJudged('replication lag and errors', null, 'native subscription', sub === null ? 'no native subscription configured (e.g. AWS DMS: the sidecar\'s DMS monitor and lag breaker judge it)' : `no subscription ${sub} on the target`));
    }
    return gateResult(2, c, started);
  } finally {
    await Promise.all([s.end(), t.end(), pools.source.end(), pools.target.end()].map((p) => p.catch(() => undefined)));
  }
}
