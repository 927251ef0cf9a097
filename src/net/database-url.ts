/**
 * Backend addresses from `postgres://user:password@host:port/dbname?sslmode=...` URLs
 * (libpq's URI form: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS).
 * Only the parameters the proxy acts on are accepted; an unknown one is an error rather than
 * silently ignored, since a typo in `sslmode` would otherwise downgrade security quietly.
 */
import { fail, ok, type Result } from '../auth/result.js';
import type { Role } from '../domain/role.js';


/** How the server's certificate is checked once TLS is on (libpq sslmode verify-ca / verify-full). */
export type TlsVerify = 'none' | 'verify-ca' | 'verify-full';

export interface BackendTarget {
  role: Role;
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** disable: plain TCP; prefer: TLS if the server agrees; require: TLS or fail. */
  tls: 'disable' | 'prefer' | 'require';
  /** Certificate checking under TLS; default 'none' (libpq's require does not verify either). */
  tlsVerify?: TlsVerify;
  /** PEM file of trusted CAs (sslrootcert); system CAs when absent. */
  tlsRootCertPath?: string;
  /** Bound on TCP connect + TLS + authentication; 0 means none. Default 10 s. */
  connectTimeoutMs: number;
}

export const DEFAULT_PORT = 5432;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

const SSL_MODES: Record<string, { tls: BackendTarget['tls']; verify: TlsVerify }> = {
  disable: { tls: 'disable', verify: 'none' },
  // allow = "plain first, TLS if refused": the proxy has no reason to prefer plain, so treat as prefer.
  allow: { tls: 'prefer', verify: 'none' },
  prefer: { tls: 'prefer', verify: 'none' },
  require: { tls: 'require', verify: 'none' },
  'verify-ca': { tls: 'require', verify: 'verify-ca' },
  'verify-full': { tls: 'require', verify: 'verify-full' },
};

const KNOWN_PARAMS = ['sslmode', 'sslrootcert', 'connect_timeout', 'user', 'password', 'dbname', 'host', 'port'];

function decode(s: string, what: string, errors: string[]): string {
  try {
    return decodeURIComponent(s);
  } catch {
    errors.push(`bad percent-encoding in ${what}`);
    return s;
  }
}

export function parseDatabaseUrl(url: string, role: Role): Result<BackendTarget> {
  const label = `${role} database URL`;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return fail(`${label} is not a valid URL: ${redactUrl(url)}`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    return fail(`${label} must start with postgres:// or postgresql:// (got ${u.protocol}//)`);
  }
  const errors: string[] = [];
  const params = u.searchParams;
  for (const key of new Set(params.keys())) {
    if (!KNOWN_PARAMS.includes(key)) errors.push(`${label}: unknown parameter "${key}" (known: ${KNOWN_PARAMS.join(', ')})`);
  }

  let host = params.get('host') ?? decode(u.hostname, 'host', errors);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === '') errors.push(`${label} has no host`);
  else if (host.includes(',')) errors.push(`${label}: several hosts are not supported`);
  else if (host.startsWith('/')) errors.push(`${label}: Unix-domain socket hosts are not supported`);

  const portText = params.get('port') ?? u.port;
  const port = portText === '' ? DEFAULT_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) errors.push(`${label}: port must be 1-65535 (got "${portText}")`);

  const user = params.get('user') ?? decode(u.username, 'user name', errors);
  if (user === '') errors.push(`${label} has no user name`);

  const rawPassword = params.get('password') ?? decode(u.password, 'password', errors);
  const pathDb = u.pathname.startsWith('/') ? u.pathname.slice(1) : u.pathname;
  const database = params.get('dbname') ?? (pathDb === '' ? user : decode(pathDb, 'database name', errors));

  const sslmode = params.get('sslmode') ?? 'prefer';
  const mode = SSL_MODES[sslmode];
  if (!mode) errors.push(`${label}: sslmode must be one of ${Object.keys(SSL_MODES).join(', ')} (got "${sslmode}")`);

  let connectTimeoutMs = DEFAULT_CONNECT_TIMEOUT_MS;
  const timeout = params.get('connect_timeout');
  if (timeout !== null) {
    if (!/^\d+$/.test(timeout)) errors.push(`${label}: connect_timeout must be a whole number of seconds (got "${timeout}")`);
    else connectTimeoutMs = Number(timeout) * 1000;
  }

  if (errors.length > 0 || !mode) return { ok: false, errors };
  const target: BackendTarget = { role, host, port, user, database, tls: mode.tls, connectTimeoutMs };
  if (rawPassword !== '') target.password = rawPassword;
  if (mode.verify !== 'none') target.tlsVerify = mode.verify;
  const rootCert = params.get('sslrootcert');
  if (rootCert) target.tlsRootCertPath = rootCert;
  return ok(target);
}

/** The URL with its password replaced by `***`, for logs and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    // Not parseable: still never echo what looks like a password.
    return url.replace(/(\/\/[^:/@]*:)[^@]*@/, '$1***@').replace(/([?&]password=)[^&]*/, '$1***');
  }
}

/** `host:port` for messages (IPv6 in brackets). */
export function targetAddress(t: Pick<BackendTarget, 'host' | 'port'>): string {
  return t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`;
}

/** node-postgres connection settings for the control plane's own connections to a backend. */
export function pgClientConfig(t: BackendTarget, applicationName = 'pg-cutover'): import('pg').ClientConfig {
  return {
    host: t.host,
    port: t.port,
    user: t.user,
    password: t.password,
    database: t.database,
    // node-postgres has no 'prefer': the control plane uses TLS only where it is required.
    ssl: t.tls === 'require' ? { rejectUnauthorized: t.tlsVerify !== undefined && t.tlsVerify !== 'none' } : false,
    connectionTimeoutMillis: t.connectTimeoutMs || undefined,
    application_name: applicationName,
  };
}

/**
 * A postgres:// URL for a backend. `libpq` spells sslmode as PostgreSQL does (for a subscription's
 * conninfo); otherwise it is for node-postgres, which reads `prefer` as "TLS required" and knows `no-verify`.
 */
export function backendUrl(t: BackendTarget, dialect: 'node-postgres' | 'libpq' = 'node-postgres'): string {
  const auth = `${encodeURIComponent(t.user)}${t.password !== undefined ? ':' + encodeURIComponent(t.password) : ''}@`;
  const base = `postgresql://${auth}${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}/${encodeURIComponent(t.database)}`;
  if (dialect === 'libpq') return `${base}?sslmode=${t.tls}`;
  if (t.tls !== 'require') return base;
  return `${base}?sslmode=${t.tlsVerify === 'verify-full' ? 'verify-full' : t.tlsVerify === 'verify-ca' ? 'verify-ca' : 'no-verify'}`;
}
