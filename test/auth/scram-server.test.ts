import t from 'tap';
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/demo/embedded.js';
import pg from 'pg';
import { createServerAuth, type AuthStep, type ServerAuth } from '../../src/auth/server.js';
import { createScramClient } from '../../src/auth/scram-client.js';
import {
  formatScramVerifier,
  parseScramVerifier,
  secretFromPassword,
} from '../../src/auth/scram-crypto.js';
import { md5ClientResponse, md5StoredHash } from '../../src/auth/md5.js';
import { warmScramSecrets } from '../../src/auth/scram-secrets.js';
import type { UserEntry } from '../../src/auth/users.js';

// node-postgres' own SCRAM client, an independent implementation to test our server against.
interface PgSaslSession { response: string; message: string }
const pgSasl = createRequire(import.meta.url)('pg/lib/crypto/sasl.js') as {
  startSession(mechanisms: string[], stream?: unknown): PgSaslSession;
  continueSession(s: PgSaslSession, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(s: PgSaslSession, serverData: string): void;
};

/** SASLInitialResponse body: mechanism\0, Int32 length, data. */
function saslInitial(mechanism: string, data: string | Buffer, lengthOverride?: number): Buffer {
  const d = Buffer.from(data);
  const len = Buffer.alloc(4);
  len.writeInt32BE(lengthOverride ?? d.length);
  return Buffer.concat([Buffer.from(mechanism + '\0'), len, d]);
}

function expectKind<K extends AuthStep['kind']>(step: AuthStep, kind: K): Extract<AuthStep, { kind: K }> {
  if (step.kind !== kind) throw new Error(`expected ${kind}, got ${JSON.stringify(step)}`);
  return step as Extract<AuthStep, { kind: K }>;
}

/** A whole login with pg's client; `stream` truthy makes it send gs2 flag 'y'. Returns the final step. */
async function pgClientLogin(auth: ServerAuth, password: string, stream?: unknown): Promise<{ step: AuthStep; session: PgSaslSession }> {
  const first = expectKind(auth.start(), 'send-sasl');
  const session = pgSasl.startSession(first.mechanisms, stream);
  const cont = auth.onPasswordMessage(saslInitial('SCRAM-SHA-256', session.response));
  if (cont.kind !== 'send-sasl-continue') return { step: cont, session };
  await pgSasl.continueSession(session, password, cont.data.toString(), stream);
  return { step: auth.onPasswordMessage(Buffer.from(session.response)), session };
}

const alice: UserEntry = { name: 'alice', method: 'scram-sha-256', password: 'secret-Ä pw' };
const bob: UserEntry = { name: 'bob', method: 'scram-sha-256', password: formatScramVerifier(secretFromPassword('bobpw')) };
warmScramSecrets([alice, bob]);

t.test('SCRAM with a plaintext-configured user, verified by node-postgres', async (t) => {
  const auth = createServerAuth(alice, 'alice');
  const { step, session } = await pgClientLogin(auth, 'secret-Ä pw');
  const ok = expectKind(step, 'ok');
  t.ok(ok.saslFinal, 'sends SASLFinal');
  t.doesNotThrow(() => pgSasl.finalizeSession(session, ok.saslFinal!.toString()), 'client accepts our server signature');
});

t.test('advertises only SCRAM-SHA-256 (no channel binding)', async (t) => {
  t.same(createServerAuth(alice, 'alice').start(), { kind: 'send-sasl', mechanisms: ['SCRAM-SHA-256'] });
});

t.test('gs2 flag y (client supports binding, sees none offered) is accepted', async (t) => {
  const { step } = await pgClientLogin(createServerAuth(alice, 'alice'), 'secret-Ä pw', {});
  t.equal(step.kind, 'ok');
});

t.test('SCRAM with a stored verifier', async (t) => {
  const { step, session } = await pgClientLogin(createServerAuth(bob, 'bob'), 'bobpw');
  const ok = expectKind(step, 'ok');
  t.doesNotThrow(() => pgSasl.finalizeSession(session, ok.saslFinal!.toString()));
});

t.test('our own client against our own server, including the server-signature check', async (t) => {
  const auth = createServerAuth(bob, 'bob');
  expectKind(auth.start(), 'send-sasl');
  const client = createScramClient('bobpw');
  const cont = expectKind(auth.onPasswordMessage(saslInitial('SCRAM-SHA-256', client.clientFirst)), 'send-sasl-continue');
  const final = await client.onServerFirst(cont.data.toString());
  if (!final.ok) throw new Error(final.errors.join());
  const ok = expectKind(auth.onPasswordMessage(Buffer.from(final.value)), 'ok');
  t.ok(client.onServerFinal(ok.saslFinal!.toString()).ok);
  t.ok(client.isComplete());

  // A server that does not know the password cannot forge the signature.
  const auth2 = createServerAuth(bob, 'bob');
  auth2.start();
  const c2 = createScramClient('bobpw');
  const cont2 = expectKind(auth2.onPasswordMessage(saslInitial('SCRAM-SHA-256', c2.clientFirst)), 'send-sasl-continue');
  await c2.onServerFirst(cont2.data.toString());
  const forged = c2.onServerFinal('v=' + Buffer.alloc(32, 7).toString('base64'));
  t.notOk(forged.ok);
  t.match(forged.ok ? '' : forged.errors[0], /server signature does not match/);
  t.notOk(c2.isComplete());
});

t.test('wrong password fails with 28P01 like PostgreSQL', async (t) => {
  const { step } = await pgClientLogin(createServerAuth(alice, 'alice'), 'nope');
  t.same(step, { kind: 'fail', sqlstate: '28P01', message: 'password authentication failed for user "alice"' });
});

t.test('unknown user: full exchange, stable salt per name, same failure as a wrong password', async (t) => {
  const { step } = await pgClientLogin(createServerAuth(undefined, 'mallory'), 'whatever');
  t.same(step, { kind: 'fail', sqlstate: '28P01', message: 'password authentication failed for user "mallory"' });

  const saltOf = (name: string): string => {
    const auth = createServerAuth(undefined, name);
    auth.start();
    const c = expectKind(auth.onPasswordMessage(saslInitial('SCRAM-SHA-256', 'n,,n=,r=abcdef')), 'send-sasl-continue');
    const m = /^r=abcdef[^,]+,s=([^,]+),i=(\d+)$/.exec(c.data.toString());
    if (!m) throw new Error('bad server-first ' + c.data.toString());
    t.equal(m[2], '4096', 'default iteration count, like a real user');
    return m[1]!;
  };
  t.equal(saltOf('mallory'), saltOf('mallory'), 'same salt on every attempt for one name');
  t.not(saltOf('mallory'), saltOf('trudy'));
});

t.test('a user that cannot do SCRAM is doomed like an unknown one', async (t) => {
  const noPw: UserEntry = { name: 'carol', method: 'scram-sha-256' };
  const { step } = await pgClientLogin(createServerAuth(noPw, 'carol'), 'x');
  t.same(step, { kind: 'fail', sqlstate: '28P01', message: 'password authentication failed for user "carol"' });
});

t.test('malformed SASL messages are protocol violations (08P01)', async (t) => {
  const firstCases: Array<[string, Buffer]> = [
    ['channel binding required (p=)', saslInitial('SCRAM-SHA-256', 'p=tls-server-end-point,,n=,r=abc')],
    ['unknown gs2 flag', saslInitial('SCRAM-SHA-256', 'x,,n=,r=abc')],
    ['authzid', saslInitial('SCRAM-SHA-256', 'n,a=bob,n=,r=abc')],
    ['mandatory extension', saslInitial('SCRAM-SHA-256', 'n,,m=ext,n=,r=abc')],
    ['missing nonce', saslInitial('SCRAM-SHA-256', 'n,,n=')],
    ['empty data', saslInitial('SCRAM-SHA-256', '')],
    ['wrong mechanism', saslInitial('SCRAM-SHA-256-PLUS', 'n,,n=,r=abc')],
    ['length mismatch', saslInitial('SCRAM-SHA-256', 'n,,n=,r=abc', 99)],
    ['no mechanism terminator', Buffer.from('SCRAM-SHA-256')],
  ];
  for (const [name, payload] of firstCases) {
    const auth = createServerAuth(alice, 'alice');
    auth.start();
    const step = auth.onPasswordMessage(payload);
    t.equal(step.kind === 'fail' && step.sqlstate, '08P01', name);
  }

  const finalCases: Array<[string, (nonce: string) => string]> = [
    ['wrong nonce', () => 'c=biws,r=abcXYZ,p=' + Buffer.alloc(32).toString('base64')],
    ['wrong channel binding', (n) => `c=eSws,r=${n},p=` + Buffer.alloc(32).toString('base64')],
    ['short proof', (n) => `c=biws,r=${n},p=AAAA`],
    ['proof not last', (n) => `c=biws,r=${n},p=${Buffer.alloc(32).toString('base64')},x=1`],
    ['garbage', () => 'hello'],
  ];
  for (const [name, final] of finalCases) {
    const auth = createServerAuth(alice, 'alice');
    auth.start();
    const cont = expectKind(auth.onPasswordMessage(saslInitial('SCRAM-SHA-256', 'n,,n=,r=abc')), 'send-sasl-continue');
    const nonce = /^r=([^,]+)/.exec(cont.data.toString())![1]!;
    const step = auth.onPasswordMessage(Buffer.from(final(nonce)));
    t.equal(step.kind === 'fail' && step.sqlstate, '08P01', name);
  }
});

t.test('messages out of order are protocol violations', async (t) => {
  const early = createServerAuth(alice, 'alice').onPasswordMessage(Buffer.from('x'));
  t.equal(early.kind === 'fail' && early.sqlstate, '08P01');
  const auth = createServerAuth({ name: 'u', method: 'trust' }, 'u');
  auth.start();
  const late = auth.onPasswordMessage(Buffer.from('x\0'));
  t.equal(late.kind === 'fail' && late.sqlstate, '08P01');
  t.equal(auth.start().kind, 'fail', 'start twice');
});

t.test('md5: a stored hash gets the md5 challenge; wrong password; bad packet', async (t) => {
  const hash = md5StoredHash('davepw', 'dave');
  const auth = createServerAuth({ name: 'dave', method: 'md5', password: hash }, 'dave');
  const { salt } = expectKind(auth.start(), 'send-md5');
  t.equal(salt.length, 4);
  t.same(auth.onPasswordMessage(Buffer.from(md5ClientResponse('davepw', 'dave', salt) + '\0')), { kind: 'ok' });
  const bad = createServerAuth({ name: 'dave', method: 'md5', password: hash }, 'dave');
  const { salt: s2 } = expectKind(bad.start(), 'send-md5');
  t.same(bad.onPasswordMessage(Buffer.from(md5ClientResponse('wrong', 'dave', s2) + '\0')), {
    kind: 'fail',
    sqlstate: '28P01',
    message: 'password authentication failed for user "dave"',
  });
  const unterminated = createServerAuth({ name: 'dave', method: 'md5', password: hash }, 'dave');
  unterminated.start();
  const step = unterminated.onPasswordMessage(Buffer.from('md5abc'));
  t.equal(step.kind === 'fail' && step.sqlstate, '08P01');
});

t.test('md5 method with a plaintext password is asked with SCRAM, like unknown users (no enumeration by method)', async (t) => {
  const known = createServerAuth({ name: 'dave', method: 'md5', password: 'davepw' }, 'dave').start();
  const unknown = createServerAuth(undefined, 'nobody').start();
  t.same(known, { kind: 'send-sasl', mechanisms: ['SCRAM-SHA-256'] });
  t.same(unknown, known);
});

t.test('trust logs in at once', async (t) => {
  t.same(createServerAuth({ name: 'eve', method: 'trust' }, 'eve').start(), { kind: 'ok' });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

t.test('verifiers produced by real PostgreSQL 15', async (t) => {
  const server = await startEmbeddedPostgres({ major: 15, password: 'password' });
  t.teardown(() => server.stop());
  const port = server.port;
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'password', database: 'postgres' });
  await client.connect();
  t.teardown(() => client.end());
  // 'ｐａｓｓ' is full-width: SASLprep (NFKC) turns it into 'pass' on both sides.
  const cases = [
    { role: 'x', password: 'p' },
    { role: 'uni', password: 'ｐａｓｓ wörd\u00A0!' },
  ];
  await client.query(`SET password_encryption = 'scram-sha-256'`);
  for (const c of cases) {
    await client.query(`CREATE ROLE ${c.role} LOGIN PASSWORD '${c.password}'`);
    const { rows } = await client.query<{ rolpassword: string }>('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [c.role]);
    const verifier = rows[0]!.rolpassword;
    t.match(verifier, /^SCRAM-SHA-256\$4096:/);
    const parsed = parseScramVerifier(verifier);
    t.ok(parsed, 'parses');
    const ours = secretFromPassword(c.password, parsed!.salt, parsed!.iterations);
    t.equal(formatScramVerifier(ours), verifier, `${c.role}: byte-identical verifier from the same salt`);
    const user: UserEntry = { name: c.role, method: 'scram-sha-256', password: verifier };
    t.equal((await pgClientLogin(createServerAuth(user, c.role), c.password)).step.kind, 'ok', `${c.role}: right password`);
    const wrong = (await pgClientLogin(createServerAuth(user, c.role), c.password + 'x')).step;
    t.equal(wrong.kind === 'fail' && wrong.sqlstate, '28P01', `${c.role}: wrong password`);
  }
  await client.query(`SET password_encryption = 'md5'`);
  await client.query(`CREATE ROLE m LOGIN PASSWORD 'p'`);
  const { rows } = await client.query<{ rolpassword: string }>(`SELECT rolpassword FROM pg_authid WHERE rolname = 'm'`);
  t.equal(rows[0]!.rolpassword, md5StoredHash('p', 'm'), 'md5 hash matches pg_authid');
});
