/**
 * MD5 password authentication as PostgreSQL does it
 * (https://www.postgresql.org/docs/current/auth-password.html, protocol-flow.html#PROTOCOL-FLOW-START-UP):
 * the stored hash is `md5` + md5hex(password + username); on the wire the client sends
 * `md5` + md5hex(md5hex(password + username) + salt) for a 4-byte random salt.
 */
import { createHash } from 'node:crypto';

const MD5_HASH = /^md5[0-9a-f]{32}$/;

export function md5Hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

export function looksLikeMd5Hash(password: string): boolean {
  return MD5_HASH.test(password);
}

/** The pg_authid form: `md5` + md5hex(password + username). */
export function md5StoredHash(password: string, username: string): string {
  return 'md5' + md5Hex(password + username);
}

/** The PasswordMessage content answering AuthenticationMD5Password, from a stored hash (`md5...`). */
export function md5SaltedResponse(storedHash: string, salt: Buffer): string {
  return 'md5' + md5Hex(Buffer.concat([Buffer.from(storedHash.slice(3), 'latin1'), salt]));
}

/** Client side: the PasswordMessage content from the plaintext password. */
export function md5ClientResponse(password: string, username: string, salt: Buffer): string {
  return md5SaltedResponse(md5StoredHash(password, username), salt);
}
