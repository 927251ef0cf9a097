/**
 * The SQLSTATE codes pg-cutover itself sends to clients, with their meaning.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
export const SqlState = {
  /** 08001 sqlclient_unable_to_establish_sqlconnection: a backend could not be reached at connect. */
  CannotConnect: '08001',
  /** 08006 connection_failure: a backend connection broke mid-session. */
  ConnectionFailure: '08006',
  /** 08P01 protocol_violation: malformed, truncated, oversized or unknown frame. */
  ProtocolViolation: '08P01',
  /** 0A000 feature_not_supported. */
  FeatureNotSupported: '0A000',
  /** 25006 read_only_sql_transaction: fenced backend, or a client tried to lift read-only on it. */
  ReadOnlyTransaction: '25006',
  /** 28000 invalid_authorization_specification: unknown user / method not allowed. */
  InvalidAuthorization: '28000',
  /** 28P01 invalid_password. */
  InvalidPassword: '28P01',
  /** 53200 out_of_memory: a session's prepared statements hold more than --max-prepared-bytes. */
  OutOfMemory: '53200',
  /** 53300 too_many_connections. */
  TooManyConnections: '53300',
  /** 57P01 admin_shutdown: the proxy is shutting down. */
  AdminShutdown: '57P01',
  /** 57014 query_canceled. */
  QueryCanceled: '57014',
  /** XX000 internal_error: a bug in pg-cutover; details are logged, never sent. */
  Internal: 'XX000',
} as const;
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];
