/**
 * SCRAM-SHA-256 primitives shared by the proxy's server side (clients log in to us)
 * and its client side (we log in to a backend).
 * RFC 5802 §3 (algorithm), RFC 7677 (SHA-256), PostgreSQL's variant:
 * https://www.postgresql.org/docs/current/sasl-authentication.html
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** PostgreSQL's default `scram_iterations`, and its salt length (SCRAM_DEFAULT_SALT_LEN). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
export const SCRAM_SALT_LEN = 16;
/** Raw bytes of a server or client nonce before base64 (PostgreSQL's SCRAM_RAW_NONCE_LEN). */
export const SCRAM_RAW_NONCE_LEN = 18;
export const SCRAM_KEY_LEN = 32;

/** What a server needs to check a proof: the parts of a pg_authid SCRAM verifier. */
export interface ScramSecret {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function hmac(key: Buffer, data: string | Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** Constant-time equality that also tolerates different lengths (returns false, still in constant time for the longer one). */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

export function randomNonce(): string {
  return randomBytes(SCRAM_RAW_NONCE_LEN).toString('base64');
}

// RFC 3454 tables used by SASLprep (RFC 4013), limited to what changes bytes or forbids.
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g; // C.1.2 → U+0020
// eslint-disable-next-line no-misleading-character-class
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200C\u200D\u2060\uFE00-\uFE0F\uFEFF]/g; // B.1
// C.2.1/C.2.2 controls, C.3 private use, C.4 non-characters, C.5 surrogates, C.6-C.9.
const PROHIBITED =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u001F\u007F-\u009F\u0340\u0341\u06DD\u070F\u180E\u200E\u200F\u2028-\u202E\u2061-\u2063\u206A-\u206F\u2FF0-\u2FFB\uD800-\uDFFF\uE000-\uF8FF\uFDD0-\uFDEF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\u{F0000}-\u{10FFFF}]/u;

/**
 * SASLprep as PostgreSQL applies it to passwords (src/common/saslprep.c): pure ASCII is
 * used as is; otherwise map and NFKC-normalise; if the result holds a prohibited
 * character, PostgreSQL falls back to the raw password rather than rejecting it, so we do too.
 * Unassigned code points and the bidi rule are not checked (pg's own JS client skips them too).
 */
export function saslprep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7F]*$/.test(password)) return password;
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (prepared.length === 0 || PROHIBITED.test(prepared)) return password;
  return prepared;
}

/** Hi() of RFC 5802 is PBKDF2 with HMAC as the PRF and one output block. */
export function saltedPasswordSync(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(saslprep(password), salt, iterations, SCRAM_KEY_LEN, 'sha256');
}

/** The same on libuv's thread pool, so a new backend connection does not stall the event loop. */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    pbkdf2(saslprep(password), salt, iterations, SCRAM_KEY_LEN, 'sha256', (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export function secretFromSaltedPassword(salted: Buffer, salt: Buffer, iterations: number): ScramSecret {
  const clientKey = hmac(salted, 'Client Key');
  return { iterations, salt, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') };
}

export function secretFromPassword(
  password: string,
  salt: Buffer = randomBytes(SCRAM_SALT_LEN),
  iterations = SCRAM_DEFAULT_ITERATIONS,
): ScramSecret {
  return secretFromSaltedPassword(saltedPasswordSync(password, salt, iterations), salt, iterations);
}

const VERIFIER = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;

export function looksLikeScramVerifier(password: string): boolean {
  return password.startsWith('SCRAM-SHA-256$');
}

/**
 * Parse a pg_authid verifier `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`
 * (salt and keys base64; src/backend/libpq/auth-scram.c parse_scram_secret). Undefined if malformed.
 */
export function parseScramVerifier(verifier: string): ScramSecret | undefined {
  const m = VERIFIER.exec(verifier);
  if (!m) return undefined;
  const iterations = Number(m[1]);
  const salt = Buffer.from(m[2]!, 'base64');
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (!Number.isSafeInteger(iterations) || iterations < 1 || salt.length === 0) return undefined;
  if (storedKey.length !== SCRAM_KEY_LEN || serverKey.length !== SCRAM_KEY_LEN) return undefined;
  return { iterations, salt, storedKey, serverKey };
}

export function formatScramVerifier(s: ScramSecret): string {
  const b64 = (b: Buffer): string => b.toString('base64');
  return `SCRAM-SHA-256$${s.iterations}:${b64(s.salt)}$${b64(s.storedKey)}:${b64(s.serverKey)}`;
}

/** SCRAM printable: %x21-2B / %x2D-7E (any visible ASCII but ','). */
export function isScramPrintable(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

export function isBase64(s: string): boolean {
  return /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s);
}

/**
 * Split `a=1,b=2` into ordered attribute/value pairs. A value may itself hold '='
 * (base64 padding), never ','. Undefined when a part is not `<letter>=...`.
 */
export function splitAttributes(text: string): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  for (const part of text.split(',')) {
    if (!/^[A-Za-z]=/.test(part)) return undefined;
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}
