/**
 * Client side of SCRAM-SHA-256, for the proxy logging in to a backend
 * (https://www.postgresql.org/docs/current/sasl-authentication.html). No channel binding:
 * the gs2 header is always `n,,` — `y` would tell a server that offers SCRAM-SHA-256-PLUS that
 * its offer was stripped, and PostgreSQL then rightly refuses the login. The user name is sent
 * empty, as libpq does; PostgreSQL uses the startup packet's.
 */
import { createHash } from 'node:crypto';
import { fail, ok, type Result } from './result.js';
import {
  hmac,
  isBase64,
  isScramPrintable,
  randomNonce,
  safeEqual,
  saltedPassword,
  sha256,
  splitAttributes,
  xor,
  type ScramSecret,
} from './scram-crypto.js';

/**
 * SCRAM pass-through (PgBouncer's scram.c does the same): the ClientKey recovered from a client's proof
 * plus the verifier it was checked against. Enough to log in to a backend that holds the same verifier
 * (same salt and iterations), without the password.
 */
export interface ScramPassThrough {
  clientKey: Buffer;
  secret: ScramSecret;
}

export const SCRAM_SECRET_MISMATCH =
  "the server has no such role, or holds another SCRAM secret for it (another salt or iteration count) than the one the client logged in with: create the role there with the verifier from the source's pg_authid (CREATE/ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...')";

/** Refuse absurd iteration counts from a server: each costs us CPU before we know it is genuine. */
export const SCRAM_MAX_ITERATIONS = 1_000_000;

type State =
  | { step: 'await-server-first' }
  | { step: 'await-server-final'; expectedServerSignature: Buffer }
  | { step: 'complete' }
  | { step: 'failed' };

export interface ScramClient {
  readonly mechanism: 'SCRAM-SHA-256';
  /** The SASLInitialResponse data. */
  readonly clientFirst: string;
  /** server-first-message → client-final-message. */
  onServerFirst(text: string): Promise<Result<string>>;
  /** server-final-message: checks the server's signature, proof that it knows the password too. */
  onServerFinal(text: string): Result<void>;
  /** True once the server's signature has been verified. */
  isComplete(): boolean;
}

/** SaltedPassword by (password, salt, iterations): each backend connection would otherwise pay PBKDF2 again. */
const MAX_CACHED = 1000;
const saltedCache = new Map<string, Buffer>();

async function cachedSaltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  const key = createHash('sha256').update(password).digest('base64') + salt.toString('base64') + ':' + iterations;
  const hit = saltedCache.get(key);
  if (hit) return hit;
  const salted = await saltedPassword(password, salt, iterations);
  if (saltedCache.size >= MAX_CACHED) saltedCache.delete(saltedCache.keys().next().value as string);
  saltedCache.set(key, salted);
  return salted;
}

/** `password`, or the keys of a client that logged in to the proxy (pass-through). */
export function createScramClient(password: string | ScramPassThrough): ScramClient {
  const clientNonce = randomNonce();
  const gs2Header = 'n,,';
  const clientFirstBare = `n=,r=${clientNonce}`;
  let state: State = { step: 'await-server-first' };

  async function onServerFirst(text: string): Promise<Result<string>> {
    if (state.step !== 'await-server-first') return fail('unexpected SCRAM server-first-message');
    state = { step: 'failed' };
    const attrs = splitAttributes(text);
    if (!attrs || attrs.length < 3) return fail('malformed SCRAM server-first-message');
    if (attrs[0]![0] === 'm') return fail('server requires a mandatory SCRAM extension');
    const [r, s, i] = attrs as [[string, string], [string, string], [string, string]];
    if (r[0] !== 'r' || s[0] !== 's' || i[0] !== 'i') return fail('malformed SCRAM server-first-message');
    const nonce = r[1];
    if (!nonce.startsWith(clientNonce) || nonce.length === clientNonce.length || !isScramPrintable(nonce)) {
      return fail('invalid SCRAM nonce from server');
    }
    if (s[1] === '' || !isBase64(s[1])) return fail('invalid SCRAM salt from server');
    if (!/^[1-9][0-9]*$/.test(i[1])) return fail('invalid SCRAM iteration count from server');
    const iterations = Number(i[1]);
    if (iterations > SCRAM_MAX_ITERATIONS) return fail(`SCRAM iteration count ${iterations} exceeds ${SCRAM_MAX_ITERATIONS}`);

    const salt = Buffer.from(s[1], 'base64');
    let clientKey: Buffer;
    let serverKey: Buffer;
    if (typeof password === 'string') {
      const salted = await cachedSaltedPassword(password, salt, iterations);
      clientKey = hmac(salted, 'Client Key');
      serverKey = hmac(salted, 'Server Key');
    } else {
      // The server's verifier must be the one the client proved itself against: another salt means
      // another secret (the role was created separately there), and our ClientKey would not match it.
      if (!salt.equals(password.secret.salt) || iterations !== password.secret.iterations) {
        return fail(SCRAM_SECRET_MISMATCH);
      }
      clientKey = password.clientKey;
      serverKey = password.secret.serverKey;
    }
    const withoutProof = `c=${Buffer.from(gs2Header).toString('base64')},r=${nonce}`;
    const authMessage = `${clientFirstBare},${text},${withoutProof}`;
    const proof = xor(clientKey, hmac(sha256(clientKey), authMessage));
    const expectedServerSignature = hmac(serverKey, authMessage);
    state = { step: 'await-server-final', expectedServerSignature };
    return ok(`${withoutProof},p=${proof.toString('base64')}`);
  }

  function onServerFinal(text: string): Result<void> {
    if (state.step !== 'await-server-final') return fail('unexpected SCRAM server-final-message');
    const expected = state.expectedServerSignature;
    state = { step: 'failed' };
    const attrs = splitAttributes(text);
    if (!attrs) return fail('malformed SCRAM server-final-message');
    const e = attrs.find(([k]) => k === 'e');
    if (e) return fail(`server reported SCRAM error "${e[1]}"`);
    const v = attrs[0]![0] === 'v' ? attrs[0]![1] : undefined;
    if (v === undefined || !isBase64(v)) return fail('malformed SCRAM server-final-message');
    if (!safeEqual(Buffer.from(v, 'base64'), expected)) return fail('SCRAM server signature does not match: the server does not know the password');
    state = { step: 'complete' };
    return ok(undefined);
  }

  return {
    mechanism: 'SCRAM-SHA-256',
    clientFirst: gs2Header + clientFirstBare,
    onServerFirst,
    onServerFinal,
    isComplete: () => state.step === 'complete',
  };
}
