/**
 * What the proxy's listener is given (ProxyServer's options) and its login defaults.
 */
import type { SecureContext } from 'node:tls';
import type { BackendLoginMode } from '../auth/backend-credential.js';
import type { ThrottleConfig } from '../auth/login-throttle.js';
import type { BackendTarget } from '../net/database-url.js';
import type { UserSource } from './login.js';
import type { Router } from './router-glue.js';
import type { ShadowTap } from './shadow-tap.js';
import type { ReaderRouting } from './reader-routing.js';

export interface ProxyOptions {
  listen: { host: string; port: number };
  backends: { source: BackendTarget; target: BackendTarget; readers?: readonly BackendTarget[] };
  readers?: ReaderRouting | null; // the choice among backends.readers (--target-readers)
  users: UserSource;
  /** Certificate and key, or a holder whose context can be reloaded (TlsHolder). */
  tls?: { cert: Buffer; key: Buffer } | { context(): SecureContext };
  /** Refuse clients that do not use TLS (FATAL 28000, as a hostssl-only pg_hba.conf). */
  requireTls?: boolean;
  /** Logged-in client sessions at most. */
  maxClients: number;
  /** Connections still logging in at most (default 100); at the limit the oldest one is closed. */
  maxPendingLogins?: number;
  maxMessageBytes: number;
  /** Named prepared statement bytes per session (default 32 MiB); more ends the session with 53200. */
  maxPreparedBytes?: number;
  /** Startup parameters dropped silently (lower case); others outside the allow-list are refused (08P01). */
  ignoreStartupParameters?: readonly string[];
  /** Default 15 s. */
  loginTimeoutMs?: number;
  /** Failed-login throttling per client address (default: 20 failures block for 60 s, delay up to 1 s). */
  throttle?: ThrottleConfig;
  /** Which role clients run as on the backends (default `auto`, see backend-credential.ts). */
  backendLogin?: BackendLoginMode;
  router: Router;
  shadower?: () => ShadowTap | null;
}

/** PostgreSQL's authentication_timeout is 60 s; a genuine login through the proxy takes milliseconds. */
export const DEFAULT_LOGIN_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_PENDING_LOGINS = 100;
/** A connection still logging in after this may be closed to make room (see accept). */
export const EVICTABLE_AFTER_MS = 1000;
export const DEFAULT_THROTTLE: ThrottleConfig = { maxFailures: 20, blockMs: 60_000, maxDelayMs: 1000 };
