/**
 * One lock-step shadow transaction (DESIGN.md, "Shadow writes"): the client's frames for the source are
 * copied to a pooled target connection as they are sent, inside the proxy's own BEGIN, and the transaction
 * ends with ROLLBACK there. The source's reply is tapped on its way to the client; each unit's results
 * on both sides are compared when both have arrived. Nothing here waits: a shadow that falls behind, blocks
 * or breaks is abandoned, never the client.
 *
 * Apply mode (`ctx.apply`, see shadower.ts for its danger) ends the shadow with COMMIT when the source's
 * transaction committed, read from the tapped reply (tx-outcome.ts). The COMMIT waits until the shadow has
 * answered and been compared on every statement, so a shadow that differed is rolled back, not committed.
 * A dark read is the same machinery opened with BEGIN READ ONLY (`ctx.begin`).
 */
import { Backend, Frontend } from '../protocol/codes.js';
import { FrameReader } from '../protocol/framer.js';
import { queryFrame, SYNC_FRAME } from '../protocol/frontend-encode.js';
import { parseHead, queryText } from '../protocol/frontend-decode.js';
import { sendCancelRequest } from '../net/backend-connect.js';
import { compareUnits, type Difference } from './compare.js';
import { ResultCollector, type MaskRule, type UnitResult } from './results.js';
import type { ShadowConn, UnitSink } from './shadow-conn.js';
import type { Classifier } from '../router/classify.js';
import { SourceTxOutcome, type SourceVerdict } from './tx-outcome.js';
import { quoteIdent } from '../replication/sql.js';
import { log } from '../support/log.js';

/** Roles whose refused SET ROLE was logged (once per role per process). */
const warnedRoles = new Set<string>();

/** What an apply-mode shadow did with the source's transaction. */
export type ApplyOutcome = 'committed' | 'partial' | 'rolled-back' | 'lost';

export interface ShadowContext {
  classifier: Classifier;
  mask: MaskRule;
  capMs: number;

  /** Session settings to reproduce first (SET statements). */
  prelude: string[];
  /** Named statements of the client session: name → original Parse frame. */
  named: ReadonlyMap<string, { text: string; parse: Buffer }>;
  /** The shadow's own transaction start: 'BEGIN', or 'BEGIN READ ONLY' for a dark read. */
  begin: string;
  /**
   * The role the client's session runs as (its own login), or null for the URL's login. The shadow acts as it
   * (SET LOCAL ROLE, undone by the shadow's own ROLLBACK or COMMIT), so privileges, row-level security and
   * current_user defaults mean on the shadow what they meant on the source.
   */
  role?: string | null;
  /** The target refused SET ROLE (the shadow's login is not a member of the role): the shadow is abandoned. */
  onRoleRefused?(why: string): void;
  /** Commit when the source committed (apply mode); else always roll back. */
  apply: boolean;
  /**
   * Apply mode: the shadow's end. 'committed': the source committed and so did the shadow; 'partial': both
   * committed but statements the shadow cannot run were left out; 'rolled-back': the source did not commit;
   * 'lost': the source committed and the shadow could not (abandoned, differed, target error).
   */
  onApplied?(o: ApplyOutcome): void;
  /** `startedAt`: when the transaction began (Date.now()), to explain a difference by replication lag. */
  onCompared(d: Difference | null, text: string, latencyMs: number, startedAt: number, resultAt: number): void;
  onAbandoned(why: string): void;
  onDone(conn: ShadowConn, healthy: boolean): void;
}

interface Pair {
  src?: UnitResult;
  shd?: UnitResult;
  text: string;
  /** When the unit was sent, or when its predecessor answered if that was later (see ShadowTx.lastReplyAt). */
  sentAt: number;
  shdAt?: number;
  /** Wall-clock time the shadow's result arrived. */
  shdWall?: number;
}


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
  /** Apply mode only: the source's transaction outcome, read from the tapped reply. */
  private readonly outcome: SourceTxOutcome | null;
  /** Apply mode: the source's verdict, until onApplied has been told what the shadow made of it. */
  private verdict: SourceVerdict | null = null;
  /** Apply mode: a statement the shadow cannot run was left out (other than the client's COMMIT/ROLLBACK). */
  private partial = false;
  private doneCalled = false;
  /**
   * When the shadow's previous unit answered (performance.now()). Units are pipelined on the shadow connection,
   * so one sent while its predecessor still runs waits for it there; its latency counts from this, not from
   * when it was sent: a client talking to the target would not have sent it before the predecessor answered.
   */
  private lastReplyAt = 0;

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
    this.outcome = ctx.apply ? new SourceTxOutcome() : null;
    const prelude = ctx.prelude.map(queryFrame);
    prelude.push(queryFrame(ctx.begin));
    const sinks: (UnitSink | null)[] = prelude.map(() => null);
    if (ctx.role) {
      const role = ctx.role;
      prelude.push(queryFrame(`SET LOCAL ROLE ${quoteIdent(role)}`));
      sinks.push((u) => {
        const failed = u.find((s) => !s.ok);
        if (!failed) return;
        const why = `SET ROLE ${role} refused on the target (${failed.sqlstate ?? 'error'})`;
        if (!warnedRoles.has(role)) {
          warnedRoles.add(role);
          log.warn({ role, err: why }, 'a shadow cannot act as the client\'s role on the target: grant the role to the shadow login (GRANT <role> TO <target login>); its shadows are abandoned');
        }
        ctx.onRoleRefused?.(why);
        this.abandon(why);
      });
    }
    this.write(Buffer.concat(prelude), sinks);
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
      // Statements that cannot run inside the shadow's transaction, or would end it (the classifier's
      // `shadowable`), are never shadowed.
      if (c.cls === 'tx-end' || !c.shadowable) {
        // The client's COMMIT/ROLLBACK is not copied: the shadow's own ROLLBACK ends it when the source's
        // transaction is over. Statements that cannot run in a transaction are left out the same way.
        this.unitSkipped = true;
        if (c.cls !== 'tx-end') this.partial = true;
      }
    }
    if (type === Frontend.FunctionCall) this.unitSkipped = this.partial = true;
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
    const o = this.outcome;
    this.srcFrames.feed(chunk, (type, buf, start, end) => {
      if (type === Backend.NoticeResponse || type === Backend.ParameterStatus || type === Backend.NotificationResponse) return;
      if (o !== null) {
        if (type === Backend.CommandComplete) o.commandComplete(buf.toString('latin1', start + 5, end - 1));
        else if (type === Backend.ErrorResponse) o.error();
        else if (type === Backend.ReadyForQuery) o.ready(buf[start + 5]);
      }
      this.srcCollector.frame(type, buf, start, end);
    });
  }

  /**
   * The client's transaction is over on the source (or the client left): end the shadow and return the
   * connection. Rollback mode rolls back at once; apply mode commits what the source committed, once the
   * shadow has answered everything sent to it.
   */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    if (this.outcome !== null) this.verdict = this.outcome.verdict(this.srcExpect.length > 0);
    if (this.conn.dead) {
      this.applied(false);
      return this.done(false);
    }
    if (this.verdict === null) return this.end('ROLLBACK', null);
    const close = () => {
      if (this.verdict !== 'commit' || this.abandoned || this.conn.dead) {
        this.applied(false);
        return this.end('ROLLBACK', null);
      }
      // COMMIT of a transaction that failed on the target answers with the tag ROLLBACK (sql-commit.html).
      this.end('COMMIT', (u) => this.applied(u.length === 1 && u[0].ok && u[0].tag === 'COMMIT'));
    };
    // Every earlier unit's shadow reply has been compared by the time the connection is idle (settle runs
    // synchronously on each reply), so a difference found there turns the COMMIT into a ROLLBACK.
    if (this.conn.busy) this.conn.onIdle = close;
    else close();
  }

  private end(sql: 'COMMIT' | 'ROLLBACK', sink: UnitSink | null): void {
    if (this.conn.dead) {
      this.applied(false);
      return this.done(false);
    }
    this.conn.onIdle = () => this.done(!this.conn.dead);
    this.conn.send(Buffer.concat([queryFrame(sql), queryFrame('DISCARD ALL')]), [sink, null]);
  }

  /** Apply mode: reports once what became of the source's transaction on the target. */
  private applied(shadowCommitted: boolean): void {
    const v = this.verdict;
    if (v === null) return;
    this.verdict = null;
    const o: ApplyOutcome = v === 'rollback' ? 'rolled-back' : v === 'mixed' || !shadowCommitted ? 'lost' : this.partial ? 'partial' : 'committed';
    this.ctx.onApplied?.(o);
  }

  private done(healthy: boolean): void {
    if (this.doneCalled) return;
    this.doneCalled = true;
    this.ctx.onDone(this.conn, healthy);
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

  /** The shadow connection broke (target down): counted, the client goes on. */
  connectionLost(): void {
    if (!this.finished) return this.abandon('shadow connection lost');
    // Ended already, waiting for the shadow's last replies: they will not come.
    this.applied(false);
    this.done(false);
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
    p.sentAt = Math.max(p.sentAt, this.lastReplyAt);
    this.lastReplyAt = p.shdAt;
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
