/**
 * The replication lag around each shadow, from the sidecar's WAL sampler (replication/wal-sampler.ts): the
 * source's write position and what its subscribers have applied (pg_stat_replication.replay_lsn). The gap is the
 * replication lag in bytes: it drives adaptive shadow sampling and marks a mismatch 'lag-suspect' when the target
 * was behind at the transaction's start (DESIGN.md, "Explain"). Shadows run while the source is the writer, so
 * the writer's readings are the source's.
 */
import type { WalListener, WalReading } from '../replication/wal-sampler.js';

/** How long readings are kept: a shadow is judged from the reading before it to the one after it. */
const KEEP_MS = 2000;

export interface LsnReading {
  at: number;
  source: number;
  /** Applied on the target, in source LSN terms; null when no subscriber is connected. */
  applied: number | null;
}

export class LagWindow implements WalListener {
  last: LsnReading | null = null;
  /** Recent readings, oldest first (the last two seconds). */
  private readonly recent: LsnReading[] = [];
  private closed = false;

  /** Lag in bytes (0 when unknown: no replication to compare with). */
  get lagBytes(): number {
    const r = this.last;
    if (r === null || r.applied === null) return 0;
    return Math.max(0, r.source - r.applied);
  }

  /**
   * Was replication in motion around this shadow (DESIGN.md, "Explain")? True when, in the readings from the
   * last one before `startedAt` to the first one after `resultAt`, the target was behind the source (it may
   * have lacked what the source had committed when the transaction began) or advanced (it may already have
   * applied the source's own commit of this very statement, as an autocommit write's shadow can run after
   * it). Readings are milliseconds apart, so this leans towards "yes": a suspect difference is explained,
   * not hidden; with replication idle, every difference counts. Undefined until a reading after `resultAt`.
   */
  laggingDuring(startedAt: number, resultAt: number): boolean | undefined {
    let before: LsnReading | null = null;
    const window: LsnReading[] = [];
    let closedAfter = false;
    for (const r of this.recent) {
      if (r.at <= startedAt) before = r;
      else {
        window.push(r);
        if (r.at > resultAt) {
          closedAfter = true;
          break;
        }
      }
    }
    if (!closedAfter) return this.closed ? false : undefined;
    if (before !== null) window.unshift(before);
    let firstApplied: number | null = null;
    for (const r of window) {
      if (r.applied === null) continue;
      if (r.applied < r.source) return true;
      if (firstApplied === null) firstApplied = r.applied;
      else if (r.applied !== firstApplied) return true;
    }
    return false;
  }

  onSample(w: WalReading): void {
    // A plain number (exact below 2^53 bytes, ~9 PB of WAL): the shadow path compares numbers.
    this.last = { at: w.at, source: Number(w.writeLsn), applied: w.replayLsn === null ? null : Number(w.replayLsn) };
    this.recent.push(this.last);
    while (this.recent.length > 0 && this.recent[0]!.at < w.at - KEEP_MS) this.recent.shift();
  }

  /** No more readings will come: a shadow still waiting for one is judged without lag. */
  close(): void {
    this.closed = true;
  }
}
