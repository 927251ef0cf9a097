import { SqlState } from './sqlstate.js';
/**
 * Splits a byte stream into protocol frames (type byte + Int32 length + body) by reading the header only.
 * Frames are handed out as views into the received chunk; only a frame that straddles two chunks is copied,
 * once, into a buffer of its exact size (DESIGN.md, "Frame scan, not parse").
 */

/** One complete frame: buf[start, end) including its 5-byte header (a view, never a copy). */
export interface Frame {
  type: number;
  buf: Buffer;
  start: number;
  end: number;
}

/** Called once per complete frame: the frame occupies buf[start, end) including its 5-byte header. */
export type FrameHandler = (type: number, buf: Buffer, start: number, end: number) => void;

export interface FrameViolation {
  readonly sqlstate: typeof SqlState.ProtocolViolation;
  readonly message: string;
  /** Logged only, never sent (PostgreSQL's COMMERROR before the StartupMessage). */
  readonly silent?: boolean;
}

export class FrameReader {
  private readonly hdr = Buffer.alloc(5);
  private hdrFill = 0;
  /**
   * A frame that straddles chunks, kept as views of the chunks it arrived in and joined once complete:
   * memory grows with the bytes received, never with the length a client merely claims.
   */
  private pend: Buffer[] | null = null;
  private pendLen = 0;
  private pendFill = 0;

  /**
   * @param maxFrame largest accepted frame length (the Int32 length field, which counts itself).
   * @param validTypes type bytes accepted; anything else is a protocol violation. null accepts all.
   */
  constructor(
    private readonly maxFrame: number,
    private readonly validTypes: ReadonlySet<number> | null,
  ) {}

  /** Bytes held for a frame not yet complete. */
  get buffered(): number {
    return this.hdrFill + this.pendFill;
  }

  private check(type: number, len: number): FrameViolation | null {
    if (this.validTypes !== null && !this.validTypes.has(type)) {
      return { sqlstate: SqlState.ProtocolViolation, message: `invalid frontend message type ${type}` };
    }
    if (len < 4) return { sqlstate: SqlState.ProtocolViolation, message: `invalid message length ${len}` };
    if (len > this.maxFrame) {
      return { sqlstate: SqlState.ProtocolViolation, message: `message length ${len} exceeds the limit of ${this.maxFrame} bytes` };
    }
    return null;
  }

  /** Feeds one chunk; returns a violation (and stops) at the first bad header. */
  feed(chunk: Buffer, onFrame: FrameHandler): FrameViolation | null {
    const n = chunk.length;
    let pos = 0;
    if (this.hdrFill > 0) {
      const take = Math.min(5 - this.hdrFill, n);
      chunk.copy(this.hdr, this.hdrFill, 0, take);
      this.hdrFill += take;
      pos = take;
      if (this.hdrFill < 5) return null;
      const len = this.hdr.readInt32BE(1);
      const bad = this.check(this.hdr[0], len);
      if (bad) return bad;
      this.hdrFill = 0;
      this.pend = [Buffer.from(this.hdr)];
      this.pendLen = 1 + len;
      this.pendFill = 5;
    }
    if (this.pend !== null) {
      const take = Math.min(this.pendLen - this.pendFill, n - pos);
      if (take > 0) this.pend.push(chunk.subarray(pos, pos + take));
      this.pendFill += take;
      pos += take;
      if (this.pendFill < this.pendLen) return null;
      const whole = Buffer.concat(this.pend, this.pendLen);
      this.pend = null;
      this.pendFill = 0;
      onFrame(whole[0], whole, 0, whole.length);
    }
    while (pos < n) {
      if (n - pos < 5) {
        chunk.copy(this.hdr, 0, pos, n);
        this.hdrFill = n - pos;
        return null;
      }
      const type = chunk[pos];
      const len = chunk.readInt32BE(pos + 1);
      const bad = this.check(type, len);
      if (bad) return bad;
      const end = pos + 1 + len;
      if (end <= n) {
        onFrame(type, chunk, pos, end);
        pos = end;
      } else {
        this.pend = [chunk.subarray(pos, n)];
        this.pendLen = 1 + len;
        this.pendFill = n - pos;
        return null;
      }
    }
    return null;
  }
}

/**
 * Reads the untyped startup-phase packets (Int32 length first, no type byte): StartupMessage, SSLRequest,
 * GSSENCRequest, CancelRequest. Returns the packet and the rest of the chunk, or null when more bytes are needed.
 */
export class StartupReader {
  private acc: Buffer = Buffer.alloc(0);
  constructor(private readonly maxPacket: number) {}

  feed(chunk: Buffer): { packet: Buffer; rest: Buffer } | FrameViolation | null {
    this.acc = this.acc.length === 0 ? chunk : Buffer.concat([this.acc, chunk]);
    if (this.acc.length < 4) return null;
    const len = this.acc.readInt32BE(0);
    // PostgreSQL logs this (COMMERROR) and closes without a word: a Terminate or an HTTP request sent
    // first lands here too (ProcessStartupPacket).
    if (len < 8 || len > this.maxPacket) return { sqlstate: SqlState.ProtocolViolation, message: `invalid length of startup packet`, silent: true };
    if (this.acc.length < len) return null;
    const packet = this.acc.subarray(0, len);
    const rest = this.acc.subarray(len);
    this.acc = Buffer.alloc(0);
    return { packet, rest };
  }
}
