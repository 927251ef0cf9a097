/**
 * auth_query-style lookup (PgBouncer's auth_user / auth_query, https://www.pgbouncer.org/config.html#auth_query):
 * a user missing from the users file is looked up on the source through the control login, and its pg_authid
 * secret (SCRAM verifier or md5 hash) checks the client's proof. With SCRAM pass-through the proxy then logs in
 * to both backends as that user without ever holding its password.
 * Answers are cached for `ttlMs` (found or not), so a burst of logins, or of unknown names, costs one query each.
 */
import type pg from 'pg';
import { log } from '../support/log.js';
import { looksLikeMd5Hash } from './md5.js';
import { looksLikeScramVerifier, parseScramVerifier } from './scram-crypto.js';
import type { UserEntry } from './users.js';

/** PgBouncer's default auth_query. pg_shadow needs a superuser; pg_authid works too. */
export const DEFAULT_AUTH_QUERY = 'SELECT usename, passwd FROM pg_shadow WHERE usename=$1';
const MAX_CACHED = 10_000;

export interface AuthLookupOptions {
  query: string;
  ttlMs: number;
  /** Opens a control session on the source (connectControl). */
  connect(): Promise<pg.Client>;
  now?: () => number;
}

export interface AuthLookup {
  lookup(name: string): Promise<UserEntry | undefined>;
  /** Forget cached answers (SIGHUP reload). */
  clear(): void;
  close(): Promise<void>;
}

/** A row of the auth query to a users entry: only a SCRAM verifier or an md5 hash is usable. */
export function entryFromSecret(name: string, secret: string | null | undefined): UserEntry | undefined {
  if (!secret) return undefined;
  if (looksLikeScramVerifier(secret)) return parseScramVerifier(secret) ? { name, method: 'scram-sha-256', password: secret, fromDatabase: true } : undefined;
  if (looksLikeMd5Hash(secret)) return { name, method: 'md5', password: secret, fromDatabase: true };
  return undefined;
}

export function createAuthLookup(o: AuthLookupOptions): AuthLookup {
  const now = o.now ?? Date.now;
  const cache = new Map<string, { at: number; entry: UserEntry | undefined }>();
  const inflight = new Map<string, Promise<UserEntry | undefined>>();
  let client: pg.Client | null = null;
  let opening: Promise<pg.Client> | null = null;

  const session = async (): Promise<pg.Client> => {
    if (client) return client;
    opening ??= o.connect().then(
      (c) => {
        c.on('end', () => {
          if (client === c) client = null;
        });
        c.on('error', () => {
          if (client === c) client = null;
        });
        client = c;
        opening = null;
        return c;
      },
      (e: unknown) => {
        opening = null;
        throw e;
      },
    );
    return opening;
  };

  async function query(name: string): Promise<UserEntry | undefined> {
    try {
      const c = await session();
      const r = await c.query<Record<string, string | null>>(o.query, [name]);
      const row = r.rows[0];
      if (!row) return undefined;
      const secret = row.passwd ?? row.rolpassword ?? Object.values(row)[1];
      return entryFromSecret(name, secret);
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'auth query on the source failed');
      client?.end().catch(() => undefined);
      client = null;
      throw e;
    }
  }

  async function lookup(name: string): Promise<UserEntry | undefined> {
    const hit = cache.get(name);
    if (hit && now() - hit.at < o.ttlMs) return hit.entry;
    const running = inflight.get(name);
    if (running) return running;
    const p = query(name).then((entry) => {
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as string);
      cache.set(name, { at: now(), entry });
      return entry;
    });
    inflight.set(name, p);
    try {
      return await p;
    } finally {
      inflight.delete(name);
    }
  }

  return {
    lookup,
    clear: () => cache.clear(),
    close: async () => {
      const c = client;
      client = null;
      await c?.end().catch(() => undefined);
    },
  };
}
