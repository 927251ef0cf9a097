/**
 * Login hardening (issue 17), against a real sidecar in-process and real clients:
 * - failed logins from one address are delayed and, past --login-failures-max, the address is refused (28000)
 *   even with the right password;
 * - no user enumeration: an unknown user, a SCRAM user and an md5-method user with a plaintext password all get
 *   the same AuthenticationSASL, and an unknown user's mock salt is the same on every attempt;
 * - --require-tls refuses plaintext with PostgreSQL's hostssl-only error; TLS 1.1 and CBC suites are not offered;
 * - a silent connection is closed after --login-timeout-ms with PostgreSQL's message;
 * - passwords and the admin token from files (--source-password-file, --admin-token-file), out of argv.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { psql, startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { loadStartConfig } from '../../src/config/load.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const dir = mkdtempSync(join(tmpdir(), 'pgc-harden-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore' });

const users = {
  PGCUTOVER_USERS: JSON.stringify({
    users: [
      { name: 'postgres', password: 'postgres' },
      { name: 'app_md5', password: 'md5-pass', method: 'md5' },
    ],
  }),
};

async function login(port: number, user: string, password: string): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'postgres' });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('select 1');
    return 'ok';
  } catch (e) {
    return (e as { code?: string }).code ?? (e as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

function startupMessage(user: string): Buffer {
  const body = Buffer.from(`user\0${user}\0database\0postgres\0\0`);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

/** Raw exchange: StartupMessage, then (for SASL) a client-first-message; returns the server's messages as text. */
function firstMessages(port: number, user: string): Promise<{ first: Buffer; serverFirst: string | null }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(startupMessage(user)));
    let got = Buffer.alloc(0);
    let first: Buffer | null = null;
    s.on('error', reject);
    s.on('data', (b) => {
      got = Buffer.concat([got, b]);
      while (got.length >= 5 && got.length >= 1 + got.readInt32BE(1)) {
        const len = 1 + got.readInt32BE(1);
        const msg = got.subarray(0, len);
        got = got.subarray(len);
        if (first === null) {
          first = Buffer.from(msg);
          if (msg[0] !== 0x52 || msg.readInt32BE(5) !== 10) return (s.destroy(), resolve({ first, serverFirst: null }));
          const data = Buffer.from('n,,n=,r=fixednonce');
          const mech = Buffer.from('SCRAM-SHA-256\0');
          const len2 = Buffer.alloc(4);
          len2.writeInt32BE(data.length);
          const body = Buffer.concat([mech, len2, data]);
          const head = Buffer.alloc(5);
          head.write('p', 0, 'latin1');
          head.writeInt32BE(body.length + 4, 1);
          s.write(Buffer.concat([head, body]));
        } else {
          s.destroy();
          return resolve({ first, serverFirst: msg.subarray(9).toString() });
        }
      }
    });
  });
}

t.test('failed logins are throttled per address, then the address is refused', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { loginFailuresMax: 5, loginBlockMs: 60_000, loginFailureDelayMs: 200 }, users);
  const port = p.listen.port;
  for (let i = 0; i < 5; i++) t.equal(await login(port, 'postgres', 'wrong'), '28P01', `failure ${i + 1}`);
  t.equal(await login(port, 'postgres', 'postgres'), '28000', 'blocked: even the right password is refused');
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'postgres', database: 'postgres' });
  await t.rejects(c.connect(), { code: '28000', message: /too many failed login attempts from this address/ });
  t.equal(p.proxy.throttle.blockedFor('127.0.0.1') > 0, true);
  t.equal(p.proxy.clientCount, 0, 'nothing left hanging');
});

t.test('no user enumeration: unknown, SCRAM and md5-method users get the same challenge; mock salts are stable', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), {}, users);
  const [unknown, scram, md5] = await Promise.all(['ghost', 'postgres', 'app_md5'].map((u) => firstMessages(p.listen.port, u)));
  t.same(unknown!.first, scram!.first, 'unknown user: same AuthenticationSASL as a SCRAM user');
  t.same(md5!.first, scram!.first, 'md5-method user: SCRAM too (its password is checkable with SCRAM)');
  const again = await firstMessages(p.listen.port, 'ghost');
  const salt = (m: string | null) => /,s=([^,]+),i=(\d+)/.exec(m ?? '')?.slice(1);
  t.same(salt(again.serverFirst), salt(unknown!.serverFirst), 'the same mock salt and iterations on every attempt');
  t.not(salt(unknown!.serverFirst)?.[0], salt((await firstMessages(p.listen.port, 'ghost2')).serverFirst)?.[0], 'another name, another salt');
  t.equal(await login(p.listen.port, 'app_md5', 'md5-pass'), 'ok', 'the md5-method user logs in (with SCRAM)');
});

t.test('--require-tls: plaintext refused as a hostssl-only pg_hba.conf does; TLS works', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { tlsCert: cert, tlsKey: key, requireTls: true }, users);
  const plain = await psql(`host=127.0.0.1 port=${p.listen.port} dbname=postgres user=postgres password=postgres sslmode=disable`, 'select 1');
  t.not(plain.code, 0);
  t.match(plain.stderr, 'no pg_hba.conf entry for host "127.0.0.1", user "postgres", database "postgres", no encryption');
  const secure = await psql(`host=127.0.0.1 port=${p.listen.port} dbname=postgres user=postgres password=postgres sslmode=require`, 'select 1');
  t.equal(secure.code, 0, secure.stderr);
  await t.rejects(startProxy(t, source.url(), target.url(), { requireTls: true }, users), /--require-tls needs --tls-cert/);
});

t.test('TLS: no TLS 1.1, no CBC suites for TLS 1.2; an AEAD suite with forward secrecy works', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { tlsCert: cert, tlsKey: key }, users);
  const handshake = (opts: tls.ConnectionOptions): Promise<string> =>
    new Promise((resolve) => {
      const s = net.connect(p.listen.port, '127.0.0.1', () => {
        const req = Buffer.alloc(8);
        req.writeInt32BE(8, 0);
        req.writeInt32BE(80877103, 4);
        s.write(req);
      });
      s.once('data', (b) => {
        if (b[0] !== 0x53) return resolve(`no S: ${b[0]}`);
        const secure = tls.connect({ socket: s, rejectUnauthorized: false, ...opts });
        secure.on('secureConnect', () => {
          const line = `${secure.getProtocol()} ${secure.getCipher().name}`;
          secure.destroy();
          resolve(line);
        });
        secure.on('error', (e) => resolve(`refused: ${e.message}`));
      });
      s.on('error', (e) => resolve(`refused: ${e.message}`));
    });
  t.match(await handshake({ minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }), /^refused/, 'TLS 1.1 refused');
  t.match(await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA:AES128-SHA:AES128-SHA256' }), /^refused/, 'CBC / non-ECDHE suites refused');
  t.match(await handshake({ maxVersion: 'TLSv1.2' }), /^TLSv1\.2 ECDHE-RSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/, 'TLS 1.2 uses ECDHE with AEAD');
  t.match(await handshake({}), /^TLSv1\.3 /, 'TLS 1.3 offered');
  const only13 = await startProxy(t, source.url(), target.url(), { tlsCert: cert, tlsKey: key, tlsMinVersion: 'TLSv1.3' }, users);
  const r = await psql(`host=127.0.0.1 port=${only13.listen.port} dbname=postgres user=postgres password=postgres sslmode=require ssl_max_protocol_version=TLSv1.2`, 'select 1');
  t.not(r.code, 0, '--tls-min-version TLSv1.3 refuses a TLS 1.2 client');
});

t.test('a silent connection is closed after --login-timeout-ms', async (t) => {
  const p = await startProxy(t, source.url(), target.url(), { loginTimeoutMs: 300 }, users);
  const got = await new Promise<string>((resolve) => {
    const s = net.connect(p.listen.port, '127.0.0.1');
    let b = Buffer.alloc(0);
    s.on('data', (d) => (b = Buffer.concat([b, d])));
    s.on('error', () => undefined);
    s.on('close', () => resolve(b.toString('latin1')));
  });
  t.match(got, /C08P01\0Mcanceling authentication due to timeout/);
});

t.test('passwords and the admin token from files, not argv', async (t) => {
  const pwFile = join(dir, 'source.pw');
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(pwFile, 'postgres\n');
  writeFileSync(tokenFile, 's3cret-token\n');
  const src = new URL(source.url());
  src.password = '';
  const cfg = loadStartConfig({ source: src.toString(), target: target.url(), sourcePasswordFile: pwFile, adminTokenFile: tokenFile }, {});
  t.ok(cfg.ok);
  if (!cfg.ok) return;
  t.equal(cfg.value.source.password, 'postgres', 'source password from its file');
  t.equal(cfg.value.control.source.password, 'postgres', 'the control login defaults to it too');
  t.equal(cfg.value.adminToken, 's3cret-token', 'admin token from its file');
  const env = loadStartConfig({}, { PGCUTOVER_SOURCE: src.toString(), PGCUTOVER_TARGET: target.url(), PGCUTOVER_SOURCE_PASSWORD_FILE: pwFile });
  t.equal(env.ok && env.value.source.password, 'postgres', 'the same through PGCUTOVER_* variables');
  const bad = loadStartConfig({ source: src.toString(), target: target.url(), adminTokenFile: join(dir, 'missing') }, {});
  t.match(bad.ok ? [] : bad.errors, [/--admin-token-file: ENOENT/]);
  // And it works end to end: the proxy logs in to the source with the password from the file.
  const p = await startProxy(t, src.toString(), target.url(), { sourcePasswordFile: pwFile });
  t.equal(await login(p.listen.port, 'postgres', 'postgres'), 'ok');
});

t.test('users file passwords by env: and file: reference', async (t) => {
  const f = join(dir, 'app.pw');
  writeFileSync(f, 'from-file\n');
  // env: references read the process environment (the sidecar's own).
  process.env.APP2_PW = 'from-env';
  t.teardown(() => void delete process.env.APP2_PW);
  const p = await startProxy(t, source.url(), target.url(), { backendLogin: 'url' }, {
    PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'app1', password: `file:${f}` }, { name: 'app2', password: 'env:APP2_PW' }] }),
  });
  t.equal(await login(p.listen.port, 'app1', 'from-file'), 'ok');
  t.equal(await login(p.listen.port, 'app2', 'from-env'), 'ok');
});
