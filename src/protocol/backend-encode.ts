/**
 * Encoders for the backend messages the proxy itself sends to clients (it forwards everything else as bytes).
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { AuthCode, Backend, ErrorField, TxStatus } from './codes.js';

function frame(type: number, bodyLen: number): Buffer {
  const b = Buffer.allocUnsafe(5 + bodyLen);
  b[0] = type;
  b.writeInt32BE(4 + bodyLen, 1);
  return b;
}

function authInt(code: number, extra = 0): Buffer {
  const b = frame(Backend.Authentication, 4 + extra);
  b.writeInt32BE(code, 5);
  return b;
}

export const authenticationOk = (): Buffer => authInt(AuthCode.Ok);
export const authenticationCleartextPassword = (): Buffer => authInt(AuthCode.CleartextPassword);

export function authenticationMD5Password(salt: Buffer): Buffer {
  const b = authInt(AuthCode.MD5Password, 4);
  salt.copy(b, 9, 0, 4);
  return b;
}

/** AuthenticationSASL: a list of mechanism names, each NUL-terminated, then an empty string. */
export function authenticationSASL(mechanisms: readonly string[]): Buffer {
  const names = mechanisms.map((m) => Buffer.from(m + '\0', 'utf8'));
  const len = names.reduce((n, x) => n + x.length, 0) + 1;
  const b = authInt(AuthCode.SASL, len);
  let at = 9;
  for (const n of names) at += n.copy(b, at);
  b[at] = 0;
  return b;
}

export function authenticationSASLContinue(data: Buffer): Buffer {
  const b = authInt(AuthCode.SASLContinue, data.length);
  data.copy(b, 9);
  return b;
}

export function authenticationSASLFinal(data: Buffer): Buffer {
  const b = authInt(AuthCode.SASLFinal, data.length);
  data.copy(b, 9);
  return b;
}

export function parameterStatus(name: string, value: string): Buffer {
  const n = Buffer.byteLength(name);
  const v = Buffer.byteLength(value);
  const b = frame(Backend.ParameterStatus, n + v + 2);
  b.write(name, 5, 'utf8');
  b[5 + n] = 0;
  b.write(value, 6 + n, 'utf8');
  b[6 + n + v] = 0;
  return b;
}

export function backendKeyData(pid: number, secret: number): Buffer {
  const b = frame(Backend.BackendKeyData, 8);
  b.writeInt32BE(pid, 5);
  b.writeInt32BE(secret, 9);
  return b;
}

export function readyForQuery(status: TxStatus = TxStatus.Idle): Buffer {
  const b = frame(Backend.ReadyForQuery, 1);
  b[5] = status;
  return b;
}

/** NegotiateProtocolVersion: newest minor version we support (0) and the options we did not recognise. */
export function negotiateProtocolVersion(minor: number, unrecognised: readonly string[]): Buffer {
  const opts = unrecognised.map((o) => Buffer.from(o + '\0', 'utf8'));
  const len = 8 + opts.reduce((n, x) => n + x.length, 0);
  const b = frame(Backend.NegotiateProtocolVersion, len);
  b.writeInt32BE(minor, 5);
  b.writeInt32BE(opts.length, 9);
  let at = 13;
  for (const o of opts) at += o.copy(b, at);
  return b;
}

export interface Notice {
  severity: 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'INFO' | 'LOG' | 'DEBUG';
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

function fields(n: Notice): Buffer {
  // Field codes: https://www.postgresql.org/docs/current/protocol-error-fields.html
  // 'V' (non-localized severity) lets clients such as node-postgres and libpq read the severity reliably.
  const parts: [string, string | undefined][] = [
    ['S', n.severity],
    ['V', n.severity],
    ['C', n.code],
    ['M', n.message],
    ['D', n.detail],
    ['H', n.hint],
  ];
  const bufs: Buffer[] = [];
  for (const [k, v] of parts) if (v !== undefined) bufs.push(Buffer.from(k + v + '\0', 'utf8'));
  bufs.push(Buffer.from([0]));
  return Buffer.concat(bufs);
}

export function errorResponse(n: Notice): Buffer {
  const f = fields(n);
  const b = frame(Backend.ErrorResponse, f.length);
  f.copy(b, 5);
  return b;
}

/** Reads the SQLSTATE ('C' field) out of an ErrorResponse/NoticeResponse body without decoding the rest. */
export function sqlStateOf(buf: Buffer, start: number, end: number): string {
  let i = start;
  while (i < end && buf[i] !== 0) {
    const code = buf[i];
    const z = buf.indexOf(0, i + 1);
    if (z < 0 || z >= end) return '';
    if (code === ErrorField.Code) return buf.toString('latin1', i + 1, z);
    i = z + 1;
  }
  return '';
}

/** An ErrorResponse body (buf[start, end)) whose severity ends the session: FATAL or PANIC. */
export function isFatal(buf: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && buf[i] !== 0) {
    const z = buf.indexOf(0, i + 1);
    if (z < 0 || z >= end) return false;
    if (buf[i] === ErrorField.Severity) {
      const sev = buf.toString('latin1', i + 1, z);
      return sev === 'FATAL' || sev === 'PANIC';
    }
    i = z + 1;
  }
  return false;
}

/** A FATAL in protocol 2's format ('E', text, NUL), as PostgreSQL refuses a client asking for protocol 2. */
export function legacyFatal(message: string): Buffer {
  return Buffer.from(`EFATAL:  ${message}\n\0`, 'utf8');
}
