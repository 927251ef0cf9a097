/**
 * Meaning of the untyped packets a client may send first: StartupMessage, SSLRequest, GSSENCRequest,
 * CancelRequest. Pure, never throws on bad input.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 * Checks and wording follow PostgreSQL's ProcessStartupPacket / ProcessCancelRequestPacket
 * (src/backend/tcop/backend_startup.c; postmaster.c before PG 17).
 */
import { CANCEL_REQUEST_CODE, GSSENC_REQUEST_CODE, SSL_REQUEST_CODE } from './codes.js';
import {
  protocolError,
  type CancelRequest,
  type GSSENCRequest,
  type NegotiateNote,
  type ProtocolError,
  type SSLRequest,
  type StartupMessage,
  type StartupPacket,
} from './startup-messages.js';
import { SqlState } from './sqlstate.js';

/** PostgreSQL's MAX_STARTUP_PACKET_LENGTH (pqcomm.h): larger packets are refused unread. */
export const MAX_STARTUP_PACKET_LENGTH = 10000;

/** Secret key bytes accepted in a CancelRequest: 4 in protocol 3.0, up to 256 since PG 18 (protocol 3.2). */
export const MIN_CANCEL_KEY_LENGTH = 4;
export const MAX_CANCEL_KEY_LENGTH = 256;

/** The versions we speak: 3.0 only. A newer 3.x minor is accepted and negotiated down. */
const MAJOR = 3;
const NEWEST_MINOR = 0;

const SSL_REQUEST: SSLRequest = Object.freeze({ name: 'sslRequest' });
const GSSENC_REQUEST: GSSENCRequest = Object.freeze({ name: 'gssEncRequest' });

// ProcessStartupPacket reports these as COMMERROR: logged, never sent; the connection just closes.
const BAD_LENGTH: ProtocolError = Object.freeze({ ...protocolError('invalid length of startup packet'), silent: true });
const BAD_LAYOUT = Object.freeze(protocolError('invalid startup packet layout: expected terminator as last byte'));

/** Decodes one whole startup-phase packet, its Int32 length included. */
export function decodeStartupPacket(frame: Buffer): StartupPacket | ProtocolError {
  const len = frame.length;
  // ProcessStartupPacket: the length counts itself and must leave room for the 4-byte code.
  if (len < 8 || len > MAX_STARTUP_PACKET_LENGTH || frame.readInt32BE(0) !== len) return BAD_LENGTH;
  const code = frame.readUInt32BE(4);
  switch (code) {
    case CANCEL_REQUEST_CODE:
      return decodeCancel(frame);
    // These two carry no body; PostgreSQL does not check, but anything after the code here means
    // the client and we disagree on framing, and the next bytes would be read as a TLS handshake
    // (closed silently, as for a bad length).
    case SSL_REQUEST_CODE:
      return len === 8 ? SSL_REQUEST : BAD_LENGTH;
    case GSSENC_REQUEST_CODE:
      return len === 8 ? GSSENC_REQUEST : BAD_LENGTH;
    default:
      return decodeStartupMessage(frame, code >>> 16, code & 0xffff);
  }
}

function decodeCancel(frame: Buffer): CancelRequest | ProtocolError {
  if (frame.length < 12) return { ...protocolError('invalid length of cancel request packet'), silent: true };
  const keyLen = frame.length - 12;
  if (keyLen < MIN_CANCEL_KEY_LENGTH || keyLen > MAX_CANCEL_KEY_LENGTH) {
    return { ...protocolError('invalid length of cancel key in cancel request packet'), silent: true };
  }
  return { name: 'cancelRequest', processId: frame.readInt32BE(8), secretKey: frame.subarray(12) };
}

function decodeStartupMessage(frame: Buffer, major: number, minor: number): StartupMessage | ProtocolError {
  if (major !== MAJOR) {
    const e = protocolError(`unsupported frontend protocol ${major}.${minor}: server supports ${MAJOR}.0 to ${MAJOR}.${NEWEST_MINOR}`, SqlState.FeatureNotSupported);
    // PostgreSQL answers in the protocol the client asked for: before 3.0, an error is 'E' and text.
    return major < MAJOR ? { ...e, legacy: true } : e;
  }
  // name\0value\0 ... \0 : the loop stops at an empty name, which must be the very last byte.
  const last = frame.length - 1;
  const parameters: (readonly [string, string])[] = [];
  const params: Record<string, string> = Object.create(null);
  const unrecognized: string[] = [];
  let pos = 8;
  while (pos < last && frame[pos] !== 0) {
    const nameEnd = frame.indexOf(0, pos);
    if (nameEnd < 0 || nameEnd >= last) return BAD_LAYOUT;
    const valueEnd = frame.indexOf(0, nameEnd + 1);
    if (valueEnd < 0) return BAD_LAYOUT;
    const key = frame.toString('utf8', pos, nameEnd);
    const value = frame.toString('utf8', nameEnd + 1, valueEnd);
    parameters.push([key, value]);
    params[key] = value;
    // `_pq_.` names are reserved for protocol extensions; we know none, so they are reported back.
    if (key.startsWith('_pq_.')) unrecognized.push(key);
    pos = valueEnd + 1;
  }
  if (pos !== last || frame[last] !== 0) return BAD_LAYOUT;

  const user = params['user'];
  if (user === undefined || user === '') {
    return protocolError('no PostgreSQL user name specified in startup packet', SqlState.InvalidAuthorization);
  }
  const db = params['database'];
  const negotiate: NegotiateNote | null =
    minor > NEWEST_MINOR || unrecognized.length > 0
      ? { newestMinorVersion: NEWEST_MINOR, unrecognizedOptions: unrecognized }
      : null;
  return {
    name: 'startupMessage',
    majorVersion: MAJOR,
    minorVersion: minor,
    parameters,
    params,
    user,
    database: db === undefined || db === '' ? user : db,
    negotiate,
  };
}
