/**
 * Target readers (issue 15 item 2): read destinations beside the target primary (an Aurora reader endpoint
 * or instances; physical standbys of the target), each with its own applied position and lag.
 *
 * A reader replays the target primary's WAL, so its position is in the target's LSN terms. While the source
 * is the writer (READS_* states) a session's commit is in the source's terms, so the sampler keeps a chain:
 * after each reading of what the target has applied of the source (the writer's pg_stat_replication), it
 * reads the target's own WAL insert position. The target had committed that applied position before that
 * insert position was read, so a reader whose replay position has reached it has applied it too. Once the
 * target is the writer, a reader's replay position is already in the writer's terms.
 *
 * Each reader gets a FreshnessBook fed with the same sequence numbers and writer positions as the main one,
 * so a session's wait (router/freshness.ts) resolves the same way against any destination. Pure.
 */
import { FreshnessBook, type SessionFreshness } from './freshness.js';
import type { Role } from '../domain/role.js';

const CHAIN = 4096;

/** Target WAL position → the writer position the target had applied before it (READS_* states). */
export class ChainMap {
  private readonly targetLsn: bigint[] = [];
  private readonly applied: bigint[] = [];

  add(targetLsn: bigint, applied: bigint | null): void {
    if (applied === null) return;
    const n = this.targetLsn.length;
    // Positions only move forward; a smaller one means the target was replaced: start again.
    if (n > 0 && targetLsn < this.targetLsn[n - 1]) this.clear();
    this.targetLsn.push(targetLsn);
    this.applied.push(applied);
    if (this.targetLsn.length > CHAIN) {
      this.targetLsn.splice(0, this.targetLsn.length - CHAIN);
      this.applied.splice(0, this.applied.length - CHAIN);
    }
  }

  /** What a reader that replayed the target's WAL up to `replay` has applied of the writer; null: unknown. */
  appliedAt(replay: bigint): bigint | null {
    // Binary search for the last target position <= replay.
    let lo = 0;
    let hi = this.targetLsn.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.targetLsn[mid] <= replay) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? null : this.applied[found];
  }

  clear(): void {
    this.targetLsn.length = 0;
    this.applied.length = 0;
  }
}

/** One reader as the router sees it. */
export interface ReaderView {
  readonly name: string;
  readonly book: FreshnessBook;
  /** False after its link or its sample failed, until a sample succeeds again. */
  up: boolean;
}

export const newReaderView = (name: string): ReaderView => ({ name, book: new FreshnessBook(), up: true });

/**
 * Has this destination applied the session's last commit (and is it within the staleness bound)? Unlike
 * readerFresh, it never clears the session's wait: the session may be sent to another destination next.
 * `doneLsn` is the session's last commit position already known to be applied by the target primary.
 */
export function covers(s: SessionFreshness, main: FreshnessBook, reader: FreshnessBook, writer: Role, now: number, maxStalenessMs: number): boolean {
  let lsn: bigint | null = null;
  if (s.need > 0) {
    if (s.lsn !== null) lsn = s.lsn;
    else {
      const at = main.sampleFor(s.need);
      if (at === null) return false;
      if (at.writer === writer) lsn = at.writerLsn;
    }
  } else if (s.done !== null && s.done.writer === writer) lsn = s.done.lsn;
  if (lsn !== null) {
    const last = reader.last;
    if (last === null || last.writer !== writer || last.readerLsn === null || last.readerLsn < lsn) return false;
  }
  if (maxStalenessMs > 0) {
    const st = reader.staleness(now);
    if (st === null || st > maxStalenessMs) return false;
  }
  return true;
}

/**
 * The reader a read routed to the target goes to: one chosen at random among the readers that are up and
 * have applied the session's last commit; -1 when none has (the target primary, or the writer, takes it).
 */
export function pickReader(readers: readonly ReaderView[], fits: (r: ReaderView) => boolean, rand: number): number {
  let count = 0;
  for (const r of readers) if (r.up && fits(r)) count++;
  if (count === 0) return -1;
  let k = Math.floor(rand * count);
  for (let i = 0; i < readers.length; i++) {
    const r = readers[i];
    if (!r.up || !fits(r)) continue;
    if (k-- === 0) return i;
  }
  return -1;
}

/**
 * The readers a sidecar routes to, with a back-off per reader after a session saw it fail (a lost or refused
 * connection, a server fault): like the target's own back-off, so one dead reader costs each session one
 * fallback, not one per read. Pure: the clock and the random draw come from the caller.
 */
export class ReaderChoice {
  private readonly downUntil: number[];

  constructor(
    readonly views: readonly ReaderView[],
    private readonly backoffMs = 2000,
  ) {
    this.downUntil = views.map(() => 0);
  }

  /** A session's link to reader `i` failed: skip it for the back-off. */
  failed(i: number, now: number): void {
    if (i >= 0 && i < this.downUntil.length) this.downUntil[i] = now + this.backoffMs;
  }

  /** Reader `i` is up (sampled) and not backed off. */
  usable(i: number, now: number): boolean {
    return this.views[i].up && now >= this.downUntil[i];
  }

  /**
   * The reader for a read the router sends to the target, or -1 for the target primary. `main` null: no
   * read-your-writes or staleness bound (any usable reader). `guards`: router-wide waits every session's
   * reads pass once: after the state started splitting reads (writes went unclassified before), after the
   * writer changed (a session's write in the old writer's terms says nothing of a reader's position).
   */
  pick(s: SessionFreshness, guards: readonly SessionFreshness[], main: FreshnessBook | null, writer: Role, now: number, maxStalenessMs: number, rand: number): number {
    if (this.views.length === 0) return -1;
    const fits =
      main === null
        ? (r: ReaderView) => now >= this.downUntil[this.views.indexOf(r)]
        : (r: ReaderView) =>
            now >= this.downUntil[this.views.indexOf(r)] && covers(s, main, r.book, writer, now, maxStalenessMs) && guards.every((g) => guardCovers(g, main, r.book, writer, now));
    return pickReader(this.views, fits, rand);
  }
}

/**
 * A router-wide wait (see ReaderChoice.pick) covered by a reader's book? Its sample must be in the writer's
 * terms now: one taken as the writer changed is replaced by the next (the wait is armed again).
 */
export function guardCovers(g: SessionFreshness, main: FreshnessBook, reader: FreshnessBook, writer: Role, now: number): boolean {
  if (g.need === 0 && g.done === null) return true;
  if (g.need > 0) {
    const at = main.sampleFor(g.need);
    if (at === null) return false;
    if (at.writer !== writer) {
      main.commitSeen(g);
      return false;
    }
  }
  return covers(g, main, reader, writer, now, 0);
}
