/**
 * Typed values for every message a client sends (frontend → backend), as decoded by
 * frontend-decode.ts and startup.ts. Each value has a literal `name` so TypeScript narrows on it.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * Buffers in these values (Bind parameters, CopyData, SASL data, cancel keys) are views into the
 * frame they were decoded from, never copies: they stay valid as long as that frame's bytes do.
 */
import type { SqlStateCode } from './sqlstate.js';

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

export function protocolError(message: string, sqlstate: SqlStateCode = '08P01'): ProtocolError {
  return { name: 'protocolError', sqlstate, message };
}

export function isProtocolError(v: { readonly name: string }): v is ProtocolError {
  return v.name === 'protocolError';
}

/** Format code of a parameter or result column: 0 text, 1 binary (other values are left for the server to reject). */
export type FormatCode = number;

/** 'Q': a simple-protocol query string (may hold several statements). */
export interface Query {
  readonly name: 'query';
  readonly text: string;
}

/** 'P': prepare `text` as `statement` ('' is the unnamed statement). */
export interface Parse {
  readonly name: 'parse';
  readonly statement: string;
  readonly text: string;
  /** Parameter type OIDs; 0 leaves the type for the server to infer. */
  readonly paramTypes: readonly number[];
}

/** 'B': bind parameter values to `statement`, creating `portal`. */
export interface Bind {
  readonly name: 'bind';
  readonly portal: string;
  readonly statement: string;
  /** Empty: all text; one code: applies to all; otherwise one per parameter. */
  readonly paramFormats: readonly FormatCode[];
  /** Raw parameter bytes (views into the frame), null for SQL NULL (length -1). */
  readonly params: readonly (Buffer | null)[];
  /** Same convention as paramFormats, per result column. */
  readonly resultFormats: readonly FormatCode[];
}

/** 'D': describe a prepared statement ('S') or portal ('P'). */
export interface Describe {
  readonly name: 'describe';
  readonly kind: 'S' | 'P';
  readonly target: string;
}

/** 'E': run `portal`; maxRows 0 (or negative) means no limit. */
export interface Execute {
  readonly name: 'execute';
  readonly portal: string;
  readonly maxRows: number;
}

/** 'C': close a prepared statement ('S') or portal ('P'). */
export interface Close {
  readonly name: 'close';
  readonly kind: 'S' | 'P';
  readonly target: string;
}

export interface Sync {
  readonly name: 'sync';
}
export interface Flush {
  readonly name: 'flush';
}
export interface Terminate {
  readonly name: 'terminate';
}
export interface CopyDone {
  readonly name: 'copyDone';
}

/** 'd': a chunk of COPY FROM STDIN data (a view into the frame). */
export interface CopyData {
  readonly name: 'copyData';
  readonly data: Buffer;
}

/** 'f': the client aborts COPY FROM STDIN with this error message. */
export interface CopyFail {
  readonly name: 'copyFail';
  readonly message: string;
}

/** 'F': fast-path function call (legacy, still used by libpq's large-object API). */
export interface FunctionCall {
  readonly name: 'functionCall';
  readonly functionOid: number;
  readonly argFormats: readonly FormatCode[];
  readonly args: readonly (Buffer | null)[];
  readonly resultFormat: FormatCode;
}

/**
 * 'p' before it is known which authentication exchange it answers: PasswordMessage,
 * SASLInitialResponse, SASLResponse and GSSResponse share the letter. The session, which knows what
 * it asked for, decodes `data` with decodePasswordMessage / decodeSASLInitialResponse / decodeSASLResponse.
 */
export interface AuthResponse {
  readonly name: 'authResponse';
  readonly data: Buffer;
}

/** 'p' answering AuthenticationCleartextPassword or AuthenticationMD5Password. */
export interface PasswordMessage {
  readonly name: 'password';
  readonly password: string;
}

/** 'p' answering AuthenticationSASL: the chosen mechanism and its first message (null if length -1). */
export interface SASLInitialResponse {
  readonly name: 'saslInitialResponse';
  readonly mechanism: string;
  readonly data: Buffer | null;
}

/** 'p' answering AuthenticationSASLContinue: the mechanism's next message, the whole body. */
export interface SASLResponse {
  readonly name: 'saslResponse';
  readonly data: Buffer;
}

/** What decodeFrontend returns for a well-formed frame. */
export type FrontendMessage =
  | Query
  | Parse
  | Bind
  | Describe
  | Execute
  | Close
  | Sync
  | Flush
  | Terminate
  | CopyData
  | CopyDone
  | CopyFail
  | FunctionCall
  | AuthResponse;

// ---- Startup phase: untyped packets (Int32 length, Int32 code, body) ----

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
