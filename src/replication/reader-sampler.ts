/**
 * Samples the target readers' applied positions (issue 15 item 2; the pure part is router/readers.ts). Runs
 * right after each reading of the main freshness sampler, with its sequence number and writer position:
 *
 *  - while the source is the writer, one query on the target primary reads its WAL insert position, after
 *    the main reading showed what the target had applied of the source: that pair goes into the chain;
 *  - each reader is asked `pg_last_wal_replay_lsn()` (a physical standby's replay position, in the target
 *    primary's terms) and its position in the writer's terms is booked for it.
 *
 * A reader whose query fails is marked down (the router skips it) until a reading succeeds again.
 */
import type pg from 'pg';
import { log } from '../support/log.js';
import { parseLsn } from './lsn.js';
import { controlServer, type SessionTuning } from './control-server.js';
import type { ControlSession } from './control-session.js';
import { ChainMap, type ReaderView } from '../router/readers.js';
import type { LsnSample } from '../router/freshness.js';

/** The target primary's WAL insert position, with the page and segment sizes walEnd needs. */
const TARGET_POSITION =
  "SELECT pg_current_wal_insert_lsn()::text AS t, current_setting('wal_block_size')::int AS b, pg_size_bytes(current_setting('wal_segment_size'))::text AS s";

/**
 * The end of the WAL inserted so far. On an empty page, pg_current_wal_insert_lsn() points past the page
 * header (24 bytes, 40 at a segment's start: XLogBytePosToRecPtr), while a standby that replayed everything
 * reports the page's start (the last record's end): an idle target right after a segment switch (as after
 * pg_basebackup) left every reader "unknown" until the target wrote again. An offset of exactly the header
 * means nothing is on the page yet (any record, or the rest of one, would lie past it), so the page's start is
 * where the WAL ends.
 */
export function walEnd(insert: bigint, blockSize: bigint, segmentSize: bigint): bigint {
  if (insert % segmentSize === 40n) return insert - 40n;
  if (insert % blockSize === 24n && insert % segmentSize !== 24n) return insert - 24n;
  return insert;
}

export interface ReaderSamplerOptions {
  readers: readonly ReaderView[];
  /** Control connection settings for each reader (same order as `readers`). */
  readerControl: readonly pg.ClientConfig[];
  /** Control connection settings for the target primary. */
  targetControl: pg.ClientConfig;
  /** Each reader's staleness after a reading (ms; null unknown), for the lag histogram. */
  onLag?(reader: string, ms: number | null): void;
  now?: () => number;
  /** Per-query timeout (ms); a reader that does not answer in time counts as down. Default 2000. */
  queryTimeoutMs?: number;
}

export class ReaderSampler {
  private readonly chain = new ChainMap();
  // Control sessions (control-server.ts): each reconnects on its own, with backoff, statement-bounded.
  private readonly sessions: ControlSession[];
  private readonly target: ControlSession;
  private readonly failing = new Set<string>();
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly o: ReaderSamplerOptions) {
    this.now = o.now ?? Date.now;
    const timeout = o.queryTimeoutMs ?? 2000;
    const tuning: SessionTuning = { connectTimeoutMs: timeout, queryTimeoutMs: timeout, minBackoffMs: 100, maxBackoffMs: 2000, now: this.now };
    this.target = controlServer(o.targetControl, 'target').session('readers', tuning);
    this.sessions = o.readers.map((r, i) => controlServer(o.readerControl[i]!, r.name).session('reader', tuning));
  }

  /**
   * After a main reading (already booked in the main book). Never throws. A query still running from an
   * earlier reading (a reader slow to answer) is not doubled: that reader skips this reading. The sidecar
   * does not await it, so a reader that hangs never delays the main sampler (read-your-writes).
   */
  async afterSample(x: LsnSample): Promise<void> {
    if (this.closed) return;
    const work: Promise<void>[] = [];
    if (x.writer === 'source' && !this.chainBusy) {
      this.chainBusy = true;
      work.push(this.sampleChain(x).finally(() => (this.chainBusy = false)));
    }
    this.o.readers.forEach((r, i) => {
      if (this.busy[i]) return;
      this.busy[i] = true;
      work.push(this.sampleReader(r, i, x).finally(() => (this.busy[i] = false)));
    });
    await Promise.all(work);
  }

  private chainBusy = false;
  private readonly busy: boolean[] = [];

  /** Target WAL end → what the target had applied of the source, read after the main reading. */
  private async sampleChain(x: LsnSample): Promise<void> {
    const r = await this.target.ask<{ t: string; b: number; s: string }>(TARGET_POSITION);
    if (!r.ok) return this.note('target primary', r.error.message);
    const row = r.rows[0]!;
    this.chain.add(walEnd(parseLsn(row.t), BigInt(row.b), BigInt(row.s)), x.readerLsn);
  }

  private async sampleReader(r: ReaderView, i: number, x: LsnSample): Promise<void> {
    const res = await this.sessions[i]!.ask<{ p: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS p');
    if (!res.ok) {
      r.up = false;
      this.note(r.name, res.error.message);
      return;
    }
    const p = res.rows[0]!.p;
    const replay = p === null ? null : parseLsn(p);
    const applied = replay === null ? null : x.writer === 'source' ? this.chain.appliedAt(replay) : replay;
    const at = this.now();
    r.book.add({ seq: x.seq, writer: x.writer, writerLsn: x.writerLsn, readerLsn: applied, at });
    if (!r.up || this.failing.has(r.name)) log.info({ reader: r.name }, 'target reader answering again');
    r.up = true;
    this.failing.delete(r.name);
    this.o.onLag?.(r.name, r.book.staleness(at));
  }

  private note(who: string, err: string): void {
    if (this.closed || this.failing.has(who)) return;
    this.failing.add(who);
    log.warn({ reader: who, err }, 'target reader sample failed; reads skip it until it answers');
  }

  async stop(): Promise<void> {
    this.closed = true;
    await Promise.all([this.target, ...this.sessions].map((c) => c.close()));
  }
}
