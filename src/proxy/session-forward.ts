/**
 * Client → backend for one session, as an explicit state machine (DESIGN.md's "walk of one query"):
 *
 *   connecting ─▶ idle ⇄ busy(link)          frames are routed (idle) or follow the busy link
 *                  │ ▲
 *                  ▼ │
 *   waiting(connect | answer | termination-check, held frames) · parked(unit, held frames)
 *   any ─▶ closed
 *
 * - idle: no link owes a reply or holds a transaction. In states where every statement goes to one backend
 *   a frame is forwarded unclassified (the fast path); otherwise frames gather into a unit (UnitAssembler)
 *   that the Router classifies once and routes.
 * - busy(link): that link owes replies or holds a transaction; everything follows it (a transaction is never
 *   split). A busy read-only link (the non-writer) takes whole units only, checked first: nothing sent
 *   there may write.
 * - waiting: frames are held while a backend connects, a read-only link finishes answering before a unit
 *   that must go elsewhere, or a terminated read is checked (operator or shutdown?).
 * - parked: a write unit waits for a write hold (switchover, rollback) to be released.
 * Frames go to a link through SessionOutput (contiguous bytes in one socket write per run, flushRun).
 */
import type { Socket } from 'node:net';
import { Frontend, TxStatus } from '../protocol/codes.js';
import type { Frame } from '../protocol/framer.js';
import * as enc from '../protocol/backend-encode.js';
import { queryFrame } from '../protocol/frontend-encode.js';
import { SqlState } from '../protocol/sqlstate.js';
import type { Role } from '../domain/role.js';
import type { BackendLink } from './backend-link.js';
import type { Router, SessionRouting } from './router-glue.js';
import type { SessionLinks } from './session-links.js';
import type { SessionTap } from './session-tap.js';
import { SessionOutput } from './session-output.js';
import type { ProxyStats } from './stats.js';
import { isWhole, UnitAssembler } from './unit-assembler.js';
import { planChanged, planProbe, statementToCheck } from './plan-check.js';
import type { ReaderRouting } from './reader-routing.js';

/** Takes the transaction's first snapshot, after which PostgreSQL refuses to make it read-write. */
const SNAPSHOT_QUERY = queryFrame('SELECT 1');

export type SessionState =
  | { kind: 'connecting' }
  | { kind: 'idle' }
  | { kind: 'busy'; link: BackendLink }
  | { kind: 'waiting'; on: 'connect' | 'answer' | 'termination-check'; link: BackendLink | null; held: Frame[] }
  | { kind: 'parked'; unit: Frame[]; held: Frame[] }
  | { kind: 'closed' };

const IDLE: SessionState = { kind: 'idle' };

export interface ForwardDeps {
  stats: ProxyStats;
  router: Router;
  /** The target readers' choice (--target-readers), or none. */
  readers?: ReaderRouting | null;
  /** Bytes of named prepared statements a session may hold (the proxy keeps each to re-Parse it elsewhere). */
  maxPreparedBytes?: number;
  /** Writes are being held (write switchover / rollback pause): park a write unit until `release`. */
  writesHeld(s: SessionForwarder): boolean;
  /** Writes are being held (no side effect): the forwarding fast path classifies units meanwhile. */
  writesHolding(): boolean;
}

export abstract class SessionForwarder {
  st: SessionState = { kind: 'connecting' };
  /** The client sent Terminate: nothing after it is read; the session ends once what it sent before has gone. */
  protected terminated = false;
  /** Frames of a unit not yet routed. */
  private readonly units = new UnitAssembler();
  /** Frames of the last read unit sent to the target, kept until its reply arrives so it can be retried. */
  protected retryFrames: Frame[] | null = null;
  /** The statement whose cached plan was just probed on the other link (plan-check.ts), for the unit held meanwhile. */
  private planChecked: string | null = null;

  protected readonly links: SessionLinks;
  protected readonly tap: SessionTap;
  private readonly out: SessionOutput;

  constructor(
    readonly id: number,
    readonly socket: Socket,
    protected readonly fwd: ForwardDeps,
    links: (self: SessionForwarder) => SessionLinks,
    tap: (self: SessionForwarder) => SessionTap,
    readonly routing: SessionRouting,
  ) {
    this.links = links(this);
    this.tap = tap(this);
    this.out = new SessionOutput(socket, {
      sessionId: id,
      stats: fwd.stats,
      router: fwd.router,
      routing,
      tap: this.tap,
      maxPreparedBytes: fwd.maxPreparedBytes,
      mayResume: () => this.st.kind === 'idle' || this.st.kind === 'busy',
      fatal: (code, message) => this.fatal(code, message),
    });
  }

  abstract fatal(sqlstate: string, message: string): void;
  abstract close(graceful?: boolean): void;

  protected readonly onFrame = (type: number, buf: Buffer, start: number, end: number): void => {
    if (this.terminated) return;
    const st = this.st;
    switch (st.kind) {
      case 'connecting':
      case 'closed':
        return;
      case 'waiting':
      case 'parked':
        st.held.push({ type, buf, start, end });
        return;
      case 'idle':
      case 'busy':
        // Not forwarded: the proxy ends its backend sessions itself.
        if (type === Frontend.Terminate) this.terminated = true;
        else if (st.kind === 'busy') this.follow(st.link, { type, buf, start, end });
        else this.next({ type, buf, start, end });
        return;
      default: {
        const never: never = st;
        throw new Error(`unknown session state ${String(never)}`);
      }
    }
  };

  /** The state after a link's replies or loss: busy on a link that still owes, else idle. */
  protected settle(): void {
    if (this.st.kind !== 'idle' && this.st.kind !== 'busy') return;
    const b = this.links.busy();
    if (b === null) this.st = IDLE;
    else if (this.st.kind !== 'busy' || this.st.link !== b) this.st = { kind: 'busy', link: b };
  }

  /** idle: the fast path, or the frame joins a unit that is routed once complete. */
  private next(f: Frame): void {
    const router = this.fwd.router;
    if (this.units.empty && !this.tap.darkReadsOn() && !this.fwd.writesHolding()) {
      // Fast path: in states where everything goes to one backend, forward without classifying.
      // Not with dark reads on: they need each unit classified to find the reads (SOURCE_PRIMARY). Not while
      // writes are held: a write must be found to be parked (issue 14: one went straight to the source).
      const role = router.uniform(this.routing);
      const link = role === null || (role === 'target' && this.fwd.readers?.routesTarget() === true) ? null : this.links[role];
      if (link !== null && !link.readOnly && router.ready(this.routing, link)) {
        router.unitStart(this.routing, link, false);
        router.watchPins(this.routing, link, f);
        return this.send(link, f);
      }
    }
    const unit = this.units.push(f);
    if (unit === null) return;
    const role = router.route(this.routing, unit);
    const refused = router.refusal(this.routing, unit, role);
    if (refused !== null) return this.refuse(unit, refused);
    this.dispatch(unit, role, this.fwd.readers?.readerFor(this.routing, role, unit) ?? -1);
  }

  /** busy: the frame follows the link that owes replies or holds the transaction. */
  private follow(link: BackendLink, f: Frame): void {
    if (link.readOnly) return this.toBusyReadOnly(link, f);
    // More frames behind a held read: their replies must follow its reply, from the same backend, so the
    // held one can no longer be retried elsewhere.
    if (link.retryable) {
      link.releaseHold();
      this.retryFrames = null;
    }
    // A unit inside a transaction may use a statement prepared on the other backend (the writer moved
    // while the session was idle: BEGIN went to the new writer, the next Bind names a statement only the
    // old one has). At a unit's start, nothing owed, prepare it here first.
    if ((f.type === Frontend.Bind || f.type === Frontend.Describe) && !link.inUnit && link.pending === 0 && !this.fwd.router.ready(this.routing, link)) {
      const c = this.fwd.router.catchUp(this.routing, link, [f]);
      if (c !== null) this.out.inject(link, c);
    }
    this.send(link, f);
  }

  /**
   * A frame while a read-only link (the non-writer) is busy. Nothing sent there may write (issue 14), so
   * frames are gathered into units and checked before they go:
   * - outside a transaction (replies still owed), the next unit waits until the link has answered, then is
   *   routed on its own: a write pipelined behind a read goes to the writer, its replies in order;
   * - inside a (read-only) transaction, a unit follows the link; one that would turn read-only off
   *   (SET TRANSACTION READ WRITE, set_config('transaction_read_only', …)) is preceded by a query of the
   *   proxy's own, swallowed, so PostgreSQL itself refuses it ("transaction read-write mode must be set
   *   before any query", 25001), as it would after any query. Writes then meet the read-only transaction.
   */
  private toBusyReadOnly(link: BackendLink, f: Frame): void {
    const unit = this.units.push(f);
    if (unit === null) return;
    const router = this.fwd.router;
    const inTx = link.txStatus !== TxStatus.Idle;
    const off = router.turnsReadOnlyOff(this.routing, unit);
    if (link.pending > 0 && (!inTx || off || !router.ready(this.routing, link))) return this.wait('answer', link, unit);
    if (link.pending === 0 && link.inUnit) {
      // The rest of a unit cut by a Flush: it must go on here, and no query of ours can go ahead of it.
      if (off) return this.fatal(SqlState.ReadOnlyTransaction, 'cannot set read-write mode inside a read-only transaction on the replica (pg-cutover)');
    } else if (link.pending === 0) {
      if (off) this.out.inject(link, { bytes: SNAPSHOT_QUERY, replies: 1 });
      const c = router.catchUp(this.routing, link, unit);
      if (c !== null) this.out.inject(link, c);
    }
    for (const u of unit) this.send(link, u);
  }

  /** Holds `frames` (and what follows) until the wait ends; the client is not read meanwhile. */
  protected wait(on: 'connect' | 'answer' | 'termination-check', link: BackendLink | null, frames: Frame[]): void {
    this.flushRun();
    const st = this.st;
    const held = st.kind === 'waiting' || st.kind === 'parked' ? [...st.held, ...frames] : frames;
    this.st = { kind: 'waiting', on, link, held };
    this.socket.pause();
  }

  /** The wait is over: feed the held frames again, after `unit` (when given) is dispatched to `role`. */
  protected endWait(unit: Frame[] | null = null, role: Role = 'source', reader = -1): void {
    const st = this.st;
    const held = st.kind === 'waiting' || st.kind === 'parked' ? st.held : [];
    if (st.kind === 'closed') return;
    this.st = IDLE;
    this.settle();
    if (unit !== null) this.dispatch(unit, role, reader);
    for (const f of held) this.onFrame(f.type, f.buf, f.start, f.end);
    this.flushRun();
    if (this.st.kind === 'idle' || this.st.kind === 'busy') {
      this.socket.resume();
      if (this.terminated) this.close(true);
    }
  }

  /** Writes were released: route the parked unit by the (possibly new) state, then what queued behind it. */
  releaseParked(): void {
    const st = this.st;
    if (st.kind !== 'parked') return;
    this.endWait(st.unit, this.fwd.router.route(this.routing, st.unit));
  }

  /**
   * Sends a routed unit, after connecting the backend and bringing its session state up to date. `reader`
   * >= 0: the read goes to that target reader (ReaderRouting.readerFor), never a unit that writes.
   */
  protected dispatch(unit: Frame[], role: Role, reader = -1): void {
    const routing = this.routing;
    // A write inside a transaction already open on `role` is part of a write in flight: it must run, or the
    // hold's drain (which waits for that transaction to end) could never finish. Only new ones are parked.
    const open = this.links[role];
    if (routing.unitWrite && (open === null || open.txStatus === TxStatus.Idle) && this.fwd.writesHeld(this)) {
      this.flushRun();
      const st = this.st;
      this.st = { kind: 'parked', unit, held: st.kind === 'waiting' || st.kind === 'parked' ? st.held : [] };
      this.socket.pause();
      return;
    }
    const policy = this.fwd.router.policy();
    // A write routed under an older state (the writer changed while a backend connected) goes to the writer.
    if (routing.unitWrite && role !== policy.writesTo && routing.pinnedTo !== role) role = policy.writesTo;
    if (routing.unitWrite || role !== 'target') reader = -1;
    let link = this.links.get(role, reader);
    // A link opened for the other role (the writer changed), or one the backend reports read-write although
    // it was opened read-only, is replaced before it serves this unit; not in a session pinned to it, whose
    // state there (temp tables, LISTEN) cannot be rebuilt.
    if (link !== null && link.idle && routing.pinnedTo !== role && ((reader < 0 && link.readOnly !== (role !== policy.writesTo)) || link.readWriteSeen)) {
      link.close();
      this.links.drop(link);
      link = null;
    }
    if (link === null) return this.connectThenDispatch(unit, role, reader);
    if (this.checkPlan(unit, link, role)) return;
    this.tap.unitStart(link, policy, routing.unitWrite, link.idle, routing.pinnedTo !== null);
    const catchUp = this.fwd.router.catchUp(routing, link, unit);
    if (catchUp !== null) this.out.inject(link, catchUp);
    // A read on the non-writer or a reader is held back until its ReadyForQuery so it can be retried elsewhere; not one
    // ended by Flush: its replies are due now and no ReadyForQuery may come before the client's next move.
    if ((role !== policy.writesTo || reader >= 0) && isWhole(unit)) {
      this.retryFrames = unit;
      link.holdReply();
    }
    for (const f of unit) this.send(link, f);
    this.flushRun();
  }

  private connectThenDispatch(unit: Frame[], role: Role, reader: number): void {
    const router = this.fwd.router;
    if (reader >= 0) {
      // A reader that cannot be reached is skipped (backed off by SessionLinks); the read goes to the target primary.
      this.wait('connect', null, []);
      void this.links.open(role, reader).then((r) => {
        if (this.st.kind === 'closed') return;
        if (!r.ok) this.fwd.stats.readerFallbacks++;
        this.endWait(unit, role, r.ok ? reader : -1);
      });
      return;
    }
    if (role === 'target' && this.links.loginRefused.target !== null && router.policy().writesTo !== 'target') {
      this.fwd.stats.targetFallbacks++;
      return this.dispatch(unit, 'source');
    }
    this.wait('connect', null, []);
    void this.links.open(role).then((r) => {
      if (this.st.kind === 'closed') return;
      if (r.ok) return this.endWait(unit, role);
      if (role === 'target' && router.policy().writesTo !== 'target') {
        // A read that the target cannot serve goes to the source; the client sees nothing (DESIGN.md).
        this.fwd.stats.targetFallbacks++;
        return this.endWait(unit, 'source');
      }
      this.fatal(r.sqlstate, r.message);
    });
  }

  /** plan-check.ts: true while the unit waits for the probe, or when it was answered with the backend's 0A000. */
  private checkPlan(unit: Frame[], link: BackendLink, role: Role): boolean {
    const other = role === 'source' ? this.links.target : this.links.source;
    const name = statementToCheck(unit, link, other, this.routing.named);
    const probed = this.planChecked;
    this.planChecked = null;
    if (name === null || other === null) return false;
    if (probed !== name) {
      this.out.inject(other, planProbe(other, name));
      this.planChecked = name;
      this.wait('answer', other, unit);
      return true;
    }
    const changed = planChanged(other);
    if (changed === null) return false;
    this.socket.write(changed);
    this.socket.write(enc.readyForQuery(TxStatus.Idle));
    return true;
  }

  /** Answers a refused unit ourselves: ErrorResponse, then ReadyForQuery (its Query or Sync ended it). */
  private refuse(unit: Frame[], message: string): void {
    this.socket.write(enc.errorResponse({ severity: 'ERROR', code: SqlState.ReadOnlyTransaction, message }));
    if (isWhole(unit)) this.socket.write(enc.readyForQuery(TxStatus.Idle));
  }

  /** One client frame to `link`; the session is busy on it from now until it has answered. */
  protected send(link: BackendLink, f: Frame): void {
    if (this.st.kind === 'closed' || !this.out.send(link, f)) return;
    if (this.st.kind === 'idle' && !link.idle) this.st = { kind: 'busy', link };
  }

  protected flushRun(): void {
    this.out.flush();
  }
}
