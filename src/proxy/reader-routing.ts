/**
 * Target readers for a client session's reads (issue 15 item 2): binds the pure choice (router/readers.ts)
 * to routed units. A read unit the router sends to the target (the non-writer in READS_*, the writer from
 * WRITES_TO_AURORA on) goes to a reader that is up, not backed off, has applied the session's last commit and
 * is within --max-read-staleness-ms; otherwise to the target primary. Nothing that writes ever goes to a
 * reader: only a whole read unit of an unpinned session that begins no transaction, decided after the router
 * has classified it.
 */
import type { Role } from '../domain/role.js';
import { newSessionFreshness, type FreshnessBook } from '../router/freshness.js';
import type { ReaderChoice } from '../router/readers.js';
import type { Frame } from '../protocol/framer.js';
import type { Router, SessionRouting } from './router-glue.js';
import { isWhole } from './unit-assembler.js';

export interface ReaderRoutingOptions {
  choice: ReaderChoice;
  router: Router;
  /** Read-your-writes and the staleness bound (the router's own); null: readers are chosen by health alone. */
  freshness: { book: FreshnessBook; maxStalenessMs: number } | null;
  now?: () => number;
  rand?: () => number;
}

export class ReaderRouting {
  private readonly now: () => number;
  private readonly rand: () => number;
  /** The writer at the last routed unit, and the wait every reader passes once after it changes. */
  private writer: Role | null = null;
  private readonly writerGuard = newSessionFreshness();

  constructor(private readonly o: ReaderRoutingOptions) {
    this.now = o.now ?? Date.now;
    this.rand = o.rand ?? Math.random;
  }

  /** The reader for a unit routed to `role` (after Router.route), or -1: the role's primary. */
  readerFor(s: SessionRouting, role: Role, unit: readonly Frame[]): number {
    const router = this.o.router;
    const p = router.policy();
    const f = this.o.freshness;
    if (p.writesTo !== this.writer) {
      if (this.writer !== null) f?.book.commitSeen(this.writerGuard);
      this.writer = p.writesTo;
    }
    if (role !== 'target' || s.unitWrite || s.pinnedTo !== null || !isWhole(unit)) return -1;
    for (const fr of unit) if (router.factOf(s, fr).c?.cls === 'tx-begin') return -1;
    return this.o.choice.pick(s.fresh, [router.flip, this.writerGuard], f?.book ?? null, p.writesTo, this.now(), f?.maxStalenessMs ?? 0, this.rand());
  }

  /**
   * From WRITES_TO_AURORA on everything goes to the target, so the forwarding fast path would skip the
   * classification readers need: with readers, units to the target are routed.
   */
  routesTarget(): boolean {
    return this.o.choice.views.length > 0;
  }

  /** A session's link to reader `i` failed (lost, refused, a server fault): reads skip it for a while. */
  failed(i: number): void {
    this.o.choice.failed(i, this.now());
  }

  /** Reader `i` answers its samples and is not backed off (prewarm skips the others). */
  usable(i: number): boolean {
    return this.o.choice.usable(i, this.now());
  }

  name(i: number): string {
    return this.o.choice.views[i]?.name ?? `reader ${i}`;
  }
}
