/**
 * Feeds the read-your-writes book (router/freshness.ts) from the WAL sampler (wal-sampler.ts): each reading's
 * insert position on the writer and the slowest replica's applied position.
 *
 * The sequence number is taken right before the sampler sends its query, so a session that saw its commit's
 * ReadyForQuery before that knows the reading's writer position covers its commit.
 */
import type pg from 'pg';
import { log } from '../support/log.js';
import { WalSampler, type WalListener, type WalReading } from './wal-sampler.js';
import type { FreshnessBook, LsnSample } from '../router/freshness.js';
import type { Role } from '../domain/role.js';

export interface FreshnessSamplerOptions {
  book: FreshnessBook;
  /** The writer now (the cutover state's). */
  writer(): Role;
  /** Control connection settings per backend (for a sampler of its own, when `wal` is not given). */
  control: Record<Role, pg.ClientConfig>;
  everyMs: number;
  /** The sidecar's shared WAL sampler; without it this sampler opens its own. */
  wal?: WalSampler;
  /** Each reading's staleness (ms; null unknown), for the metrics. */
  onSample?(stalenessMs: number | null): void;
  /** After each booked reading, before the next one (the target readers' sampler: reader-sampler.ts). */
  afterSample?(x: LsnSample): Promise<void>;
  now?: () => number;
}

export class FreshnessSampler implements WalListener {
  private readonly wal: WalSampler;
  private readonly owned: boolean;
  private unlisten: (() => void) | null = null;
  private seq = 0;
  /** The last failure, logged once until a sample succeeds again. */
  private failing = false;

  constructor(private readonly o: FreshnessSamplerOptions) {
    this.owned = o.wal === undefined;
    this.wal = o.wal ?? new WalSampler({ writer: o.writer, control: o.control, everyMs: o.everyMs, purpose: 'freshness', now: o.now });
  }

  start(): void {
    this.unlisten ??= this.wal.listen(this);
  }

  beforeSample(): void {
    this.seq = this.o.book.begin();
  }

  async onSample(r: WalReading): Promise<void> {
    const x: LsnSample = { seq: this.seq, writer: r.writer, writerLsn: r.insertLsn, readerLsn: r.replayLsn, at: r.at };
    this.o.book.add(x);
    this.o.onSample?.(this.o.book.staleness(r.at));
    this.failing = false;
    await this.o.afterSample?.(x);
  }

  onError(err: Error, writer: Role): void {
    if (!this.failing) log.warn({ err: err.message, writer }, 'read-your-writes sample failed; reads after writes stay on the writer');
    this.failing = true;
  }

  async stop(): Promise<void> {
    this.unlisten?.();
    this.unlisten = null;
    if (this.owned) await this.wal.stop();
  }
}
