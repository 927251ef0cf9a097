/**
 * What the startup-phase decoder returns: the untyped packets a client may send first, and a malformed
 * message as a value. Each value has a literal `name` so TypeScript narrows on it.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { SqlState, type SqlStateCode } from './sqlstate.js';

/**
 * A malformed message, as a value. `message` uses PostgreSQL's own wording (pqformat.c,
 * postgres.c, backend_startup.c) so a client sees what the server would have said.
 */
export interface ProtocolError {
  readonly name: 'protocolError';
  /** 08P01 for malformed bytes; 0A000 for an unsupported protocol version; 28000 / 28P01 where PostgreSQL uses them. */
  readonly sqlstate: SqlStateCode;
  readonly message: string;
  /**
   * PostgreSQL only logs it (COMMERROR) and closes the connection without a word: a bad startup length, a
   * Terminate or an HTTP request before the StartupMessage, a malformed CancelRequest.
   */
  readonly silent?: boolean;
  /** The client asked for protocol 2: the FATAL goes in that protocol's format (legacyFatal). */
  readonly legacy?: boolean;
}

export function protocolError(message: string, sqlstate: SqlStateCode = SqlState.ProtocolViolation): ProtocolError {
  return { name: 'protocolError', sqlstate, message };
}


/**
 * Set when the client asked for a newer minor version or sent `_pq_.` protocol options: the caller
 * answers with NegotiateProtocolVersion (newest minor version we speak, then the options we ignored)
 * before authentication, as PostgreSQL does (backend_startup.c, SendNegotiateProtocolVersion).
 */
export interface NegotiateNote {
  readonly newestMinorVersion: 0;
  readonly unrecognizedOptions: readonly string[];
}

export interface StartupMessage {
  readonly name: 'startupMessage';
  readonly majorVersion: 3;
  readonly minorVersion: number;
  /** Every name/value pair in the order sent (duplicates kept), `_pq_.` options included. */
  readonly parameters: readonly (readonly [string, string])[];
  /** The same pairs by name, last one wins (prototype-free object: a `__proto__` key is just a key). */
  readonly params: Readonly<Record<string, string>>;
  /** Required and non-empty. */
  readonly user: string;
  /** `database`, or the user name when absent or empty (PostgreSQL's default). */
  readonly database: string;
  readonly negotiate: NegotiateNote | null;
}

export interface SSLRequest {
  readonly name: 'sslRequest';
}

export interface GSSENCRequest {
  readonly name: 'gssEncRequest';
}

/** Sent on a fresh connection to cancel the query running on another; nothing is sent back. */
export interface CancelRequest {
  readonly name: 'cancelRequest';
  readonly processId: number;
  /** 4 bytes in protocol 3.0; PostgreSQL 18 (protocol 3.2) allows up to 256. A view into the packet. */
  readonly secretKey: Buffer;
}

export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;
