/**
 * The control plane's own database sessions. They must keep working on a fenced database
 * (DESIGN.md "Fencing"): `default_transaction_read_only = on` is set per application role, and a
 * startup-packet option outranks a role setting (GUC source "client" is above "user",
 * https://www.postgresql.org/docs/15/config-setting.html), so we pass `-c default_transaction_read_only=off`
 * at connect time and again with SET. The application_name marks them so fencing never ends them.
 */
import pg from 'pg';
import { log } from '../support/log.js';
import { SqlState } from '../protocol/sqlstate.js';
import { isUnreachable } from './unreachable.js';
import { isSessionLost } from './runtime-plan.js';

/** application_name prefix of control-plane sessions; fencing skips sessions that carry it. */
export const CONTROL_APPLICATION_NAME = 'pg-cutover-control';

/** A server's control login: a URL, or node-postgres settings (e.g. from net/database-url.ts pgClientConfig). */
export type ControlLogin = string | pg.ClientConfig;

/** What our replication code needs from a connection: node-postgres' Client or PoolClient. */
export type Db = pg.Client | pg.PoolClient;

export interface ControlConnectOptions {
  /** Suffix after `pg-cutover-control:` in application_name, e.g. `switchover`. */
  purpose?: string;
  /** Give up connecting after this. Default 10 s. */
  connectTimeoutMs?: number;
  /** Extra `SET name = value` for the session (e.g. checksum sessions pin TimeZone). */
  settings?: Readonly<Record<string, string>>;
}

export function controlApplicationName(purpose?: string): string {
  return purpose ? `${CONTROL_APPLICATION_NAME}:${purpose}` : CONTROL_APPLICATION_NAME;
}

function sessionOptions(settings: Readonly<Record<string, string>> = {}): string {
  const all = { default_transaction_read_only: 'off', ...settings };
  // libpq `options` syntax: spaces separate switches, a backslash escapes a space in a value.
  return Object.entries(all)
    .map(([k, v]) => `-c ${k}=${v.replace(/\\/g, '\\\\').replace(/ /g, '\\ ')}`)
    .join(' ');
}

/** pg.Client config for a control session: application_name, read-only off, extra settings. */
export function controlClientConfig(login: ControlLogin, opts: ControlConnectOptions = {}): pg.ClientConfig {
  return {
    ...(typeof login === 'string' ? { connectionString: login } : login),
    application_name: controlApplicationName(opts.purpose),
    options: sessionOptions(opts.settings),
    connectionTimeoutMillis: opts.connectTimeoutMs ?? (typeof login === 'string' ? undefined : login.connectionTimeoutMillis) ?? 10_000,
  };
}

/**
 * Opens a control session. A session ended by the server (e.g. a fence that did not know it, or
 * a restart) is logged, not thrown at the process: the next query on it fails and says so.
 */
export async function connectControl(login: ControlLogin, opts: ControlConnectOptions = {}): Promise<pg.Client> {
  const c = new pg.Client(controlClientConfig(login, opts));
  c.on('error', (err) => log.warn({ err: err.message, purpose: opts.purpose }, 'control connection lost'));
  try {
    await c.connect();
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
  try {
    // Redundant with the startup option, unless something between us and the server (a pooler)
    // dropped it.
    await c.query('SET default_transaction_read_only = off');
  } catch (err) {
    await c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

/** A pool of control sessions (read-only off, marked), e.g. for parallel checksums. */
export function controlPool(login: ControlLogin, max: number, opts: ControlConnectOptions = {}): pg.Pool {
  const pool = new pg.Pool({ ...controlClientConfig(login, opts), max });
  pool.on('error', (err) => log.warn({ err: err.message, purpose: opts.purpose }, 'idle control connection lost'));
  return pool;
}

/** The server's major version (14, 15, ...). */
export async function serverMajor(db: Db): Promise<number> {
  const r = await db.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return Math.floor(Number(r.rows[0]!.v) / 10000);
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? `${err.message} (SQLSTATE ${code})` : err.message;
  }
  return String(err);
}

/**
 * A control query's failure as a value: `unreachable` (cannot connect, or the session was lost: try again
 * later), `timeout` (the statement ran past its bound: the server cancelled it, or no answer came), or
 * `refused` (the server answered with an error: retrying the same query will not help).
 */
export interface ControlError {
  readonly kind: 'unreachable' | 'timeout' | 'refused';
  readonly message: string;
  readonly sqlstate?: string;
}

/** Thrown by a control session that has no connection now (down, backing off, or closed). */
export class ControlUnreachable extends Error {}

export function controlError(err: unknown): ControlError {
  const code = (err as { code?: unknown } | null)?.code;
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? { sqlstate: code } : {};
  const message = errorText(err);
  if (code === SqlState.QueryCanceled || /Query read timeout/.test(message)) return { kind: 'timeout', message, ...sqlstate };
  if (err instanceof ControlUnreachable || isSessionLost(err) || isUnreachable(err)) return { kind: 'unreachable', message, ...sqlstate };
  return { kind: 'refused', message, ...sqlstate };
}
