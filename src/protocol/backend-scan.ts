/**
 * Watches the backend → client stream without decoding it: tracks frame boundaries, and hands the bodies of
 * only the few message types the proxy must read (ReadyForQuery, ErrorResponse, ParameterStatus, ...) to a
 * callback. Everything else is skipped by length, so DataRow / RowDescription / CommandComplete payloads are
 * never touched (DESIGN.md, "Backend → client").
 */

/**
 * Called for each frame whose type is of interest: the body is buf[bodyStart, bodyEnd); the frame header sits
 * at frameStart, which is -1 when the header arrived in an earlier chunk (the body was reassembled).
 */
export type BodyHandler = (type: number, buf: Buffer, bodyStart: number, bodyEnd: number, frameStart: number) => void;

export class BackendScanner {
  /** interest[type] !== 0 → the body is collected and handed to the handler. */
  private readonly interest = new Uint8Array(256);
  private readonly hdr = Buffer.alloc(5);
  private hdrFill = 0;
  /** Bytes of an uninteresting body still to skip. */
  private skip = 0;
  /** Body being reassembled across chunks, for an interesting type. */
  private body: Buffer | null = null;
  private bodyFill = 0;
  private bodyType = 0;

  constructor(types: Iterable<number>, private readonly onBody: BodyHandler) {
    for (const t of types) this.interest[t] = 1;
  }

  /** True when the stream is at a frame boundary (nothing partial held). */
  get atBoundary(): boolean {
    return this.hdrFill === 0 && this.skip === 0 && this.body === null;
  }

  feed(chunk: Buffer): void {
    const n = chunk.length;
    let pos = 0;
    if (this.skip > 0) {
      const take = Math.min(this.skip, n);
      this.skip -= take;
      pos = take;
    }
    if (this.body !== null) {
      const take = Math.min(this.body.length - this.bodyFill, n - pos);
      chunk.copy(this.body, this.bodyFill, pos, pos + take);
      this.bodyFill += take;
      pos += take;
      if (this.bodyFill < this.body.length) return;
      const b = this.body;
      this.body = null;
      this.bodyFill = 0;
      this.onBody(this.bodyType, b, 0, b.length, -1);
    }
    if (this.hdrFill > 0) {
      const take = Math.min(5 - this.hdrFill, n - pos);
      chunk.copy(this.hdr, this.hdrFill, pos, pos + take);
      this.hdrFill += take;
      pos += take;
      if (this.hdrFill < 5) return;
      this.hdrFill = 0;
      pos = this.startBody(this.hdr[0], this.hdr.readInt32BE(1) - 4, chunk, pos, -1);
    }
    while (pos < n) {
      if (n - pos < 5) {
        chunk.copy(this.hdr, 0, pos, n);
        this.hdrFill = n - pos;
        return;
      }
      pos = this.startBody(chunk[pos], chunk.readInt32BE(pos + 1) - 4, chunk, pos + 5, pos);
    }
  }

  private startBody(type: number, len: number, chunk: Buffer, pos: number, frameStart: number): number {
    const avail = chunk.length - pos;
    if (this.interest[type] === 0) {
      if (len <= avail) return pos + len;
      this.skip = len - avail;
      return chunk.length;
    }
    if (len <= avail) {
      this.onBody(type, chunk, pos, pos + len, frameStart);
      return pos + len;
    }
    this.body = Buffer.allocUnsafe(len);
    chunk.copy(this.body, 0, pos, chunk.length);
    this.bodyFill = avail;
    this.bodyType = type;
    return chunk.length;
  }
}
