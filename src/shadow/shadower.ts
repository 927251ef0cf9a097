/**
 * The sidecar's shadow service: a small bounded pool of target connections, the sampling decision
 * (adaptive under a replication-lag budget), the LSN sampler, counters and the recent-mismatch log.
 * Sessions ask `begin()` at the start of a write transaction and `beginRead()` at the start of a read sent to
 * the source (dark reads); null means "not shadowed" (counted by reason).
 *
 * Modes (DESIGN.md, "Shadow writes"):
 * - `rollback` (default): every shadow ends with ROLLBACK; the target changes only through replication.
 * - `apply`: DANGER. A shadow COMMITs when the client's transaction committed on the source, so every sampled
 *   write transaction is written twice: by the client on the source and by its shadow on the target. Only
 *   for a target that nothing replicates into (e.g. a load-test copy restored from a snapshot); on a
 *   replica each write would land twice. `checkApplyModeAllowed` (apply-mode.ts) must pass before a
 *   Shadower is created in apply mode. Target sequences are not moved ahead in apply mode (the target's
 *   own sequences advance as the shadows run); generated keys stay masked in the comparison.
 * A dark-reads-only service (`writes: false`, states before READS_100PCT) shadows no writes and moves no
 * sequences.
 */
import { log } from '../support/log.js';
import { syncTargetSequences } from './sequences.js';
import { connectBackend } from '../net/backend-connect.js';
import { pgClientConfig, type BackendTarget } from '../net/database-url.js';
import { shapeKey } from '../router/shape.js';
import type { Classifier } from '../router/classify.js';
import { EXPLAINED, type Difference } from './compare.js';
import { DEFAULT_MASK, type MaskRule } from './results.js';
import { ShadowConn } from './shadow-conn.js';
import { ShadowTx } from './shadow-tx.js';
import { LagWindow } from './lag-window.js';
import { WalSampler } from '../replication/wal-sampler.js';
import { ShadowStats, type MismatchRecord, type ShadowKind } from './stats.js';

export { ShadowStats, DarkReadStats, ApplyStats, type MismatchRecord, type ShadowKind } from './stats.js';
export { checkApplyModeAllowed, type ApplyModeCheck } from './apply-mode.js';

export type ShadowMode = 'rollback' | 'apply';

/** Session SETs to replay on the shadow first; a function is called only when the unit is sampled. */
export type Prelude = string[] | (() => string[]);
type Named = ReadonlyMap<string, { text: string; parse: Buffer }>;

const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 5000;

export interface ShadowOptions {
  /**
   * The target failed a shadow: a connection refused or lost, or a shadow skipped because the target is down.
   * The sidecar counts these for the error-rate breaker, which otherwise sees no target traffic in a
   * write-only SHADOW_WRITES workload.
   */
  onTargetFault?: () => void;
  source: BackendTarget;
  target: BackendTarget;
  /** Privileged logins for the LSN sampler and sequence moves (default source/target). */
  control?: { source: BackendTarget; target: BackendTarget };
  /** The sidecar's WAL sampler (read-your-writes listens to it too); without it the shadow samples the source itself. */
  wal?: WalSampler;
  classifier: Classifier;
  /** Target connections used for shadows (default 4). No free one → the transaction is not shadowed. */
  poolSize?: number;
  /** Requested share of write transactions shadowed, 0..1 (default 0.1). */
  sampleRate?: number;
  /** Replication lag above which sampling backs off (bytes, default 64 KiB). */
  lagBudgetBytes?: number;
  /** A shadow open longer than this is rolled back and counted as abandoned (default 2000 ms). */
  capMs?: number;
  /** lock_timeout of shadow sessions, well below deadlock_timeout (1 s) so a shadow gives way (default 100 ms). */
  lockTimeoutMs?: number;
  mask?: MaskRule;
  /** Target sequences are kept this far ahead of the source's (default 100000), refreshed every 10 s. */
  sequenceHeadroom?: number;
  /** Keep statement parameters in mismatch records (default false: redacted). */
  keepParams?: boolean;
  maxMismatches?: number;
  /** 'rollback' (default) or 'apply' (shadows COMMIT what the source committed: see the file comment). */
  mode?: ShadowMode;
  /** Shadow write transactions (default true). false: dark reads only, no sequence moves. */
  writes?: boolean;
  /** Share of reads sent to the source that also run on the target, 0..1 (default 0: no dark reads). */
  darkReadRate?: number;
}

export class Shadower {
  readonly stats = new ShadowStats();
  /** Current sampling rate of write transactions after adaptation (0..1). */
  rate: number;
  /** Share of reads to the source that are dark-read (0..1); sessions skip beginRead() when 0. */
  readonly darkReadRate: number;
  readonly mode: ShadowMode;
  /** Shadows write transactions (false: a dark-reads-only service). */
  readonly writes: boolean;
  /** The last connection attempt to the target failed, or a shadow connection was lost since. */
  private targetDown = false;
  private readonly free: ShadowConn[] = [];
  private connecting = 0;
  private readonly mismatchLog: MismatchRecord[] = [];
  private readonly sampler = new LagWindow();
  private readonly wal: { readonly sampler: WalSampler; readonly owned: boolean; readonly unlisten: () => void };
  private readonly adaptTimer: NodeJS.Timeout | null = null;
  private readonly seqTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly o: Required<Omit<ShadowOptions, 'mask' | 'control' | 'onTargetFault' | 'wal'>> & { mask: MaskRule; control?: ShadowOptions['control']; onTargetFault?: () => void; wal?: WalSampler };
  /** Resolves when the first sequence advance is done (tests and the transition wait for it); at once when none is made. */
  readonly sequencesReady: Promise<void>;

  constructor(opts: ShadowOptions) {
    this.o = {
      poolSize: 4, sampleRate: 0.1, sequenceHeadroom: 100_000, lagBudgetBytes: 64 * 1024, capMs: 2000, lockTimeoutMs: 100, keepParams: false, maxMismatches: 1000,
      mode: 'rollback', writes: true, darkReadRate: 0,
      ...opts,
      mask: opts.mask ?? DEFAULT_MASK,
    };
    this.mode = this.o.mode;
    this.writes = this.o.writes;
    this.darkReadRate = Math.min(1, Math.max(0, this.o.darkReadRate));
    this.rate = this.writes ? this.o.sampleRate : 0;
    // The sidecar's WAL sampler when given (one for read-your-writes and this), else one of its own on the source.
    const login = pgClientConfig(opts.control?.source ?? opts.source);
    const wal = opts.wal ?? new WalSampler({ writer: () => 'source', control: { source: login, target: login }, everyMs: 20, purpose: 'lsn' });
    this.wal = { sampler: wal, owned: opts.wal === undefined, unlisten: wal.listen(this.sampler) };
    if (this.writes) {
      this.adaptTimer = setInterval(() => this.adapt(), 100);
      this.adaptTimer.unref();
    }
    // Shadows that roll back need target sequences ahead of the source's (DESIGN.md, "Sequences"). Apply
    // mode's target is no replica: its sequences advance by the shadows' own inserts.
    if (this.writes && this.mode === 'rollback') {
      this.seqTimer = setInterval(() => void this.syncSequences(), 10_000);
      this.seqTimer.unref();
      this.sequencesReady = Promise.resolve().then(() => this.syncSequences());
    } else {
      this.sequencesReady = Promise.resolve();
    }
    this.fill();
  }

  private async syncSequences(): Promise<void> {
    if (!this.closed) await syncTargetSequences(this.o.control ?? { source: this.o.source, target: this.o.target }, this.o.sequenceHeadroom);
  }

  /** Adaptive sampling: halve when replication lag is over budget, creep back up to the requested rate. */
  private adapt(): void {
    const lag = this.sampler.lagBytes;
    if (lag > this.o.lagBudgetBytes) this.rate = this.rate / 2 < 0.001 ? 0 : this.rate / 2;
    else this.rate = Math.min(this.o.sampleRate, this.rate + Math.max(0.01, this.rate * 0.1));
  }

  private fill(): void {
    while (!this.closed && this.free.length + this.active.size + this.connecting < this.o.poolSize) {
      this.connecting++;
      const lt = this.o.lockTimeoutMs;
      const idle = this.o.capMs * 3;
      void connectBackend(this.o.target, {
        application_name: 'pg-cutover-shadow',
        // Session defaults survive DISCARD ALL between shadows.
        // default_transaction_read_only=off: after a rollback the target's application roles stay fenced
        // until the next switchover; a shadow rolls back (or, in apply mode, the target is no replica), so
        // it may write there. Dark reads open their transaction READ ONLY themselves.
        options: `-c lock_timeout=${lt} -c idle_in_transaction_session_timeout=${idle} -c statement_timeout=${this.o.capMs * 2} -c default_transaction_read_only=off`,
      }).then((r) => {
        this.connecting--;
        this.targetDown = !r.ok;
        if (!r.ok) {
          this.stats.targetErrors++;
          this.o.onTargetFault?.();
          log.debug({ err: r.error.message }, 'shadow connection failed');
          this.retryFill(true);
          return;
        }
        this.retryMs = RETRY_MIN_MS;
        if (this.closed) return void r.value.socket.destroy();
        const c = new ShadowConn(this.o.target, r.value.socket, r.value.pid, r.value.secret, this.o.mask, (conn, why, byUs) => this.lost(conn, why, byUs));
        this.free.push(c);
      });
    }
  }

  private readonly active = new Map<ShadowConn, ShadowTx>();

  private lost(conn: ShadowConn, why: string, byUs: boolean): void {
    const i = this.free.indexOf(conn);
    if (i >= 0) this.free.splice(i, 1);
    this.active.get(conn)?.connectionLost();
    // Closed by us (shadow done, shutting down): nothing the target did; only refill.
    if (byUs || this.closed) {
      if (!this.closed) this.fill();
      return;
    }
    this.stats.targetErrors++;
    this.targetDown = true;
    log.debug({ why }, 'shadow connection lost');
    this.o.onTargetFault?.();
    this.retryFill(false);
  }

  private retryTimer: NodeJS.Timeout | null = null;
  private retryMs = RETRY_MIN_MS;

  /** One refill timer for the whole pool, backing off while the target refuses (not one loop per lost connection). */
  private retryFill(failed: boolean): void {
    if (this.closed || this.retryTimer !== null) return;
    const ms = this.retryMs;
    if (failed) this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.fill();
    }, ms);
    this.retryTimer.unref();
  }

  /** At the start of a write transaction on the source: a shadow for it, or null (counted by reason). */
  begin(prelude: Prelude, named: Named, role: string | null = null): ShadowTx | null {
    if (!this.writes) return null;
    const skip = this.rate <= 0 && this.o.sampleRate > 0 ? 'lag-budget' : Math.random() >= this.rate ? 'not-sampled' : null;
    if (skip !== null) {
      this.stats.notShadowed[skip]++;
      return null;
    }
    this.stats.sampled++;
    const conn = this.free.pop();
    if (!conn) {
      if (this.targetDown) this.o.onTargetFault?.();
      this.stats.notShadowed[this.targetDown ? 'target-down' : 'pool-exhausted']++;
      return null;
    }
    this.stats.shadowed++;
    return this.open(conn, 'write', prelude, named, role);
  }

  /**
   * At the start of a read sent to the source (DESIGN.md, "Dark reads"): a read-only shadow for it, or null
   * (counted by reason). Not held back by the lag budget: a read takes no row locks, so it cannot stall the
   * apply worker; a difference while replication was moving is explained as lag-suspect all the same.
   */
  beginRead(prelude: Prelude, named: Named, role: string | null = null): ShadowTx | null {
    const d = this.stats.darkReads;
    if (Math.random() >= this.darkReadRate) {
      d.notShadowed['not-sampled']++;
      return null;
    }
    d.sampled++;
    const conn = this.free.pop();
    if (!conn) {
      d.notShadowed[this.targetDown ? 'target-down' : 'pool-exhausted']++;
      return null;
    }
    d.shadowed++;
    return this.open(conn, 'read', prelude, named, role);
  }

  private open(conn: ShadowConn, kind: ShadowKind, prelude: Prelude, named: Named, role: string | null): ShadowTx {
    const st = kind === 'write' ? this.stats : this.stats.darkReads;
    const tx = new ShadowTx(conn, {
      classifier: this.o.classifier,
      mask: this.o.mask,
      capMs: this.o.capMs,
      prelude: typeof prelude === 'function' ? prelude() : prelude,
      named,
      // READ ONLY: a read the classifier let through that writes after all (a volatile function, nextval,
      // which a rollback would not undo) fails on the target instead of changing it.
      begin: kind === 'read' ? 'BEGIN READ ONLY' : 'BEGIN',
      role,
      onRoleRefused: () => st.roleRefused++,
      apply: kind === 'write' && this.mode === 'apply',
      onApplied: (o) => this.stats.apply.count(o),
      onCompared: (d, text, ms, startedAt, resultAt) => this.compared(kind, d, text, ms, startedAt, resultAt),
      onAbandoned: () => {
        st.abandoned++;
        st.mismatched.abandoned++;
      },
      onDone: (c, healthy) => {
        this.active.delete(c);
        if (healthy && !this.closed) this.free.push(c);
        else c.kill('shadow done');
        this.fill();
      },
    });
    this.active.set(conn, tx);
    return tx;
  }

  private compared(kind: ShadowKind, d: Difference | null, text: string, ms: number, startedAt: number, resultAt: number): void {
    const st = kind === 'write' ? this.stats : this.stats.darkReads;
    if (d === null) {
      st.compared++;
      st.matched++;
      if (kind === 'write') {
        if (this.stats.latencyMs.length >= 4096) this.stats.latencyMs.splice(0, 2048);
        this.stats.latencyMs.push(ms);
      }
      return;
    }
    // Explain before counting (DESIGN.md): a difference while the target had not applied what the source
    // had committed when the transaction began is 'lag-suspect'. Wait for an LSN reading after the start.
    if (!EXPLAINED.has(d.cls)) {
      const lagging = this.sampler.laggingDuring(startedAt, resultAt);
      if (lagging === undefined) {
        setTimeout(() => this.compared(kind, d, text, ms, startedAt, resultAt), 25).unref();
        return;
      }
      if (lagging) d = { ...d, cls: 'lag-suspect' };
    }
    st.compared++;
    st.mismatched[d.cls]++;
    const rec: MismatchRecord = {
      at: new Date().toISOString(),
      kind,
      cls: d.cls,
      explained: EXPLAINED.has(d.cls),
      fingerprint: shapeKey(text),
      statement: d.statement,
      source: d.source,
      shadow: d.shadow,
    };
    this.mismatchLog.push(rec);
    if (this.mismatchLog.length > this.o.maxMismatches) this.mismatchLog.shift();
  }

  /** Recent mismatches, newest first. */
  mismatches(offset = 0, limit = 100): { total: number; items: MismatchRecord[] } {
    const all = this.mismatchLog;
    const items: MismatchRecord[] = [];
    for (let i = all.length - 1 - offset; i >= 0 && items.length < limit; i--) items.push(all[i]);
    return { total: all.length, items };
  }

  get lagBytes(): number {
    return this.sampler.lagBytes;
  }

  poolInUse(): number {
    return this.active.size;
  }

  /** Connected shadow connections waiting for a transaction. */
  poolFree(): number {
    return this.free.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.adaptTimer) clearInterval(this.adaptTimer);
    if (this.seqTimer) clearInterval(this.seqTimer);
    for (const c of this.free) c.kill('closing');
    this.free.length = 0;
    this.wal.unlisten();
    this.sampler.close();
    if (this.wal.owned) await this.wal.sampler.stop();
  }
}
