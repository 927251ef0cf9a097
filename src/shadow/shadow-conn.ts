/**
 * One pooled target connection used for lock-step shadow transactions. Everything it sends yields exactly
 * one ReadyForQuery per Query/Sync; each is queued as 'skip' (the proxy's own BEGIN/ROLLBACK/DISCARD) or as a
 * compared unit, and its reply is folded into per-unit results.
 */
import type { Socket } from 'node:net';
import { Backend } from '../protocol/codes.js';
import { FrameReader } from '../protocol/framer.js';
import { ResultCollector, type MaskRule, type UnitResult } from './results.js';
import type { BackendTarget } from '../net/database-url.js';

export type UnitSink = (u: UnitResult) => void;

export class ShadowConn {
  /** Per expected ReadyForQuery: where its unit's results go (null = discard). */
  private readonly expect: (UnitSink | null)[] = [];
  private readonly frames = new FrameReader(0x7fffffff, null);
  private readonly collector: ResultCollector;
  dead = false;
  onIdle: (() => void) | null = null;

  constructor(
    readonly target: BackendTarget,
    readonly socket: Socket,
    readonly pid: number,
    readonly secret: number,
    mask: MaskRule,
    /** The connection ended; `byUs`: we closed it on purpose (shadow done, shutting down), not a target failure. */
    onDead: (c: ShadowConn, why: string, byUs: boolean) => void,
  ) {
    this.collector = new ResultCollector(mask, (u) => {
      const sink = this.expect.shift();
      if (sink) sink(u);
      if (this.expect.length === 0 && this.onIdle) {
        const f = this.onIdle;
        this.onIdle = null;
        f();
      }
    });
    socket.on('data', (chunk: Buffer) => {
      const bad = this.frames.feed(chunk, (type, buf, start, end) => {
        if (type === Backend.NoticeResponse || type === Backend.ParameterStatus || type === Backend.NotificationResponse) return;
        this.collector.frame(type, buf, start, end);
      });
      if (bad) this.fail(`bad frame: ${bad.message}`);
    });
    const lost = (why: string) => {
      if (this.dead) return;
      this.dead = true;
      onDead(this, why, this.closedByUs);
    };
    socket.on('error', (e) => lost(e.message));
    socket.on('close', () => lost('closed'));
    socket.resume();
  }

  get busy(): boolean {
    return this.expect.length > 0;
  }

  /** Writes bytes that end in `replies` Query/Sync messages; false when the socket is backed up. */
  send(bytes: Buffer, sinks: (UnitSink | null)[]): boolean {
    for (const s of sinks) this.expect.push(s);
    return this.socket.write(bytes);
  }

  private closedByUs = false;

  /** Close it on purpose (the shadow ended unhealthy, the pool is closing): not counted as a target failure. */
  kill(why: string): void {
    if (this.dead) return;
    this.closedByUs = true;
    this.socket.destroy(new Error(why));
  }

  /** Close it because the target sent something unreadable: a target failure. */
  private fail(why: string): void {
    if (this.dead) return;
    this.socket.destroy(new Error(why));
  }
}
