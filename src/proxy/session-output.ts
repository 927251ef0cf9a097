/**
 * Client frames on their way to a backend link: counted, noted by the router (named statements, SQL session
 * state), and written in runs (BackendLink.send coalesces contiguous bytes of one received chunk; flush()
 * writes them in one socket write). The proxy's own catch-up bytes go through `inject`, after the run so far.
 * Backpressure: when a backend asks to wait, the client is not read until it drains or goes away.
 */
import type { Socket } from 'node:net';
import { Frontend } from '../protocol/codes.js';
import type { Frame } from '../protocol/framer.js';
import { SqlState } from '../protocol/sqlstate.js';
import { log } from '../support/log.js';
import type { BackendLink, CatchUp } from './backend-link.js';
import type { Router, SessionRouting } from './router-glue.js';
import type { SessionTap } from './session-tap.js';
import type { ProxyStats } from './stats.js';

export const DEFAULT_MAX_PREPARED_BYTES = 32 * 1024 * 1024;

export interface OutputDeps {
  sessionId: number;
  stats: ProxyStats;
  router: Router;
  routing: SessionRouting;
  tap: SessionTap;
  /** Bytes of named prepared statements a session may hold (the proxy keeps each to re-Parse it elsewhere). */
  maxPreparedBytes?: number;
  /** The session may read its client again (not waiting, parked or closed). */
  mayResume(): boolean;
  fatal(sqlstate: string, message: string): void;
}

export class SessionOutput {
  /** The link whose run of client bytes is not written yet. */
  private runLink: BackendLink | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly d: OutputDeps,
  ) {}

  /** One client frame to `link`; false when it ended the session instead (prepared statements over the cap). */
  send(link: BackendLink, f: Frame): boolean {
    const d = this.d;
    d.tap.clientFrame(link.role, f);
    if (d.routing.unitCut) d.router.continued(d.routing, f);
    if (this.runLink !== link) {
      this.flush();
      this.runLink = link;
    }
    switch (f.type) {
      case Frontend.Query:
      case Frontend.FunctionCall:
        d.stats.statements[link.role]++;
        if (link.reader >= 0) d.stats.readerStatements[link.reader] = (d.stats.readerStatements[link.reader] ?? 0) + 1;
        link.send(f, d.router.sent(d.routing, f));
        return true;
      case Frontend.Sync:
        d.stats.statements[link.role]++;
        if (link.reader >= 0) d.stats.readerStatements[link.reader] = (d.stats.readerStatements[link.reader] ?? 0) + 1;
        link.send(f, null);
        return true;
      case Frontend.Parse:
      case Frontend.Close: {
        const note = d.router.sent(d.routing, f);
        const max = d.maxPreparedBytes ?? DEFAULT_MAX_PREPARED_BYTES;
        if (d.routing.namedBytes > max) {
          log.warn({ session: d.sessionId, bytes: d.routing.namedBytes }, 'prepared statements over --max-prepared-bytes: session ended');
          d.fatal(SqlState.OutOfMemory, `out of memory: this session's prepared statements exceed ${max} bytes (--max-prepared-bytes)`);
          return false;
        }
        link.send(f, note);
        return true;
      }
      default:
        link.send(f, null);
        return true;
    }
  }

  /** Bytes of the proxy's own sent ahead of the client's next frames (BackendLink.inject swallows their replies). */
  inject(link: BackendLink, c: CatchUp): void {
    this.flush();
    link.inject(c);
    this.runLink = link;
  }

  /** Writes the pending run; the client is paused until a backend that asked to wait drains (or goes away). */
  flush(): void {
    const link = this.runLink;
    if (link === null) return;
    this.runLink = null;
    // A backend that closes never drains: waiting for 'drain' alone left the client paused for good after its
    // read was retried on the source (a query hung forever, found when the target was stopped under load). A
    // destroyed one needs no backpressure at all: its loss is handled by onLost.
    if (link.flush()) return;
    this.socket.pause();
    const resume = () => {
      link.socket.off('drain', resume);
      link.socket.off('close', resume);
      if (this.d.mayResume()) this.socket.resume();
    };
    link.socket.once('drain', resume);
    link.socket.once('close', resume);
  }
}
