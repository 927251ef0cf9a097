import { pino, type Logger } from 'pino';

/** One process-wide structured logger. Level from PGCUTOVER_LOG_LEVEL (default info); logs go to stderr so stdout stays for CLI output. */
export const log: Logger = pino(
  { level: process.env.PGCUTOVER_LOG_LEVEL ?? 'info', base: { svc: 'pg-cutover' } },
  pino.destination({ dest: 2, sync: false }),
);
export type { Logger };
