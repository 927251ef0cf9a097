/**
 * How the proxy logs in to a backend on behalf of one client: as which role, and with what.
 * Each client runs as its own role on both backends (issue 15 item 3) when the proxy holds a
 * credential the backends accept for it; none of these kinds needs the plaintext in a file:
 * - `scram-keys`: the ClientKey recovered from the client's own SCRAM proof and the pg_authid verifier
 *   it was checked against (pass-through, as PgBouncer does with auth_query / auth_file verifiers);
 * - `md5-hash`: a pg_authid md5 hash answers a backend's md5 challenge as well as the password would;
 * - `password`: a plaintext password (the users file's, its backendPassword, or the URL's);
 * - `none`: the backend must not ask (trust).
 */
import type { ScramPassThrough } from './scram-client.js';
import { looksLikeMd5Hash } from './md5.js';
import { passwordKind, type UserEntry } from './users.js';

export type BackendCredential =
  | { kind: 'none' }
  | { kind: 'password'; password: string }
  | { kind: 'md5-hash'; hash: string }
  | ({ kind: 'scram-keys' } & ScramPassThrough);

export interface BackendLogin {
  user: string;
  credential: BackendCredential;
}

/**
 * `client`: every client logs in to the backends as itself; `url`: every client uses the backend URL's
 * login (one role for all); `auto`: as itself when its entry came from the database (a pg_authid SCRAM
 * verifier or md5 hash, in the users file or through --auth-lookup) or names a backendPassword, else the URL's.
 */
export const BACKEND_LOGIN_MODES = ['auto', 'client', 'url'] as const;
export type BackendLoginMode = (typeof BACKEND_LOGIN_MODES)[number];

/** What the client's own login at the proxy left us to log in with (before backendPassword). */
export function credentialFromLogin(entry: UserEntry | undefined, scram: ScramPassThrough | undefined): BackendCredential {
  if (scram) {
    // A verifier in the entry: only its keys can log in. A plaintext entry: the password itself is simpler.
    const pw = entry?.password;
    if (pw !== undefined && passwordKind(pw) === 'plaintext') return { kind: 'password', password: pw };
    return { kind: 'scram-keys', ...scram };
  }
  const pw = entry?.password;
  if (pw === undefined || pw === '') return { kind: 'none' };
  if (looksLikeMd5Hash(pw)) return { kind: 'md5-hash', hash: pw };
  if (passwordKind(pw) === 'plaintext') return { kind: 'password', password: pw };
  return { kind: 'none' };
}

/**
 * The backend login for a client that logged in as `entry.name`, or null to use the URL's.
 * Pure: decided once per client at login.
 */
export function backendLoginFor(
  mode: BackendLoginMode,
  entry: UserEntry | undefined,
  fromLogin: BackendCredential,
  url: { user: string },
): BackendLogin | null {
  if (!entry || mode === 'url' || entry.name === url.user) return null;
  const credential: BackendCredential = entry.backendPassword !== undefined ? { kind: 'password', password: entry.backendPassword } : fromLogin;
  if (mode === 'client') return { user: entry.name, credential };
  const fromDatabase = entry.fromDatabase === true || (entry.password !== undefined && passwordKind(entry.password) !== 'plaintext');
  return fromDatabase || entry.backendPassword !== undefined ? { user: entry.name, credential } : null;
}
