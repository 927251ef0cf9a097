/**
 * The state of one backend connection as the proxy drives it (BackendLink adds the reply side): transaction
 * status, replies owed, an open extended-protocol unit, replies to swallow, the named statements and SQL
 * session state the backend has. Nothing outside the link writes any of it: the session hands client frames
 * to `send` (with the router's note of what each did) and the router's catch-up to `inject`.
 */
import type { Socket } from 'node:net';
import { Frontend, TxStatus } from '../protocol/codes.js';
import type { Frame } from '../protocol/framer.js';
import { AppliedState, type SessionCatchUp, type SessionStateLog } from '../router/session-state.js';

/** What a client frame sent to a link did to the backend's session (computed by the router, recorded here). */
export interface LinkNote {
  /** A named statement the frame (Parse) defines: name and text. */
  defined?: { name: string; text: string };
  /** A named statement the frame (Close 'S') closes. */
  closed?: string;
  /** The frame ran `added` session statements (SET, PREPARE…), the last ones of `log`. */
  ran?: { log: SessionStateLog; added: number };
}

/**
 * Bytes of the proxy's own, sent ahead of a unit (router-glue's catchUp builds it and mutates nothing):
 * `replies` ReadyForQuery answer them and are swallowed; once sent, the backend has the session state and
 * the named statements listed.
 */
export interface CatchUp {
  bytes: Buffer;
  replies: number;
  session?: SessionCatchUp | null;
  /** Named statements after it ran: name → text, or null where it closed one. */
  prepared?: readonly (readonly [string, string | null])[];
}

export abstract class LinkState {
  protected tx: TxStatus = TxStatus.Idle;
  /** ReadyForQuery messages still owed by the backend (client's and injected). */
  protected owed = 0;
  /** Extended-protocol messages were sent without their Sync yet (a unit is open here). */
  protected open = false;
  /** ReadyForQuery replies (with everything before them) to drop: they answer the proxy's own statements. */
  protected swallowing = 0;
  protected ending = false;
  /** Named prepared statements (protocol level) this backend has: name → text. */
  private readonly named = new Map<string, string>();
  /** SQL session state (SET, PREPARE...) applied here. */
  private readonly applied = new AppliedState();
  // The run of contiguous client bytes not yet written (one socket write per run).
  private runBuf: Buffer | null = null;
  private runStart = 0;
  private runEnd = 0;
  /** A socket write since the last flush() returned false: the caller should wait for 'drain'. */
  private full = false;

  constructor(readonly socket: Socket) {}

  /** A ReadyForQuery arrived with this status. */
  protected ready(status: TxStatus): void {
    this.tx = status;
    if (this.owed > 0) this.owed--;
  }

  get txStatus(): TxStatus {
    return this.tx;
  }
  /** ReadyForQuery messages still owed (the client's and the proxy's own). */
  get pending(): number {
    return this.owed;
  }
  /** Extended-protocol messages were sent without their Sync yet. */
  get inUnit(): boolean {
    return this.open;
  }
  /** ReadyForQuery replies still to be dropped (they answer the proxy's own statements). */
  get swallow(): number {
    return this.swallowing;
  }
  get closing(): boolean {
    return this.ending;
  }
  /** Named prepared statements this backend has: name → text. */
  get prepared(): ReadonlyMap<string, string> {
    return this.named;
  }
  /** The session-state log version this backend has applied. */
  get sessionVersion(): number {
    return this.applied.version;
  }
  /** What this backend lacks of the session's SQL state (pure). */
  sessionPlan(log: SessionStateLog): SessionCatchUp | null {
    return this.applied.plan(log);
  }

  /** Idle: outside a transaction, no reply owed, no unit open. */
  get idle(): boolean {
    return this.owed === 0 && this.tx === TxStatus.Idle && !this.open;
  }

  /**
   * A client frame for this backend: counts the replies it is owed, records what the frame did to the
   * backend's session (`note`, from the router) and adds the bytes to the run written by flush().
   */
  send(f: Frame, note: LinkNote | null): void {
    switch (f.type) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        this.owed++;
        break;
      case Frontend.Sync:
        this.owed++;
        this.open = false;
        break;
      case Frontend.Parse:
      case Frontend.Close:
      case Frontend.Bind:
      case Frontend.Describe:
      case Frontend.Execute:
      case Frontend.Flush:
        this.open = true;
        break;
      default:
        break;
    }
    if (note !== null) this.record(note);
    if (this.runBuf === f.buf && this.runEnd === f.start) {
      this.runEnd = f.end;
      return;
    }
    this.writeRun();
    this.runBuf = f.buf;
    this.runStart = f.start;
    this.runEnd = f.end;
  }

  private record(n: LinkNote): void {
    if (n.defined !== undefined) this.named.set(n.defined.name, n.defined.text);
    if (n.closed !== undefined) this.named.delete(n.closed);
    if (n.ran !== undefined) this.applied.ranHere(n.ran.log, n.ran.added);
  }

  /** Writes the pending run; false when the socket asked to wait for 'drain' since the last flush. */
  flush(): boolean {
    this.writeRun();
    const ok = !this.full;
    this.full = false;
    return ok;
  }

  private writeRun(): void {
    const buf = this.runBuf;
    if (buf === null) return;
    this.runBuf = null;
    if (this.ending) return; // closed by the proxy: nothing more goes out
    const view = this.runStart === 0 && this.runEnd === buf.length ? buf : buf.subarray(this.runStart, this.runEnd);
    if (!this.socket.write(view) && !this.socket.destroyed) this.full = true;
  }

  /** Sends the proxy's own bytes after the run so far; their replies are swallowed, their effects recorded. */
  inject(c: CatchUp): void {
    this.writeRun();
    if (c.session) this.applied.apply(c.session);
    for (const [name, text] of c.prepared ?? []) {
      if (text === null) this.named.delete(name);
      else this.named.set(name, text);
    }
    this.owed += c.replies;
    this.swallowing += c.replies;
    if (c.bytes.length > 0 && !this.socket.write(c.bytes) && !this.socket.destroyed) this.full = true;
  }

  /** The unit failed here and runs elsewhere: the statements it parsed here do not exist here. */
  forget(names: Iterable<string>): void {
    for (const n of names) this.named.delete(n);
  }
}
