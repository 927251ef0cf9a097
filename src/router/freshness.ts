/**
 * Read-your-writes by LSN (issue 15 item 1, DESIGN.md "Cutover state machine"): after a session's write
 * commits on the writer, its reads go to the other side only once that side has applied the commit.
 *
 * No round trip per commit: a sampler on the control side reads, every few milliseconds, the writer's WAL
 * insert position and the position the reader has applied (one query on the writer, see
 * replication/freshness-sampler.ts), and books each reading here with a sequence number taken just before
 * its query was sent. A session whose write unit just ended (its ReadyForQuery arrived) needs the first
 * reading whose query was sent after that moment: that reading's writer position is at or past the commit.
 * Until such a reading exists, and until the reader's applied position reaches it, the session's reads stay
 * on the writer. Everything here is pure and synchronous: the hot path decides without a query.
 */
import type { Role } from '../domain/role.js';

export interface LsnSample {
  /** From FreshnessBook.begin(), taken right before the sample's query was sent. */
  readonly seq: number;
  /** The backend that was the writer when sampled. */
  readonly writer: Role;
  /** The writer's WAL insert position (pg_current_wal_insert_lsn). */
  readonly writerLsn: bigint;
  /** What the reader has applied, in the writer's LSN terms; null when unknown (no replication seen). */
  readonly readerLsn: bigint | null;
  /** Clock time of the reading (ms). */
  readonly at: number;
}

/** What a session waits for: `need` 0 means nothing (no write since the reader last caught up). */
export interface SessionFreshness {
  /** The sample sequence number whose writer position covers the session's last commit. */
  need: number;
  /** That sample's writer position, once it exists. */
  lsn: bigint | null;
  /**
   * The last commit position the wait cleared at (the target primary had applied it), kept for target
   * readers (./readers.ts), which may still trail it.
   */
  done: { lsn: bigint; writer: Role } | null;
}

export const newSessionFreshness = (): SessionFreshness => ({ need: 0, lsn: null, done: null });

const RING = 1024;

export class FreshnessBook {
  /** Sequence number of the last sample whose query was sent. */
  private started = 0;
  private readonly ring: (LsnSample | undefined)[] = new Array(RING);
  last: LsnSample | null = null;
  /**
   * Writer time (ms) up to which the reader has applied everything: the time of the newest sample whose
   * writer position the reader has reached. Staleness of the reader = now - freshAt. -Infinity: unknown.
   */
  freshAt = -Infinity;

  /** The sampler is about to send a query: its sequence number. */
  begin(): number {
    return ++this.started;
  }

  /** A session's write unit ended now: the sample it needs is the next one sent. */
  commitSeen(s: SessionFreshness): void {
    s.need = this.started + 1;
    s.lsn = null;
  }

  add(x: LsnSample): void {
    this.ring[x.seq % RING] = x;
    this.last = x;
    if (x.readerLsn === null) {
      this.freshAt = -Infinity;
      return;
    }
    // The newest sample (same writer) whose position the reader has reached. Samples arrive in order.
    for (let seq = x.seq; seq > x.seq - RING && seq > 0; seq--) {
      const y = this.ring[seq % RING];
      if (y === undefined || y.seq !== seq) continue;
      if (y.writer !== x.writer) break;
      if (y.writerLsn <= x.readerLsn) {
        if (y.at > this.freshAt || this.freshAt === -Infinity) this.freshAt = y.at;
        return;
      }
    }
  }

  /** The sample numbered `seq`, or the oldest later one still kept; null when not taken yet. */
  sampleFor(seq: number): LsnSample | null {
    const last = this.last;
    if (last === null || last.seq < seq) return null;
    const exact = this.ring[seq % RING];
    if (exact !== undefined && exact.seq === seq) return exact;
    // Fell out of the ring (or its query failed): a later sample is further along, so still covers the commit.
    for (let k = Math.max(seq + 1, last.seq - RING + 1); k <= last.seq; k++) {
      const y = this.ring[k % RING];
      if (y !== undefined && y.seq === k) return y;
    }
    return last;
  }

  /** Staleness of the reader now (ms), null when unknown. */
  staleness(now: number): number | null {
    return this.freshAt === -Infinity ? null : Math.max(0, now - this.freshAt);
  }
}

/**
 * May this session's read go to the reader (the non-writer)? False keeps it on the writer. Clears the
 * session's wait once the reader has applied its last commit (the reader only moves forward).
 * `maxStalenessMs` > 0 also bounds every read by the reader's staleness.
 */
export function readerFresh(s: SessionFreshness, book: FreshnessBook, writer: Role, now: number, maxStalenessMs: number): boolean {
  if (s.need > 0) {
    const last = book.last;
    if (last === null || last.seq < s.need || last.readerLsn === null) return false;
    if (s.lsn === null) {
      const at = book.sampleFor(s.need)!;
      if (at.writer !== writer) {
        // The writer changed since the write: a writer change waits until the new writer has applied the
        // old one's last position, so the write is where the reads go now.
        s.need = 0;
      } else s.lsn = at.writerLsn;
    }
    if (s.need > 0) {
      if (last.writer !== writer || last.readerLsn < s.lsn!) return false;
      s.done = { lsn: s.lsn!, writer };
      s.need = 0;
      s.lsn = null;
    }
  }
  if (maxStalenessMs > 0) {
    const st = book.staleness(now);
    if (st === null || st > maxStalenessMs) return false;
  }
  return true;
}
