/**
 * Is this error a database that cannot be reached (down, restarting, connection lost) rather than one that
 * answered with a refusal? A rollback waits and retries the first kind (DESIGN.md "Rollback procedure": the
 * source takes no writes until it holds the target's); the second ends the attempt.
 */
const NET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now (starting up / recovering); class 08: connection exception.
const SQLSTATES = /^(08...|57P0[123])$/;
const MESSAGES = /Connection terminated|connection error|timeout expired|Connection ended|not queryable|the database system is (starting up|shutting down|in recovery mode)/i;

export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (NET_CODES.has(code) || SQLSTATES.test(code))) return true;
  if (err instanceof AggregateError && err.errors.some(isUnreachable)) return true;
  return MESSAGES.test(err.message);
}
