/**
 * One logged-in backend connection owned by a client session: tracks the backend's transaction status and
 * how many ReadyForQuery messages are still owed (one per Query, Sync or FunctionCall sent), by scanning
 * the reply stream without decoding rows.
 *
 * The link alone owns that state: the session hands it client frames (`send`, coalesced into one socket write
 * per run of contiguous bytes) and catch-up bytes the router built (`inject`), and reads the rest.
 *
 * Two paths: the fast one forwards each received chunk whole. The slow one, taken only while the proxy has
 * injected statements of its own (session catch-up, re-Parse) whose replies must not reach the client, or
 * while a read on the target is held back so it can be retried on the source, walks whole frames.
 */
import type { Socket } from 'node:net';
import { Backend, Frontend, TxStatus } from '../protocol/codes.js';
import { BackendScanner } from '../protocol/backend-scan.js';
import { FrameReader } from '../protocol/framer.js';
import { isFatal, sqlStateOf } from '../protocol/backend-encode.js';
import type { BackendTarget } from '../net/database-url.js';
import type { Role } from '../domain/role.js';
import { LinkState } from './link-state.js';
export type { CatchUp, LinkNote } from './link-state.js';
import { retryOnSource } from '../domain/attribution.js';
import { SqlState } from '../protocol/sqlstate.js';


export interface LinkEvents {
  /** Backend bytes to forward to the client. */
  onData(link: BackendLink, chunk: Buffer): void;
  /** ReadyForQuery seen (after onData of the chunk that held it). */
  onReady(link: BackendLink): void;
  /** An ErrorResponse with this SQLSTATE passed through to the client. */
  onError(link: BackendLink, sqlstate: string): void;
  /** The connection ended without our asking. */
  onLost(link: BackendLink, why: string): void;
  /** May an unsolicited message (notification, notice, parameter status) from this idle link go to the client now? */
  mayInterject(link: BackendLink): boolean;
  /** A held-back reply failed with `sqlstate` (a server fault or schema drift): the unit should be retried elsewhere. */
  onRetry(link: BackendLink, sqlstate: string): void;
}

/** SQLSTATE 25006 read_only_sql_transaction: a write met a read-only link's transaction. */
const READ_ONLY_SQL_TRANSACTION = SqlState.ReadOnlyTransaction;

/**
 * Errors only a hot standby gives a read (a target reader): 40001 canceled by a conflict with recovery, 0A000
 * serializable mode (PostgreSQL's standby.c, predicate.c). The read runs again on the target primary.
 */
const STANDBY_ONLY: ReadonlySet<string> = new Set([SqlState.SerializationFailure, SqlState.FeatureNotSupported]);

/** Largest reply held back for a possible retry; past it the reply streams and can no longer be retried. */
const HOLD_LIMIT = 256 * 1024;

export class BackendLink extends LinkState {
  private hold: Buffer[] | null = null;
  private holdBytes = 0;
  private holdFault: string | null = null;
  private readySeen = 0;
  private readonly scanner: BackendScanner;
  private readonly frames = new FrameReader(0x7fffffff, null);
  /**
   * The backend reported default_transaction_read_only other than `on` on a link opened read-only (issue 14:
   * the proxy repairs any change it sees): the link must not serve another unit; the session replaces it.
   */
  readWriteSeen = false;

  /**
   * `readOnly`: opened with default_transaction_read_only=on, as every link to the non-writer is (DESIGN.md
   * "Fencing": nothing the proxy sends to the non-writer can write).
   */
  constructor(
    readonly role: Role,
    readonly target: BackendTarget,
    socket: Socket,
    readonly pid: number,
    readonly secret: number,
    private readonly ev: LinkEvents,
    readonly readOnly = false,
    /** Which of the target's readers (--target-readers) this link reaches; -1: the role's primary. */
    readonly reader = -1,
  ) {
    super(socket);
    const types = [Backend.ReadyForQuery, Backend.ErrorResponse];
    if (readOnly) types.push(Backend.ParameterStatus);
    this.scanner = new BackendScanner(types, (type, buf, s, e) => {
      if (type === Backend.ReadyForQuery) this.ready(buf[s] as TxStatus);
      else if (type === Backend.ParameterStatus) this.parameterStatus(buf, s, e);
      else this.forwardedError(buf, s, e);
    });
    socket.on('data', (chunk: Buffer) => this.onChunk(chunk));
    const lost = (why: string) => {
      if (this.ending) return;
      this.ending = true;
      this.ev.onLost(this, why);
    };
    socket.on('error', (e) => lost(e.message));
    socket.on('close', () => lost('connection closed'));
    socket.resume();
  }

  /** ParameterStatus body buf[s, e): `name\0value\0`. PostgreSQL 14+ reports default_transaction_read_only (GUC_REPORT). */
  private parameterStatus(buf: Buffer, s: number, e: number): void {
    if (!this.readOnly) return;
    const z = buf.indexOf(0, s);
    if (z < 0 || z >= e || buf.toString('latin1', s, z) !== 'default_transaction_read_only') return;
    const z2 = buf.indexOf(0, z + 1);
    if (buf.toString('latin1', z + 1, z2 < 0 || z2 > e ? e : z2) !== 'on') this.readWriteSeen = true;
  }

  protected override ready(status: TxStatus): void {
    super.ready(status);
    this.readySeen++;
  }

  /** Hold back this unit's reply until its ReadyForQuery, so a server-side failure can be retried elsewhere. */
  holdReply(): void {
    this.hold = [];
    this.holdBytes = 0;
    this.holdFault = null;
  }

  /**
   * Gives up the chance to retry the held unit: what is held goes to the client now, the rest streams. For a
   * unit the client pipelines more behind (its replies must follow this one's, from this backend).
   */
  releaseHold(): void {
    const held = this.hold;
    if (held === null) return;
    this.hold = null;
    if (held.length > 0) this.ev.onData(this, joined(held));
  }

  /**
   * The proxy itself is about to end this backend session (its fence terminates the old writer's sessions):
   * its loss, when idle, is the proxy's doing and may be repaired silently if the session state is replayable.
   */
  retire(reason: string): void {
    this.retired ??= reason;
  }

  /** Why the proxy retired this link (see retire), or null. */
  retired: string | null = null;

  /** A FATAL (or PANIC) ErrorResponse reached the client from this backend: its end is already told. */
  fatalForwarded = false;

  /** An ErrorResponse on its way to the client (counted; a FATAL one tells the client the session ends). */
  private forwardedError(buf: Buffer, s: number, e: number): void {
    if (isFatal(buf, s, e)) this.fatalForwarded = true;
    this.ev.onError(this, sqlStateOf(buf, s, e));
  }

  get address(): string {
    return `${this.target.host}:${this.target.port}`;
  }

  private onChunk(chunk: Buffer): void {
    this.readySeen = 0;
    // A frame split across chunks is finished by the reader that started it: the scanner (fast path) or the
    // FrameReader (other paths). Handing the rest of a scanned frame to the FrameReader would read row bytes as
    // a header (seen as a hang on any reply larger than one chunk).
    const midScan = !this.scanner.atBoundary;
    if (!midScan && this.owed === 0 && !this.open && this.swallowing === 0 && this.hold === null) {
      this.unsolicited(chunk);
    } else if (midScan || (this.swallowing === 0 && this.hold === null && this.frames.buffered === 0)) {
      this.scanner.feed(chunk);
      this.ev.onData(this, chunk);
    } else {
      this.slowPath(chunk);
    }
    if (this.readySeen > 0) this.ev.onReady(this);
  }

  /**
   * Bytes from a backend that owes no reply: asynchronous NotificationResponse, NoticeResponse and
   * ParameterStatus go to the client when no other backend is mid-reply; an ErrorResponse here is the server
   * ending the session (shutdown, terminate, idle timeout): it is kept for the loss report, not forwarded,
   * so a reader going away unseen does not kill the client's session.
   */
  private unsolicited(chunk: Buffer): void {
    const out: Buffer[] = [];
    const bad = this.frames.feed(chunk, (type, buf, start, end) => {
      if (type === Backend.ErrorResponse) {
        this.lastError = buf.toString('utf8', start + 5, end).replace(/\0/g, ' ').trim();
        this.lastErrorFrame = Buffer.from(buf.subarray(start, end));
        return;
      }
      if (type === Backend.ParameterStatus) this.parameterStatus(buf, start + 5, end);
      if (type === Backend.NotificationResponse || type === Backend.NoticeResponse || type === Backend.ParameterStatus) {
        if (this.ev.mayInterject(this)) out.push(buf.subarray(start, end));
      }
    });
    if (bad) return this.ev.onLost(this, `bad frame from backend: ${bad.message}`);
    if (out.length > 0) this.ev.onData(this, out.length === 1 ? out[0] : Buffer.concat(out));
    // A FATAL from an idle backend (terminate, idle timeout, shutdown) ends it: handle the loss now, not at
    // the socket's close, so no unit is sent to a backend already gone (seen under load after a fence).
    if (this.lastErrorFrame !== null && isFatal(this.lastErrorFrame, 5, this.lastErrorFrame.length) && !this.ending) {
      this.ending = true;
      this.ev.onLost(this, 'connection closed');
    }
  }

  /** The first ErrorResponse among the replies to the proxy's own bytes since it was last cleared (plan-check.ts). */
  swallowedError: Buffer | null = null;
  /** The proxy's own bytes in flight are a probe the session waits for: their ReadyForQuery is reported. */
  probing = false;

  /** Fields of the last ErrorResponse received while idle (the server's reason for closing). */
  lastError = '';
  /** That ErrorResponse as PostgreSQL sent it, to pass on when the client must learn of the session's end. */
  lastErrorFrame: Buffer | null = null;

  private slowPath(chunk: Buffer): void {
    const out: Buffer[] = [];
    const bad = this.frames.feed(chunk, (type, buf, start, end) => {
      const view = buf.subarray(start, end);
      if (type === Backend.ParameterStatus) this.parameterStatus(buf, start + 5, end);
      if (this.owed === 0 && this.swallowing === 0 && this.hold === null && !this.open) {
        // After the last reply owed, in the same chunk: the server speaking on its own (e.g. FATAL 57P01 as it
        // shuts down right after answering). Same rules as unsolicited(): an error is kept, never forwarded.
        if (type === Backend.ErrorResponse) {
          this.lastError = buf.toString('utf8', start + 5, end).replace(/\0/g, ' ').trim();
          this.lastErrorFrame = Buffer.from(view);
        } else if ((type === Backend.NotificationResponse || type === Backend.NoticeResponse || type === Backend.ParameterStatus) && this.ev.mayInterject(this)) out.push(view);
        return;
      }
      if (this.swallowing > 0) {
        if (type === Backend.ErrorResponse && this.swallowedError === null) this.swallowedError = Buffer.from(view);
        if (type === Backend.ReadyForQuery) {
          this.swallowing--;
          this.ready(buf[start + 5] as TxStatus);
          this.readySeen--; // the client's session saw nothing
          // ... unless it waits for this answer (plan-check.ts's probe): then it must hear of it.
          if (this.probing && this.swallowing === 0) {
            this.probing = false;
            this.readySeen++;
          }
        }
        return;
      }
      if (type === Backend.ErrorResponse) {
        const code = sqlStateOf(buf, start + 5, end);
        // A read-only link refusing a write (a writing function called from a read): retried on the writer.
        if (this.hold !== null && this.holdFault === null && (retryOnSource(code) || (this.readOnly && code === READ_ONLY_SQL_TRANSACTION) || (this.reader >= 0 && STANDBY_ONLY.has(code)))) this.holdFault = code;
        if (this.hold === null && isFatal(buf, start + 5, end)) this.fatalForwarded = true;
        this.ev.onError(this, code);
      }
      if (type === Backend.ReadyForQuery) this.ready(buf[start + 5] as TxStatus);
      if (this.hold !== null) {
        this.hold.push(view);
        this.holdBytes += view.length;
        if (type === Backend.ReadyForQuery) {
          const held = this.hold;
          this.hold = null;
          if (this.holdFault !== null) {
            this.ev.onRetry(this, this.holdFault);
            return;
          }
          for (const b of held) out.push(b);
        } else if (this.holdBytes > HOLD_LIMIT && this.holdFault === null) {
          for (const b of this.hold) out.push(b);
          this.hold = null;
        }
        return;
      }
      out.push(view);
    });
    if (bad) {
      this.ev.onLost(this, `bad frame from backend: ${bad.message}`);
      return;
    }
    if (out.length > 0) this.ev.onData(this, joined(out));
  }

  /** The SQLSTATE that made the held reply retryable, or null. */
  get heldFault(): string | null {
    return this.hold === null ? null : this.holdFault;
  }

  /** True while a held reply could still be retried (nothing of it reached the client). */
  get retryable(): boolean {
    return this.hold !== null;
  }

  /** Ends the backend session politely (Terminate); PostgreSQL rolls back any open transaction. */
  close(): void {
    if (this.ending) return;
    this.ending = true;
    const s = this.socket;
    if (!s.destroyed && s.writable) s.end(TERMINATE);
    setTimeout(() => s.destroy(), 1000).unref();
  }
}

const TERMINATE = Buffer.from([Frontend.Terminate, 0, 0, 0, 4]);

/**
 * The frames as one buffer. Whole frames of one received chunk lie back to back in it (a held read's reply
 * usually arrives in one chunk): their span is a view of that chunk, not a copy; otherwise they are copied.
 */
function joined(views: readonly Buffer[]): Buffer {
  const first = views[0];
  if (views.length === 1) return first;
  let end = first.byteOffset + first.length;
  for (let i = 1; i < views.length; i++) {
    const v = views[i];
    if (v.buffer !== first.buffer || v.byteOffset !== end) return Buffer.concat(views);
    end += v.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}

