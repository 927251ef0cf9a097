/**
 * Every SQLSTATE pg-cutover sends to clients or reacts to when a database sends it, with its meaning: the one
 * catalogue (test/protocol/sqlstate.test.ts checks no other source file spells a code).
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
  /** 40001 serialization_failure (on a hot standby: a read canceled by a conflict with recovery). */
  SerializationFailure: '40001',
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
  /** 3D000 invalid_catalog_name: a startup packet names a database the proxy does not serve. */
  InvalidCatalogName: '3D000',
  /** 3F000 invalid_schema_name (schema drift on the target). */
  InvalidSchemaName: '3F000',
  /** 23505 unique_violation. */
  UniqueViolation: '23505',
  /** 26000 invalid_sql_statement_name: a prepared statement the backend does not know. */
  InvalidStatementName: '26000',
  /** 42501 insufficient_privilege (also what a fenced role meets). */
  InsufficientPrivilege: '42501',
  /** 42703 undefined_column. */
  UndefinedColumn: '42703',
  /** 42704 undefined_object. */
  UndefinedObject: '42704',
  /** 42883 undefined_function. */
  UndefinedFunction: '42883',
  /** 42P01 undefined_table. */
  UndefinedTable: '42P01',
  /** 42P04 duplicate_database. */
  DuplicateDatabase: '42P04',
  /** 42P06 duplicate_schema. */
  DuplicateSchema: '42P06',
  /** 42P07 duplicate_table. */
  DuplicateTable: '42P07',
  /** 55P03 lock_not_available (lock_timeout). */
  LockNotAvailable: '55P03',
  /** 57P02 crash_shutdown. */
  CrashShutdown: '57P02',
  /** 57P03 cannot_connect_now: the server is starting or shutting down. */
  CannotConnectNow: '57P03',
  /** XX000 internal_error: a bug in pg-cutover; details are logged, never sent. */
  Internal: 'XX000',
} as const;
export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];
