/**
 * The sidecar's shadow-write service: a small bounded pool of target connections, the sampling decision
 * (adaptive under a replication-lag budget), the LSN sampler, counters and the recent-mismatch log.
 * Sessions ask `begin()` at the start of a write transaction; null means "not shadowed" (counted by reason).
 */
import pg from 'pg';
import { log } from '../log.js';
import { advanceTargetSequences } from './sequences.js';
import { connectBackend } from '../proxy/backend-connect.js';
import { pgClientConfig, type BackendTarget } from '../proxy/database-url.js';
import { shapeKey } from '../router/shape.js';
import type { Classifier } from '../router/classify.js';
import { EXPLAINED, MISMATCH_CLASSES, type Difference, type MismatchClass } from './compare.js';
import { DEFAULT_MASK, type MaskRule } from './results.js';
import { ShadowConn } from './shadow-conn.js';
import { ShadowTx } from './shadow-tx.js';
import { LsnSampler } from './lsn-sampler.js';

export interface ShadowOptions {
  source: BackendTarget;
  target: BackendTarget;
  /** Privileged logins for the LSN sampler and sequence moves (default source/target). */
  control?: { source: BackendTarget; target: BackendTarget };
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
}

export interface MismatchRecord {
  at: string;
  cls: MismatchClass;
  explained: boolean;
  fingerprint: string;
  statement: number;
  source: Difference['source'];
  shadow: Difference['shadow'];
}

export class ShadowStats {
  sampled = 0;
  shadowed = 0;
  matched = 0;
  compared = 0;
  abandoned = 0;
  readonly mismatched: Record<MismatchClass, number> = Object.fromEntries(MISMATCH_CLASSES.map((c) => [c, 0])) as Record<MismatchClass, number>;
  readonly notShadowed = { 'not-sampled': 0, 'pool-exhausted': 0, 'lag-budget': 0 };
  targetErrors = 0;
  latencyMs: number[] = [];

  get unexplained(): number {
    let n = 0;
    for (const c of MISMATCH_CLASSES) if (!EXPLAINED.has(c)) n += this.mismatched[c];
    return n;
  }
}

export class Shadower {
  readonly stats = new ShadowStats();
  /** Current sampling rate after adaptation (0..1). */
  rate: number;
  private readonly free: ShadowConn[] = [];
  private connecting = 0;
  private readonly mismatchLog: MismatchRecord[] = [];
  private readonly sampler: LsnSampler;
  private readonly adaptTimer: NodeJS.Timeout;
  private closed = false;
  private readonly o: Required<Omit<ShadowOptions, 'mask' | 'control'>> & { mask: MaskRule; control?: ShadowOptions['control'] };

  constructor(opts: ShadowOptions) {
    this.o = {
      poolSize: 4, sampleRate: 0.1, sequenceHeadroom: 100_000, lagBudgetBytes: 64 * 1024, capMs: 2000, lockTimeoutMs: 100, keepParams: false, maxMismatches: 1000,
      ...opts,
      mask: opts.mask ?? DEFAULT_MASK,
    };
    this.rate = this.o.sampleRate;
    this.sampler = new LsnSampler(pgClientConfig(opts.control?.source ?? opts.source, 'pg-cutover-lsn'));
    this.sampler.start();
    this.adaptTimer = setInterval(() => this.adapt(), 100);
    this.adaptTimer.unref();
    this.seqTimer = setInterval(() => void this.syncSequences(), 10_000);
    this.seqTimer.unref();
    this.fill();
  }

  private readonly seqTimer: NodeJS.Timeout;
  /** Resolves when the first sequence advance is done (tests and the transition wait for it). */
  readonly sequencesReady: Promise<void> = Promise.resolve().then(() => this.syncSequences());

  private async syncSequences(): Promise<void> {
    if (this.closed) return;
    const ctl = this.o.control ?? { source: this.o.source, target: this.o.target };
    const src = new pg.Client(pgClientConfig(ctl.source, 'pg-cutover-control:sequences'));
    const dst = new pg.Client({ ...pgClientConfig(ctl.target, 'pg-cutover-control:sequences'), options: '-c default_transaction_read_only=off' });
    src.on('error', () => {});
    dst.on('error', () => {});
    try {
      await Promise.all([src.connect(), dst.connect()]);
      const n = await advanceTargetSequences(src, dst, this.o.sequenceHeadroom);
      log.debug({ sequences: n }, 'target sequences moved ahead for shadowing');
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'could not move target sequences ahead');
    } finally {
      await Promise.allSettled([src.end(), dst.end()]);
    }
  }

  /** Adaptive sampling: halve when replication lag is over budget, creep back up to the requested rate. */
  private adapt(): void {
    const lag = this.sampler.lagBytes;
    if (lag > this.o.lagBudgetBytes) this.rate = this.rate / 2 < 0.001 ? 0 : this.rate / 2;
    else this.rate = Math.min(this.o.sampleRate, this.rate + Math.max(0.01, this.rate * 0.1));
  }

  private fill(): void {
    while (!this.closed && this.free.length + this.connecting < this.o.poolSize) {
      this.connecting++;
      const lt = this.o.lockTimeoutMs;
      const idle = this.o.capMs * 3;
      void connectBackend(this.o.target, {
        application_name: 'pg-cutover-shadow',
        // Session defaults survive DISCARD ALL between shadows.
        // default_transaction_read_only=off: after a rollback the target's application roles stay fenced
        // until the next switchover; a shadow always rolls back, so it may write there.
        options: `-c lock_timeout=${lt} -c idle_in_transaction_session_timeout=${idle} -c statement_timeout=${this.o.capMs * 2} -c default_transaction_read_only=off`,
      }).then((r) => {
        this.connecting--;
        if (!r.ok) {
          this.stats.targetErrors++;
          log.debug({ err: r.error.message }, 'shadow connection failed');
          if (!this.closed) setTimeout(() => this.fill(), 1000).unref();
          return;
        }
        if (this.closed) return void r.value.socket.destroy();
        const c = new ShadowConn(this.o.target, r.value.socket, r.value.pid, r.value.secret, this.o.mask, (conn, why) => this.lost(conn, why));
        this.free.push(c);
      });
    }
  }

  private readonly active = new Map<ShadowConn, ShadowTx>();

  private lost(conn: ShadowConn, why: string): void {
    this.stats.targetErrors++;
    log.debug({ why }, 'shadow connection lost');
    const i = this.free.indexOf(conn);
    if (i >= 0) this.free.splice(i, 1);
    this.active.get(conn)?.connectionLost();
    if (!this.closed) setTimeout(() => this.fill(), 200).unref();
  }

  /** At the start of a write transaction on the source: a shadow for it, or null (counted by reason). */
  begin(prelude: string[], named: ReadonlyMap<string, { text: string; parse: Buffer }>): ShadowTx | null {
    if (this.rate <= 0 && this.o.sampleRate > 0) {
      this.stats.notShadowed['lag-budget']++;
      return null;
    }
    if (Math.random() >= this.rate) {
      this.stats.notShadowed['not-sampled']++;
      return null;
    }
    this.stats.sampled++;
    const conn = this.free.pop();
    if (!conn) {
      this.stats.notShadowed['pool-exhausted']++;
      return null;
    }
    this.stats.shadowed++;
    const tx = new ShadowTx(conn, {
      classifier: this.o.classifier,
      mask: this.o.mask,
      capMs: this.o.capMs,
      prelude,
      named,
      onCompared: (d, text, ms, startedAt, resultAt) => this.compared(d, text, ms, startedAt, resultAt),
      onAbandoned: () => {
        this.stats.abandoned++;
        this.stats.mismatched.abandoned++;
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

  private compared(d: Difference | null, text: string, ms: number, startedAt: number, resultAt: number): void {
    if (d === null) {
      this.stats.compared++;
      this.stats.matched++;
      if (this.stats.latencyMs.length >= 4096) this.stats.latencyMs.splice(0, 2048);
      this.stats.latencyMs.push(ms);
      return;
    }
    // Explain before counting (DESIGN.md): a difference while the target had not applied what the source
    // had committed when the transaction began is 'lag-suspect'. Wait for an LSN reading after the start.
    if (!EXPLAINED.has(d.cls)) {
      const lagging = this.sampler.laggingDuring(startedAt, resultAt);
      if (lagging === undefined) {
        setTimeout(() => this.compared(d, text, ms, startedAt, resultAt), 25).unref();
        return;
      }
      if (lagging) d = { ...d, cls: 'lag-suspect' };
    }
    this.stats.compared++;
    this.stats.mismatched[d.cls]++;
    const rec: MismatchRecord = {
      at: new Date().toISOString(),
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

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.adaptTimer);
    clearInterval(this.seqTimer);
    for (const c of this.free) c.kill('closing');
    this.free.length = 0;
    await this.sampler.stop();
  }
}
