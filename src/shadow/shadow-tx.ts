/**
 * One lock-step shadow transaction (DESIGN.md, "Shadow writes"): the client's frames for the source are
 * copied to a pooled target connection as they are sent, inside the proxy's own BEGIN, and the transaction
 * always ends with ROLLBACK there. The source's reply is tapped on its way to the client; each unit's results
 * on both sides are compared when both have arrived. Nothing here waits: a shadow that falls behind, blocks
 * or breaks is abandoned, never the client.
 */
import { Backend, Frontend } from '../protocol/codes.js';
import { FrameReader } from '../protocol/framer.js';
import { queryFrame, SYNC_FRAME } from '../protocol/frontend-encode.js';
import { parseHead, queryText } from '../protocol/frontend-decode.js';
import { sendCancelRequest } from '../proxy/backend-connect.js';
import { compareUnits, type Difference } from './compare.js';
import { ResultCollector, type MaskRule, type UnitResult } from './results.js';
import type { ShadowConn, UnitSink } from './shadow-conn.js';
import type { Classifier } from '../router/classify.js';

export interface ShadowContext {
  classifier: Classifier;
  mask: MaskRule;
  capMs: number;

  /** Session settings to reproduce first (SET statements). */
  prelude: string[];
  /** Named statements of the client session: name → original Parse frame. */
  named: ReadonlyMap<string, { text: string; parse: Buffer }>;
  /** `startedAt`: when the transaction began (Date.now()), to explain a difference by replication lag. */
  onCompared(d: Difference | null, text: string, latencyMs: number, startedAt: number, resultAt: number): void;
  onAbandoned(why: string): void;
  onDone(conn: ShadowConn, healthy: boolean): void;
}

interface Pair {
  src?: UnitResult;
  shd?: UnitResult;
  text: string;
  sentAt: number;
  shdAt?: number;
  /** Wall-clock time the shadow's result arrived. */
  shdWall?: number;
}

/** Statements that cannot run inside the shadow's transaction, or would end it: never shadowed. */
const UNSAFE = /\b(commit|rollback|abort|end|prepare\s+transaction|concurrently|vacuum|alter\s+system|create\s+database|drop\s+database|tablespace)\b/i;

export class ShadowTx {
  private readonly srcFrames = new FrameReader(0x7fffffff, null);
  private readonly srcCollector: ResultCollector;
  /** Source units in flight: the pair they belong to, or null when not compared. */
  private readonly srcExpect: (Pair | null)[] = [];
  private readonly parsed = new Set<string>();
  private unitText = '';
  private unitForwarded = false;
  private unitSkipped = false;
  private abandoned = false;
  private finished = false;
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = Date.now();

  constructor(
    private readonly conn: ShadowConn,
    private readonly ctx: ShadowContext,
  ) {
    this.srcCollector = new ResultCollector(ctx.mask, (u) => {
      const p = this.srcExpect.shift();
      if (p) {
        p.src = u;
        this.settle(p);
      }
    });
    const prelude = ctx.prelude.map(queryFrame);
    prelude.push(queryFrame('BEGIN'));
    this.write(Buffer.concat(prelude), prelude.map(() => null));
    this.timer = setTimeout(() => this.abandon(`open longer than ${ctx.capMs} ms`), ctx.capMs);
    this.timer.unref();
  }

  get active(): boolean {
    return !this.abandoned && !this.finished;
  }

  /** A client frame just sent to the source. */
  clientFrame(type: number, buf: Buffer, start: number, end: number): void {
    if (this.finished) return;
    const endsUnit = type === Frontend.Query || type === Frontend.Sync || type === Frontend.FunctionCall;
    if (this.abandoned) {
      if (endsUnit) this.srcExpect.push(null);
      return;
    }
    const body = buf.subarray(start + 5, end);
    let text: string | null = null;
    if (type === Frontend.Query) text = queryText(body);
    else if (type === Frontend.Parse) text = parseHead(body)?.text ?? null;
    else if (type === Frontend.Bind) text = this.bindText(body);
    if (text !== null) {
      this.unitText ||= text;
      const c = this.ctx.classifier.classify(text);
      if (c.cls === 'tx-end' || (c.multi && UNSAFE.test(text)) || (c.cls === 'write' && UNSAFE.test(text))) {
        // The client's COMMIT/ROLLBACK is not copied: the shadow's own ROLLBACK ends it when the source's
        // transaction is over. Statements that cannot run in a transaction are left out the same way.
        this.unitSkipped = true;
      }
    }
    if (type === Frontend.FunctionCall) this.unitSkipped = true;
    if (!this.unitSkipped) {
      if (type === Frontend.Bind) this.ensureParsed(body);
      if (type === Frontend.Parse && body[0] !== 0) this.parsed.add(body.toString('utf8', 0, body.indexOf(0)));
      if (!endsUnit) {
        this.unitForwarded = true;
        this.write(buf.subarray(start, end), []);
        return;
      }
    }
    if (!endsUnit) return;
    // End of a unit (Query or Sync): compared only when the whole unit reached the shadow.
    if (!this.unitSkipped) {
      const pair: Pair = { text: this.unitText, sentAt: performance.now() };
      this.srcExpect.push(pair);
      this.write(buf.subarray(start, end), [(u) => this.shadowUnit(pair, u)]);
    } else {
      this.srcExpect.push(null);
      if (this.unitForwarded && type === Frontend.Sync) this.write(SYNC_FRAME, [null]);
    }
    this.unitText = '';
    this.unitForwarded = false;
    this.unitSkipped = false;
  }

  /** Bytes of the source's reply, as forwarded to the client. */
  sourceData(chunk: Buffer): void {
    if (this.finished) return;
    this.srcFrames.feed(chunk, (type, buf, start, end) => {
      if (type === Backend.NoticeResponse || type === Backend.ParameterStatus || type === Backend.NotificationResponse) return;
      this.srcCollector.frame(type, buf, start, end);
    });
  }

  /** The client's transaction is over on the source: roll the shadow back and return the connection. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    if (this.conn.dead) return this.ctx.onDone(this.conn, false);
    this.conn.onIdle = () => this.ctx.onDone(this.conn, !this.conn.dead);
    this.conn.send(Buffer.concat([queryFrame('ROLLBACK'), queryFrame('DISCARD ALL')]), [null, null]);
  }

  /** Gives up on this shadow (cap reached, backed-up socket, target error): the client is not affected. */
  abandon(why: string): void {
    if (this.abandoned || this.finished) return;
    this.ctx.onAbandoned(why);
    this.stop(true);
  }

  /**
   * Stops copying and rolls the shadow back now, so it holds no lock while the client's transaction goes on
   * (the apply worker must never wait for a shadow). `cancel` first stops a statement that may be blocked.
   */
  private stop(cancel: boolean): void {
    this.abandoned = true;
    for (let i = 0; i < this.srcExpect.length; i++) this.srcExpect[i] = null;
    if (this.conn.dead) return;
    if (cancel) void sendCancelRequest(this.conn.target, this.conn.pid, this.conn.secret);
    this.conn.send(queryFrame('ROLLBACK'), [null]);
  }

  private write(bytes: Buffer, sinks: (UnitSink | null)[]): void {
    if (this.conn.dead) return this.abandon('shadow connection lost');
    if (!this.conn.send(bytes, sinks)) this.abandon('shadow connection backed up');
  }

  /** The shadow connection broke mid-transaction (target down): counted, the client goes on. */
  connectionLost(): void {
    if (!this.finished) this.abandon('shadow connection lost');
  }

  private bindText(body: Buffer): string | null {
    const z = body.indexOf(0);
    const z2 = z < 0 ? -1 : body.indexOf(0, z + 1);
    if (z2 <= z + 1) return null;
    return this.ctx.named.get(body.toString('utf8', z + 1, z2))?.text ?? null;
  }

  /** A Bind of a named statement this shadow connection has not parsed yet: send the client's Parse first. */
  private ensureParsed(body: Buffer): void {
    const z = body.indexOf(0);
    const z2 = z < 0 ? -1 : body.indexOf(0, z + 1);
    if (z2 <= z + 1) return;
    const name = body.toString('utf8', z + 1, z2);
    if (this.parsed.has(name)) return;
    const st = this.ctx.named.get(name);
    if (!st) return;
    this.parsed.add(name);
    this.write(st.parse, []);
  }

  private shadowUnit(p: Pair, u: UnitResult): void {
    p.shd = u;
    p.shdAt = performance.now();
    p.shdWall = Date.now();
    this.settle(p);
  }

  private settle(p: Pair): void {
    if (p.src === undefined || p.shd === undefined || this.abandoned) return;
    const d = compareUnits(p.src, p.shd);
    this.ctx.onCompared(d, p.text, (p.shdAt ?? p.sentAt) - p.sentAt, this.startedAt, p.shdWall ?? Date.now());
    // After a difference the shadow's transaction no longer mirrors the source's: stop comparing.
    if (d !== null) this.stop(false);
  }
}
