/**
 * Where the server side gets a user's ScramSecret. A stored verifier is parsed once; a
 * plaintext password is salted and stretched once (PBKDF2, 4096 rounds: milliseconds of
 * blocked event loop) and cached, not once per login.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  parseScramVerifier,
  SCRAM_DEFAULT_ITERATIONS,
  SCRAM_KEY_LEN,
  SCRAM_SALT_LEN,
  secretFromPassword,
  type ScramSecret,
} from './scram-crypto.js';
import { passwordKind, type UserEntry } from './users.js';

/** Bounded so a churning users file cannot grow it forever; far above any real user count. */
const MAX_CACHED = 10_000;
const cache = new Map<string, ScramSecret>();

/** Secret for a process lifetime: mock salts stay the same per user name until restart, as in PostgreSQL. */
const mockNonce = randomBytes(32);

/**
 * The secret to check a SCRAM proof for this user, or undefined when the entry cannot answer
 * SCRAM (no password, or an md5 hash) — the caller then runs a doomed mock exchange.
 */
export function scramSecretFor(user: UserEntry): ScramSecret | undefined {
  const password = user.password;
  if (password === undefined || password === '') return undefined;
  const key = `${user.name}\0${password}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let secret: ScramSecret | undefined;
  switch (passwordKind(password)) {
    case 'scram-verifier':
      secret = parseScramVerifier(password);
      break;
    case 'plaintext':
      secret = secretFromPassword(password);
      break;
    case 'md5-hash':
      return undefined;
  }
  if (!secret) return undefined;
  if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as string);
  cache.set(key, secret);
  return secret;
}

/**
 * A doomed secret for a user that does not exist (or cannot do SCRAM). The salt is derived
 * from the name and a per-process nonce, so two attempts for the same unknown name see the
 * same salt, exactly like a real user — a fresh random salt each time would give the user away.
 * (PostgreSQL: scram_mock_salt in src/backend/libpq/auth-scram.c.)
 */
export function mockScramSecret(username: string): ScramSecret {
  const salt = createHash('sha256').update(username).update(mockNonce).digest().subarray(0, SCRAM_SALT_LEN);
  return {
    iterations: SCRAM_DEFAULT_ITERATIONS,
    salt,
    storedKey: Buffer.alloc(SCRAM_KEY_LEN),
    serverKey: Buffer.alloc(SCRAM_KEY_LEN),
  };
}

/**
 * Derive every SCRAM secret up front (call after loading users), so the first login of a
 * plaintext-configured user does not pay PBKDF2 — which would also tell it apart from an unknown user.
 */
export function warmScramSecrets(users: Iterable<UserEntry>): void {
  for (const u of users) if (u.method === 'scram-sha-256') scramSecretFor(u);
}
