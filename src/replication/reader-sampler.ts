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
import pg from 'pg';
import { log } from '../support/log.js';
import { parseLsn } from './lsn.js';
import { controlApplicationName } from './control-conn.js';
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
  private readonly clients: (pg.Client | null)[];
  private target: pg.Client | null = null;
  private readonly failing = new Set<string>();
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly o: ReaderSamplerOptions) {
    this.clients = o.readers.map(() => null);
    this.now = o.now ?? Date.now;
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
    try {
      this.target ??= await this.connect(this.o.targetControl, 'readers');
      const r = await this.target.query(TARGET_POSITION);
      const row = r.rows[0] as { t: string; b: number; s: string };
      this.chain.add(walEnd(parseLsn(row.t), BigInt(row.b), BigInt(row.s)), x.readerLsn);
    } catch (e) {
      this.note('target primary', e);
      void this.target?.end().catch(() => {});
      this.target = null;
    }
  }

  private async sampleReader(r: ReaderView, i: number, x: LsnSample): Promise<void> {
    try {
      let c = this.clients[i];
      if (c === null) {
        c = await this.connect(this.o.readerControl[i], 'reader');
        this.clients[i] = c;
      }
      const res = await c.query('SELECT pg_last_wal_replay_lsn()::text AS p');
      const p = (res.rows[0] as { p: string | null }).p;
      const replay = p === null ? null : parseLsn(p);
      const applied = replay === null ? null : x.writer === 'source' ? this.chain.appliedAt(replay) : replay;
      const at = this.now();
      r.book.add({ seq: x.seq, writer: x.writer, writerLsn: x.writerLsn, readerLsn: applied, at });
      if (!r.up || this.failing.has(r.name)) log.info({ reader: r.name }, 'target reader answering again');
      r.up = true;
      this.failing.delete(r.name);
      this.o.onLag?.(r.name, r.book.staleness(at));
    } catch (e) {
      r.up = false;
      this.note(r.name, e);
      const c = this.clients[i];
      this.clients[i] = null;
      void c?.end().catch(() => {});
    }
  }

  private async connect(cfg: pg.ClientConfig, what: string): Promise<pg.Client> {
    const timeout = this.o.queryTimeoutMs ?? 2000;
    const c = new pg.Client({
      ...cfg,
      application_name: controlApplicationName(what),
      connectionTimeoutMillis: timeout,
      query_timeout: timeout,
    });
    c.on('error', () => {});
    try {
      await c.connect();
    } catch (e) {
      void c.end().catch(() => {});
      throw e;
    }
    return c;
  }

  private note(who: string, e: unknown): void {
    if (this.closed || this.failing.has(who)) return;
    this.failing.add(who);
    log.warn({ reader: who, err: (e as Error).message }, 'target reader sample failed; reads skip it until it answers');
  }

  async stop(): Promise<void> {
    this.closed = true;
    await Promise.all([this.target, ...this.clients].map((c) => c?.end().catch(() => {})));
  }
}
