/**
 * One logged-in backend connection owned by a client session: tracks the backend's transaction status and
 * how many ReadyForQuery messages are still owed (one per Query, Sync or FunctionCall sent), by scanning
 * the reply stream without decoding rows.
 */
import type { Socket } from 'node:net';
import { Backend, TxStatus } from '../protocol/codes.js';
import { BackendScanner } from '../protocol/backend-scan.js';
import { sqlStateOf } from '../protocol/backend-encode.js';
import type { BackendTarget } from './database-url.js';

export type Role = 'source' | 'target';

export interface LinkEvents {
  /** Backend bytes to forward to the client. */
  onData(link: BackendLink, chunk: Buffer): void;
  /** ReadyForQuery seen (after onData of the chunk that held it). */
  onReady(link: BackendLink): void;
  /** An ErrorResponse with this SQLSTATE passed through. */
  onError(link: BackendLink, sqlstate: string): void;
  /** The connection ended without our asking. */
  onLost(link: BackendLink, why: string): void;
}

export class BackendLink {
  txStatus: TxStatus = TxStatus.Idle;
  /** ReadyForQuery messages still owed by the backend. */
  pending = 0;
  closing = false;
  private readySeen = 0;
  private readonly scanner: BackendScanner;

  constructor(
    readonly role: Role,
    readonly target: BackendTarget,
    readonly socket: Socket,
    readonly pid: number,
    readonly secret: number,
    private readonly ev: LinkEvents,
  ) {
    this.scanner = new BackendScanner([Backend.ReadyForQuery, Backend.ErrorResponse], (type, buf, s, e) => {
      if (type === Backend.ReadyForQuery) {
        this.txStatus = buf[s] as TxStatus;
        if (this.pending > 0) this.pending--;
        this.readySeen++;
      } else {
        this.ev.onError(this, sqlStateOf(buf, s, e));
      }
    });
    socket.on('data', (chunk: Buffer) => {
      this.readySeen = 0;
      this.scanner.feed(chunk);
      this.ev.onData(this, chunk);
      if (this.readySeen > 0) this.ev.onReady(this);
    });
    const lost = (why: string) => {
      if (this.closing) return;
      this.closing = true;
      this.ev.onLost(this, why);
    };
    socket.on('error', (e) => lost(e.message));
    socket.on('close', () => lost('connection closed'));
    socket.resume();
  }

  /** Idle: outside a transaction with no reply owed. */
  get idle(): boolean {
    return this.pending === 0 && this.txStatus === TxStatus.Idle;
  }

  get address(): string {
    return `${this.target.host}:${this.target.port}`;
  }

  /** Ends the backend session politely (Terminate); PostgreSQL rolls back any open transaction. */
  close(): void {
    if (this.closing) return;
    this.closing = true;
    const s = this.socket;
    if (!s.destroyed && s.writable) s.end(TERMINATE);
    setTimeout(() => s.destroy(), 1000).unref();
  }
}

const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);
