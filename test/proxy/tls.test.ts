/**
 * TLS between clients and the proxy (--tls-cert/--tls-key): SSLRequest answered 'S' and a real TLS session
 * (psql sslmode=require and verify-full, node-postgres ssl), and without a certificate the proxy answers 'N':
 * sslmode=require fails cleanly, prefer falls back to plain TCP.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { psql, startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { int32, until, Wire } from './fixtures/wire.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const dir = mkdtempSync(join(tmpdir(), 'pgc-tls-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost', '-days', '1', '-keyout', key, '-out', cert], {
  stdio: 'ignore',
});

const tlsProxy = await startProxy(t, source.url(), target.url(), { tlsCert: cert, tlsKey: key });
const plainProxy = await startProxy(t, source.url(), target.url());

const conn = (port: number, extra: string) => `host=localhost port=${port} dbname=postgres user=postgres password=postgres ${extra}`;
const SSL_REQUEST = Buffer.concat([int32(8), int32(80877103)]);

t.test('psql sslmode=require gets a TLS session (\\conninfo says SSL)', async (t) => {
  const r = await psql(conn(tlsProxy.listen.port, 'sslmode=require'), '\\conninfo');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /SSL connection \(protocol: TLSv1\.[23], cipher: [\w-]+/);
  const q = await psql(conn(tlsProxy.listen.port, 'sslmode=require'), 'select 40 + 2');
  t.equal(q.stdout.trim(), '42', 'queries work over TLS');
});

t.test('psql sslmode=verify-full with the certificate as root', async (t) => {
  const r = await psql(conn(tlsProxy.listen.port, `sslmode=verify-full sslrootcert=${cert}`), '\\conninfo');
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /SSL connection/);
  const wrongHost = await psql(
    `host=127.0.0.1 port=${tlsProxy.listen.port} dbname=postgres user=postgres password=postgres sslmode=verify-full sslrootcert=${cert}`,
    'select 1',
  );
  t.not(wrongHost.code, 0, 'the certificate names localhost, not 127.0.0.1');
  t.match(wrongHost.stderr, /does not match host name|server certificate/);
});

t.test('node-postgres with ssl, SCRAM over TLS, and a large result', async (t) => {
  const c = new pg.Client({ host: 'localhost', port: tlsProxy.listen.port, user: 'postgres', password: 'postgres', database: 'postgres', ssl: { ca: readFileSync(cert) } });
  await c.connect();
  t.teardown(() => c.end());
  const r = await c.query("select count(*)::int as n, sum(length(repeat('z', i)))::int8 as s from generate_series(1, 3000) i");
  t.same(r.rows[0], { n: 3000, s: String((3000 * 3001) / 2) });
  const big = await c.query("select string_agg(md5(i::text), '') as s from generate_series(1, 20000) i");
  t.equal(big.rows[0].s.length, 640000);
});

t.test('psql without sslmode (prefer) uses TLS when offered, and plain sslmode=disable still works', async (t) => {
  const pref = await psql(conn(tlsProxy.listen.port, ''), '\\conninfo');
  t.match(pref.stdout, /SSL connection/);
  const dis = await psql(conn(tlsProxy.listen.port, 'sslmode=disable'), '\\conninfo');
  t.equal(dis.code, 0, dis.stderr);
  t.notMatch(dis.stdout, /SSL connection/);
});

t.test('without a certificate: require fails cleanly, prefer falls back to plain', async (t) => {
  const req = await psql(conn(plainProxy.listen.port, 'sslmode=require'), 'select 1');
  t.not(req.code, 0);
  t.match(req.stderr, /server does not support SSL, but SSL was required/);
  const pref = await psql(conn(plainProxy.listen.port, 'sslmode=prefer'), '\\conninfo');
  t.equal(pref.code, 0, pref.stderr);
  t.notMatch(pref.stdout, /SSL connection/);
  t.match(pref.stdout, /You are connected/);
  const c = new pg.Client({ connectionString: plainProxy.url(), ssl: { rejectUnauthorized: false } });
  await t.rejects(c.connect(), /does not support SSL/, 'node-postgres with ssl gets a clean refusal');
  t.ok(await until(() => plainProxy.proxy.clientCount === 0, 2_000), 'the refused connections are gone');
});

t.test('SSLRequest answered with exactly one byte; bytes after it (CVE-2021-23214 style) are refused', async (t) => {
  const plain = await Wire.connect(plainProxy.listen.port);
  plain.rawOnly();
  plain.send(SSL_REQUEST);
  await new Promise((r) => setTimeout(r, 200));
  t.equal(plain.raw.toString('latin1'), 'N');
  plain.destroy();

  const w = await Wire.connect(tlsProxy.listen.port);
  w.rawOnly();
  // SSLRequest and a plaintext StartupMessage in one write: a proxy that buffered them would be injectable.
  w.send(Buffer.concat([SSL_REQUEST, int32(9), int32(196608), Buffer.from([0])]));
  t.ok(await w.waitClosed(5_000), 'connection closed');
  t.notMatch(w.raw.toString('latin1'), /^S/, 'no TLS started');
});

t.test("GSSENCRequest is answered 'N' and the client may go on in plain text", async (t) => {
  const w = await Wire.connect(plainProxy.listen.port);
  t.teardown(() => w.destroy());
  w.rawOnly();
  w.send(Buffer.concat([int32(8), int32(80877104)]));
  t.ok(await until(() => w.raw.length >= 1, 2_000));
  t.equal(w.raw.toString('latin1', 0, 1), 'N');
  w.send(Buffer.concat([int32(8), int32(80877103)])); // then SSLRequest, as libpq does with gssencmode=prefer
  t.ok(await until(() => w.raw.length >= 2, 2_000));
  t.equal(w.raw.toString('latin1', 1, 2), 'N');
  const body = Buffer.from('user\0postgres\0database\0postgres\0\0');
  w.send(Buffer.concat([int32(body.length + 8), int32(196608), body]));
  t.ok(await until(() => w.raw.length >= 3, 2_000));
  t.equal(w.raw.toString('latin1', 2, 3), 'R', 'authentication request follows');
  const g = await psql(conn(tlsProxy.listen.port, 'gssencmode=prefer sslmode=require'), '\\conninfo');
  t.match(g.stdout, /SSL connection/, 'psql with gssencmode=prefer ends up on TLS');
});

t.test('a client that sends garbage instead of a TLS handshake is dropped, others carry on', async (t) => {
  const w = await Wire.connect(tlsProxy.listen.port);
  w.rawOnly();
  w.send(SSL_REQUEST);
  await new Promise((r) => setTimeout(r, 100));
  w.send(Buffer.from('this is not a TLS ClientHello at all\r\n'.repeat(10)));
  t.ok(await w.waitClosed(5_000), 'closed');
  const r = await psql(conn(tlsProxy.listen.port, 'sslmode=require'), 'select 1');
  t.equal(r.code, 0, r.stderr);
  t.ok(await until(() => tlsProxy.proxy.clientCount === 0, 2_000), 'nothing left in login');
});
