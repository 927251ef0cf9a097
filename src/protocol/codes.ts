/**
 * Message type bytes of the PostgreSQL v3 protocol, with the ASCII letter beside each.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
export const enum Frontend {
  Bind = 0x42, // 'B'
  Close = 0x43, // 'C'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  CopyFail = 0x66, // 'f'
  Describe = 0x44, // 'D'
  Execute = 0x45, // 'E'
  Flush = 0x48, // 'H'
  FunctionCall = 0x46, // 'F'
  Parse = 0x50, // 'P'
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse all share 'p'. */
  Password = 0x70, // 'p'
  Query = 0x51, // 'Q'
  Sync = 0x53, // 'S'
  Terminate = 0x58, // 'X'
}

export const enum Backend {
  Authentication = 0x52, // 'R'
  BackendKeyData = 0x4b, // 'K'
  BindComplete = 0x32, // '2'
  CloseComplete = 0x33, // '3'
  CommandComplete = 0x43, // 'C'
  CopyData = 0x64, // 'd'
  CopyDone = 0x63, // 'c'
  CopyInResponse = 0x47, // 'G'
  CopyOutResponse = 0x48, // 'H'
  CopyBothResponse = 0x57, // 'W'
  DataRow = 0x44, // 'D'
  EmptyQueryResponse = 0x49, // 'I'
  ErrorResponse = 0x45, // 'E'
  FunctionCallResponse = 0x56, // 'V'
  NegotiateProtocolVersion = 0x76, // 'v'
  NoData = 0x6e, // 'n'
  NoticeResponse = 0x4e, // 'N'
  NotificationResponse = 0x41, // 'A'
  ParameterDescription = 0x74, // 't'
  ParameterStatus = 0x53, // 'S'
  ParseComplete = 0x31, // '1'
  PortalSuspended = 0x73, // 's'
  ReadyForQuery = 0x5a, // 'Z'
  RowDescription = 0x54, // 'T'
}

/** Codes in the untyped startup-phase packets (Int32 after the length). */
export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103; // 1234 << 16 | 5679
export const GSSENC_REQUEST_CODE = 80877104; // 1234 << 16 | 5680
export const CANCEL_REQUEST_CODE = 80877102; // 1234 << 16 | 5678

/** Authentication request sub-codes ('R' message). */
export const enum AuthCode {
  Ok = 0,
  CleartextPassword = 3,
  MD5Password = 5,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

/** Transaction status byte of ReadyForQuery. */
export const enum TxStatus {
  Idle = 0x49, // 'I'
  InTransaction = 0x54, // 'T'
  Failed = 0x45, // 'E'
}

/** Field codes in an ErrorResponse / NoticeResponse body (https://www.postgresql.org/docs/current/protocol-error-fields.html). */
export const enum ErrorField {
  /** Severity, localized. */
  Severity = 0x53, // 'S'
  /** SQLSTATE code. */
  Code = 0x43, // 'C'
}

/** What Describe and Close name: a prepared statement or a portal. */
export const enum TargetKind {
  Statement = 0x53, // 'S'
  Portal = 0x50, // 'P'
}

/** The single byte a server answers an SSLRequest / GSSENCRequest with. */
export const enum EncryptionReply {
  Accept = 0x53, // 'S'
  Refuse = 0x4e, // 'N'
}

/** Frontend message types a client may send after startup; anything else is a protocol violation. */
export const FRONTEND_TYPES: ReadonlySet<number> = new Set([
  0x42, 0x43, 0x64, 0x63, 0x66, 0x44, 0x45, 0x48, 0x46, 0x50, 0x70, 0x51, 0x53, 0x58,
]);
