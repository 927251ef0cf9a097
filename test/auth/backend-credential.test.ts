/** Which role and credential a client's backend logins use (pure): --backend-login modes, pass-through, md5 hash, backendPassword, auth-query rows. */
import t from 'tap';
import { backendLoginFor, credentialFromLogin } from '../../src/auth/backend-credential.js';
import { entryFromSecret } from '../../src/auth/auth-query.js';
import { formatScramVerifier, secretFromPassword } from '../../src/auth/scram-crypto.js';
import { md5StoredHash } from '../../src/auth/md5.js';
import type { UserEntry } from '../../src/auth/users.js';

const secret = secretFromPassword('pw');
const verifier = formatScramVerifier(secret);
const keys = { clientKey: Buffer.alloc(32, 1), secret };
const url = { user: 'postgres' };

t.test('credentialFromLogin: what the client login leaves', async (t) => {
  t.same(credentialFromLogin({ name: 'a', method: 'scram-sha-256', password: verifier }, keys), { kind: 'scram-keys', ...keys });
  t.same(credentialFromLogin({ name: 'a', method: 'scram-sha-256', password: 'plain' }, keys), { kind: 'password', password: 'plain' });
  t.same(credentialFromLogin({ name: 'a', method: 'md5', password: md5StoredHash('pw', 'a') }, undefined), { kind: 'md5-hash', hash: md5StoredHash('pw', 'a') });
  t.same(credentialFromLogin({ name: 'a', method: 'trust' }, undefined), { kind: 'none' });
});

t.test('backendLoginFor: modes', async (t) => {
  const fromDb: UserEntry = { name: 'alice', method: 'scram-sha-256', password: verifier };
  const proxyOnly: UserEntry = { name: 'app', method: 'scram-sha-256', password: 'plain' };
  const cred = credentialFromLogin(fromDb, keys);
  t.same(backendLoginFor('auto', fromDb, cred, url), { user: 'alice', credential: cred }, 'auto: a pg_authid verifier logs in as itself');
  t.equal(backendLoginFor('auto', proxyOnly, { kind: 'password', password: 'plain' }, url), null, 'auto: a plaintext-only user uses the URL role');
  t.same(backendLoginFor('client', proxyOnly, { kind: 'password', password: 'plain' }, url), { user: 'app', credential: { kind: 'password', password: 'plain' } });
  t.equal(backendLoginFor('url', fromDb, cred, url), null);
  t.equal(backendLoginFor('client', { name: 'postgres', method: 'trust' }, { kind: 'none' }, url), null, 'the URL user keeps the URL credentials');
  t.same(backendLoginFor('auto', { ...proxyOnly, backendPassword: 'bp' }, { kind: 'password', password: 'plain' }, url), { user: 'app', credential: { kind: 'password', password: 'bp' } }, 'backendPassword wins');
  t.same(backendLoginFor('auto', { name: 'x', method: 'md5', password: 'md5' + '0'.repeat(32), fromDatabase: true }, { kind: 'md5-hash', hash: 'md5' + '0'.repeat(32) }, url)?.user, 'x');
});

t.test('entryFromSecret: auth-query rows', async (t) => {
  t.same(entryFromSecret('a', verifier), { name: 'a', method: 'scram-sha-256', password: verifier, fromDatabase: true });
  t.same(entryFromSecret('b', md5StoredHash('pw', 'b')), { name: 'b', method: 'md5', password: md5StoredHash('pw', 'b'), fromDatabase: true });
  t.equal(entryFromSecret('c', null), undefined, 'no password: no such login');
  t.equal(entryFromSecret('d', 'plaintext?'), undefined, 'not a pg_authid secret');
  t.equal(entryFromSecret('e', 'SCRAM-SHA-256$broken'), undefined);
});
