/**
 * Target readers for a client session's reads (issue 15 item 2): binds the pure choice (router/readers.ts)
 * to routed units. A read unit the router sends to the target goes to a reader that is up, not backed off,
 * has applied the session's last commit and is within --max-read-staleness-ms; otherwise to the target
 * primary. Nothing that writes ever goes to a reader: only a whole read unit of an unpinned session that
 * begins no transaction, decided after the router has classified it, while the target is not the writer.
 */
import type { Role } from '../domain/role.js';
import type { FreshnessBook } from '../router/freshness.js';
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

  constructor(private readonly o: ReaderRoutingOptions) {
    this.now = o.now ?? Date.now;
    this.rand = o.rand ?? Math.random;
  }

  /** The reader for a unit routed to `role` (after Router.route), or -1: the role's primary. */
  readerFor(s: SessionRouting, role: Role, unit: readonly Frame[]): number {
    const router = this.o.router;
    const p = router.policy();
    if (role !== 'target' || p.writesTo === 'target' || s.unitWrite || s.pinnedTo !== null || !isWhole(unit)) return -1;
    for (const f of unit) if (router.factOf(s, f).c?.cls === 'tx-begin') return -1;
    const f = this.o.freshness;
    return this.o.choice.pick(s.fresh, router.flip, f?.book ?? null, p.writesTo, this.now(), f?.maxStalenessMs ?? 0, this.rand());
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
