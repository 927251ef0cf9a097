import type { Role } from './role.js';
import { SqlState } from '../protocol/sqlstate.js';
/**
 * Whose fault is an error? Only errors the target caused may count towards the rollback breaker
 * (shared/DESIGN.md "Circuit breakers"): a client's syntax error or unique violation would fail
 * on any server and must never roll a migration back.
 *
 * SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** A SQLSTATE, or a failure that never produced one. */
export type ErrorCause = string | 'connection' | 'timeout';

/**
 * Classes that say the server or the path to it failed, not the statement:
 * 08 connection exception, 53 insufficient resources, 57 operator intervention (admin shutdown,
 * crash shutdown, cannot connect now, query canceled), 58 system error (I/O), XX internal error.
 */
export const SERVER_FAULT_CLASSES: ReadonlySet<string> = new Set(['08', '53', '57', '58', 'XX']);

/** 57014 query_canceled: also what a client's own CancelRequest produces. */
const QUERY_CANCELED = SqlState.QueryCanceled;

export interface AttributionContext {
  /** The backend that returned the error. Default 'target'. A source error is never the target's fault. */
  readonly backend?: Role;
  /** The client sent a CancelRequest for this query, so its 57014 is the client's doing. */
  readonly clientCancelled?: boolean;
  /**
   * What the source gave for the same statement, when known (dark reads, shadow comparison):
   * 'ok', or its SQLSTATE. An error the source would not give is the target's fault whatever its
   * class; the same error on both sides is not.
   */
  readonly sourceResult?: 'ok' | string;
  /**
   * The target is fenced (this sidecar's own write hold retired the link, or the databases' writer record says
   * so): its refusals (25006, 42501) and the sessions it ends (57P01, the lost connection) are the fence at
   * work, not the target failing.
   */
  readonly fenced?: boolean;
}

/**
 * True when the error (or failure) is a server-side fault: connection failures, timeouts and
 * the classes of `SERVER_FAULT_CLASSES`, except a 57014 the client asked for. Independent of the
 * backend: used for both sides, so the source's rate can serve as the baseline.
 */
export function isServerFault(cause: ErrorCause, clientCancelled = false): boolean {
  if (cause === 'connection' || cause === 'timeout') return true;
  if (cause === QUERY_CANCELED && clientCancelled) return false;
  return SERVER_FAULT_CLASSES.has(cause.slice(0, 2).toUpperCase());
}

/**
 * Errors a read may meet on the target only because the target's schema or grants differ from the
 * source's (issue 16: a table missing on the target): undefined table, column, function, object or
 * schema, insufficient privilege, and a prepared statement missing there (26000: its catch-up Parse failed
 * on the target for one of those reasons). The source may give the same error (the client's own mistake):
 * then it is not the target's fault (`isTargetFault` with `sourceResult`).
 */
export const SCHEMA_DRIFT_CODES: ReadonlySet<string> = new Set([SqlState.UndefinedTable, SqlState.UndefinedColumn, SqlState.UndefinedFunction, SqlState.UndefinedObject, SqlState.InvalidSchemaName, SqlState.InsufficientPrivilege, SqlState.InvalidStatementName]);

/**
 * May a read that failed on the target with `code` be run again on the source, when no byte of its reply
 * reached the client? Server faults and schema drift, never a 57014: a cancel (the client's CancelRequest,
 * pg_cancel_backend, statement_timeout) is an answer PostgreSQL gives the client, not a failure to retry.
 */
export function retryOnSource(code: string): boolean {
  if (code === QUERY_CANCELED) return false;
  return SCHEMA_DRIFT_CODES.has(code) || SERVER_FAULT_CLASSES.has(code.slice(0, 2).toUpperCase());
}

/** Should this error count against the target? */
export function isTargetFault(cause: ErrorCause, ctx: AttributionContext = {}): boolean {
  if (ctx.backend === 'source' || ctx.fenced) return false;
  if (cause === QUERY_CANCELED && ctx.clientCancelled) return false;
  if (ctx.sourceResult !== undefined) {
    if (ctx.sourceResult === cause) return false;
    if (ctx.sourceResult === 'ok') return true;
  }
  return isServerFault(cause, ctx.clientCancelled === true);
}
