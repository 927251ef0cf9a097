/**
 * Meaning of one complete frontend frame: (type byte, body after the Int32 length) → typed message,
 * or a ProtocolError value. Pure: no sockets, no state, never throws on bad input.
 * Layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
 * Checks mirror PostgreSQL's readers (src/backend/libpq/pqformat.c, tcop/postgres.c, tcop/fastpath.c,
 * libpq/auth.c, libpq/auth-sasl.c), with their error wording.
 *
 * The forwarding path does not call decodeFrontend: it uses queryText / parseHead, which read only
 * what routing needs, and forwards the original bytes.
 */
import { Frontend } from './codes.js';
import {
  protocolError,
  type Bind,
  type Close,
  type CopyDone,
  type CopyFail,
  type Describe,
  type Execute,
  type Flush,
  type FrontendMessage,
  type FunctionCall,
  type Parse,
  type PasswordMessage,
  type ProtocolError,
  type Query,
  type SASLInitialResponse,
  type SASLResponse,
  type Sync,
  type Terminate,
} from './frontend-messages.js';

// pqformat.c's messages. Shared frozen values: the error path allocates nothing for them.
const NO_DATA = Object.freeze(protocolError('no data left in message'));
const INSUFFICIENT = Object.freeze(protocolError('insufficient data left in message'));
const INVALID_STRING = Object.freeze(protocolError('invalid string in message'));
const INVALID_FORMAT = Object.freeze(protocolError('invalid message format'));

const SYNC: Sync = Object.freeze({ name: 'sync' });
const FLUSH: Flush = Object.freeze({ name: 'flush' });
const TERMINATE: Terminate = Object.freeze({ name: 'terminate' });
const COPY_DONE: CopyDone = Object.freeze({ name: 'copyDone' });

/**
 * A cursor over one body. A failed read throws a ProtocolError value (never an Error: no stack is
 * captured); only `guard` catches it, so the throw never leaves this module. This keeps each decoder
 * a straight transcription of the message layout instead of a check after every field.
 */
class Reader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  byte(): number {
    if (this.pos >= this.buf.length) throw NO_DATA;
    return this.buf[this.pos++]!;
  }
  /** Unsigned 16-bit: counts (PostgreSQL reads them with pq_getmsgint(…, 2), which does not sign-extend). */
  uint16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  /** Signed 16-bit: format codes (stored as int16 by the server). */
  int16(): number {
    this.need(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** NUL-terminated string; a missing terminator is pq_getmsgstring's "invalid string in message". */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw INVALID_STRING;
    const s = end === this.pos ? '' : this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  /** A view of n bytes; n < 0 or past the end is pq_getmsgbytes's "insufficient data left in message". */
  bytes(n: number): Buffer {
    if (n < 0 || n > this.buf.length - this.pos) throw INSUFFICIENT;
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  /** Fails early when `count` items of `size` bytes cannot fit, before allocating arrays for them. */
  fits(count: number, size: number): void {
    this.need(count * size);
  }
  /** pq_getmsgend: every byte must have been consumed. */
  end(): void {
    if (this.pos !== this.buf.length) throw INVALID_FORMAT;
  }
  private need(n: number): void {
    if (n > this.buf.length - this.pos) throw INSUFFICIENT;
  }
}

function guard<T>(body: Buffer, decode: (r: Reader) => T | ProtocolError): T | ProtocolError {
  try {
    return decode(new Reader(body));
  } catch (e) {
    if (e === NO_DATA || e === INSUFFICIENT || e === INVALID_STRING || e === INVALID_FORMAT) return e as ProtocolError;
    throw e; // a bug in this module, not bad input: let it surface
  }
}

/** Decodes one frame's body. `type` is the frame's first byte, `body` what follows its Int32 length. */
export function decodeFrontend(type: number, body: Buffer): FrontendMessage | ProtocolError {
  switch (type) {
    case Frontend.Query:
      return guard(body, decodeQuery);
    case Frontend.Parse:
      return guard(body, decodeParse);
    case Frontend.Bind:
      return guard(body, decodeBind);
    case Frontend.Describe:
      return guard(body, decodeDescribe);
    case Frontend.Close:
      return guard(body, decodeClose);
    case Frontend.Execute:
      return guard(body, decodeExecute);
    case Frontend.Sync:
      return body.length === 0 ? SYNC : INVALID_FORMAT;
    case Frontend.Flush:
      return body.length === 0 ? FLUSH : INVALID_FORMAT;
    // PostgreSQL reads no body for Terminate (postgres.c) or CopyDone (copyfromparse.c): being stricter
    // than the server would break clients it accepts.
    case Frontend.Terminate:
      return TERMINATE;
    case Frontend.CopyDone:
      return COPY_DONE;
    case Frontend.CopyData:
      return { name: 'copyData', data: body };
    case Frontend.CopyFail:
      // copyfromparse.c reads the message with pq_getmsgstring and no pq_getmsgend.
      return guard(body, decodeCopyFail);
    case Frontend.FunctionCall:
      return guard(body, decodeFunctionCall);
    case Frontend.Password:
      return { name: 'authResponse', data: body };
    default:
      return protocolError(`invalid frontend message type ${type}`);
  }
}

function decodeQuery(r: Reader): Query {
  const text = r.cstring();
  r.end();
  return { name: 'query', text };
}

function decodeParse(r: Reader): Parse {
  const statement = r.cstring();
  const text = r.cstring();
  const n = r.uint16();
  r.fits(n, 4);
  const paramTypes = new Array<number>(n);
  for (let i = 0; i < n; i++) paramTypes[i] = r.uint32();
  r.end();
  return { name: 'parse', statement, text, paramTypes };
}

function formatCodes(r: Reader): number[] {
  const n = r.uint16();
  r.fits(n, 2);
  const codes = new Array<number>(n);
  for (let i = 0; i < n; i++) codes[i] = r.int16();
  return codes;
}

/** Length-prefixed values: -1 is NULL, anything else negative or too long is "insufficient data". */
function values(r: Reader, n: number): (Buffer | null)[] {
  r.fits(n, 4);
  const vals = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    vals[i] = len === -1 ? null : r.bytes(len);
  }
  return vals;
}

function decodeBind(r: Reader): Bind | ProtocolError {
  const portal = r.cstring();
  const statement = r.cstring();
  const paramFormats = formatCodes(r);
  const n = r.uint16();
  // exec_bind_message checks this before reading the values.
  if (paramFormats.length > 1 && paramFormats.length !== n) {
    return protocolError(`bind message has ${paramFormats.length} parameter formats but ${n} parameters`);
  }
  const params = values(r, n);
  const resultFormats = formatCodes(r);
  r.end();
  return { name: 'bind', portal, statement, paramFormats, params, resultFormats };
}

function decodeTarget<N extends 'describe' | 'close'>(
  r: Reader,
  name: N,
  label: string,
): { readonly name: N; readonly kind: 'S' | 'P'; readonly target: string } | ProtocolError {
  const kind = r.byte();
  const target = r.cstring();
  r.end();
  if (kind === 0x53 /* 'S' */) return { name, kind: 'S', target };
  if (kind === 0x50 /* 'P' */) return { name, kind: 'P', target };
  return protocolError(`invalid ${label} message subtype ${kind}`);
}

const decodeDescribe = (r: Reader): Describe | ProtocolError => decodeTarget(r, 'describe', 'DESCRIBE');
const decodeClose = (r: Reader): Close | ProtocolError => decodeTarget(r, 'close', 'CLOSE');

function decodeCopyFail(r: Reader): CopyFail {
  return { name: 'copyFail', message: r.cstring() };
}

function decodeExecute(r: Reader): Execute {
  const portal = r.cstring();
  const maxRows = r.int32();
  r.end();
  return { name: 'execute', portal, maxRows };
}

/** Layout and checks of fastpath.c (HandleFunctionRequest, parse_fcall_arguments). */
function decodeFunctionCall(r: Reader): FunctionCall | ProtocolError {
  const functionOid = r.uint32();
  const argFormats = formatCodes(r);
  const n = r.uint16();
  if (argFormats.length > 1 && argFormats.length !== n) {
    return protocolError(`function call message contains ${argFormats.length} argument formats but ${n} arguments`);
  }
  r.fits(n, 4);
  const args = new Array<Buffer | null>(n);
  for (let i = 0; i < n; i++) {
    const len = r.int32();
    if (len < -1) return protocolError(`invalid argument size ${len} in function call message`);
    args[i] = len === -1 ? null : r.bytes(len);
  }
  const resultFormat = r.int16();
  r.end();
  return { name: 'functionCall', functionOid, argFormats, args, resultFormat };
}

// ---- 'p': the session knows which exchange it is in and picks the decoder ----

/** PasswordMessage (cleartext or md5 hash). Checks of auth.c's recv_password_packet. */
export function decodePasswordMessage(body: Buffer): PasswordMessage | ProtocolError {
  if (body.length === 0 || body.indexOf(0) !== body.length - 1) return protocolError('invalid password packet size');
  // An empty password is refused before any check, so methods backed by external systems never see one.
  if (body.length === 1) return protocolError('empty password returned by client', '28P01');
  return { name: 'password', password: body.toString('utf8', 0, body.length - 1) };
}

/** SASLInitialResponse: mechanism name, then Int32 length (-1: no initial response) and bytes. */
export function decodeSASLInitialResponse(body: Buffer): SASLInitialResponse | ProtocolError {
  return guard(body, (r) => {
    const mechanism = r.cstring();
    const len = r.int32();
    const data = len === -1 ? null : r.bytes(len);
    r.end();
    return { name: 'saslInitialResponse', mechanism, data } as const;
  });
}

/** SASLResponse: the whole body is the mechanism's message. */
export function decodeSASLResponse(body: Buffer): SASLResponse {
  return { name: 'saslResponse', data: body };
}

// ---- Hot path: what routing needs, with as little allocation as possible ----

/** SQL text of a Query ('Q') body, or null if the body is malformed. One native NUL scan, one string. */
export function queryText(body: Buffer): string | null {
  const end = body.length - 1;
  if (end < 0 || body.indexOf(0) !== end) return null;
  return body.toString('utf8', 0, end);
}

/** Statement name and text of a Parse ('P') body, or null if malformed. */
export interface ParseHead {
  /** The statement name ('' for the unnamed statement); this is not a message, so no message `name` here. */
  readonly name: string;
  readonly text: string;
}

/**
 * Statement name and SQL text of a Parse body without decoding the parameter OIDs. The whole layout is
 * still verified (the OID count must account exactly for the bytes left), so a non-null result means
 * decodeFrontend would accept the frame too.
 */
export function parseHead(body: Buffer): ParseHead | null {
  const nameEnd = body.indexOf(0);
  if (nameEnd < 0) return null;
  const textEnd = body.indexOf(0, nameEnd + 1);
  if (textEnd < 0 || textEnd + 3 > body.length) return null;
  const count = (body[textEnd + 1]! << 8) | body[textEnd + 2]!;
  if (textEnd + 3 + 4 * count !== body.length) return null;
  return {
    name: nameEnd === 0 ? '' : body.toString('utf8', 0, nameEnd),
    text: body.toString('utf8', nameEnd + 1, textEnd),
  };
}
