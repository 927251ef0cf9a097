import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { startEmbeddedPostgres } from '../../src/demo/embedded.js';
import pg from 'pg';
import { serialize } from 'pg-protocol/dist/serializer';
import type { BackendMessage, DatabaseError, DataRowMessage } from 'pg-protocol/dist/messages';
import { Parser } from 'pg-protocol/dist/parser';
import { connectBackend, sendCancelRequest, type BackendReady } from '../../src/net/backend-connect.js';
import { parseDatabaseUrl, redactUrl, type BackendTarget } from '../../src/net/database-url.js';
import { createServerAuth } from '../../src/auth/server.js';

interface Teardown { teardown(fn: () => unknown): void }

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

/** A TCP server on a random port whose teardown also destroys its open connections. */
async function listen(tt: Teardown, onConn: (s: net.Socket) => void): Promise<number> {
  const open = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    open.add(s);
    s.on('close', () => open.delete(s));
    s.on('error', () => undefined);
    onConn(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  tt.teardown(() => {
    for (const s of open) s.destroy();
    return new Promise<void>((r) => srv.close(() => r()));
  });
  return (srv.address() as net.AddressInfo).port;
}

interface Pg { port: number; dir: string; admin: pg.Client }

/** A real PostgreSQL on a random port; `configure` may edit pg_hba.conf, certificates etc. (reloaded after). */
async function startPg(
  tt: Teardown,
  major: 14 | 15,
  opts: {
    authMethod: 'scram-sha-256' | 'md5' | 'password';
    configure?: (dataDir: string, dir: string, admin: pg.Client) => Promise<void>;
  },
): Promise<Pg> {
  const dir = mkdtempSync(join(tmpdir(), 'pgc-bc-'));
  chmodSync(dir, 0o755);
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startEmbeddedPostgres({ major, authMethod: opts.authMethod, password: 'password' });
  tt.teardown(() => server.stop());
  const admin = new pg.Client({ host: '127.0.0.1', port: server.port, user: 'postgres', password: 'password', database: 'postgres' });
  await admin.connect();
  tt.teardown(() => admin.end());
  if (opts.configure) {
    await opts.configure(server.dataDir, dir, admin);
    await admin.query('select pg_reload_conf()');
    await new Promise((r) => setTimeout(r, 300));
  }
  return { port: server.port, dir, admin };
}

function target(port: number, over: Partial<BackendTarget> = {}): BackendTarget {
  return { role: 'source', host: '127.0.0.1', port, user: 'postgres', password: 'password', database: 'postgres', tls: 'disable', connectTimeoutMs: 5000, ...over };
}

/** Run one simple-protocol query on a ready backend socket; the text values of each row, or the error. */
function query(b: BackendReady, sql: string): Promise<{ rows: Array<Array<string | null>>; error?: DatabaseError }> {
  return new Promise((resolve) => {
    const parser = new Parser();
    const rows: Array<Array<string | null>> = [];
    let error: DatabaseError | undefined;
    const onMsg = (m: BackendMessage): void => {
      if (m.name === 'dataRow') rows.push((m as DataRowMessage).fields as Array<string | null>);
      else if (m.name === 'error') error = m as DatabaseError;
      else if (m.name === 'readyForQuery') {
        b.socket.removeListener('data', onData);
        b.socket.pause();
        resolve(error ? { rows, error } : { rows });
      }
    };
    const onData = (c: Buffer): void => parser.parse(c, onMsg);
    if (b.leftover.length > 0) parser.parse(b.leftover, onMsg);
    b.socket.on('data', onData);
    b.socket.resume();
    b.socket.write(serialize.query(sql));
  });
}

function mustConnect(r: Awaited<ReturnType<typeof connectBackend>>, tt: Teardown): BackendReady {
  if (!r.ok) throw new Error(`connect failed: ${r.error.sqlstate} ${r.error.message}`);
  tt.teardown(() => r.value.socket.destroy());
  return r.value;
}

// Both servers start at once: startup dominates this file's run time.
let haveOpenssl = true;
try {
  execFileSync('openssl', ['version'], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}
const [pg14, pg15] = await Promise.all([
  startPg(t, 14, { authMethod: 'scram-sha-256' }),
  startPg(t, 15, {
    authMethod: 'md5',
    configure: async (dataDir, dir, admin) => {
      const hba = join(dataDir, 'pg_hba.conf');
      const lines = ['host all trusty 127.0.0.1/32 trust', 'host all plain 127.0.0.1/32 password'];
      writeFileSync(hba, lines.join('\n') + '\n' + readFileSync(hba, 'utf8'));
      if (!haveOpenssl) return;
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', `${dir}/server.key`, '-out', `${dir}/server.crt`], { stdio: 'ignore' });
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(`${dir}/server.key`, uid, gid);
      chmodSync(`${dir}/server.key`, 0o600);
      chownSync(`${dir}/server.crt`, uid, gid);
      // SSL settings take effect on reload (PostgreSQL 10+).
      await admin.query(`ALTER SYSTEM SET ssl_cert_file = '${dir}/server.crt'`);
      await admin.query(`ALTER SYSTEM SET ssl_key_file = '${dir}/server.key'`);
      await admin.query('ALTER SYSTEM SET ssl = on');
    },
  }),
]);
await pg15.admin.query(`SET password_encryption = 'md5'`);
await pg15.admin.query(`CREATE ROLE m LOGIN PASSWORD 'mpw'`);
await pg15.admin.query(`CREATE ROLE trusty LOGIN`);
await pg15.admin.query(`CREATE ROLE plain LOGIN PASSWORD 'ppw'`);
await pg15.admin.query(`SET password_encryption = 'scram-sha-256'`);
await pg15.admin.query(`CREATE ROLE s LOGIN PASSWORD 'spw'`);
const t15 = (over: Partial<BackendTarget>): BackendTarget => target(pg15.port, { role: 'target', ...over });

t.test('PostgreSQL 14 with scram-sha-256', async (t) => {
  t.test('logs in, reports pid/secret/params, and the socket runs queries', async (t) => {
    const params = { application_name: 'pgc-test', client_encoding: 'LATIN1', DateStyle: 'ISO, DMY', options: '-c work_mem=5MB' };
    const b = mustConnect(await connectBackend(target(pg14.port), params), t);
    t.ok(b.pid > 0);
    t.not(b.secret, 0);
    t.equal(b.params.get('application_name'), 'pgc-test');
    t.equal(b.params.get('client_encoding'), 'LATIN1', "client's encoding is not overridden");
    t.equal(b.params.get('DateStyle'), 'ISO, DMY');
    t.match(b.params.get('server_version'), /^14\./);
    t.equal(b.leftover.length, 0);
    t.equal(b.socket.listenerCount('data'), 0, 'no listeners of ours left');
    t.equal(b.socket.isPaused(), true);
    // The raw ParameterStatus frames replay to exactly the params map.
    const replayed = new Map<string, string>();
    new Parser().parse(b.parameterStatus, (m) => {
      const p = m as unknown as { name: string; parameterName: string; parameterValue: string };
      t.equal(p.name, 'parameterStatus');
      replayed.set(p.parameterName, p.parameterValue);
    });
    t.same(replayed, b.params);
    const r = await query(b, `SELECT 1, pg_backend_pid(), current_setting('work_mem')`);
    t.same(r.rows, [['1', String(b.pid), '5MB']]);
  });

  t.test('the client may pick the database', async (t) => {
    const b = mustConnect(await connectBackend(target(pg14.port), { database: 'template1' }), t);
    t.same((await query(b, 'SELECT current_database()')).rows, [['template1']]);
  });

  t.test('wrong password → 28P01 with the server message, prefixed', async (t) => {
    const r = await connectBackend(target(pg14.port, { password: 'wrong' }), {});
    t.same(r, { ok: false, error: { sqlstate: '28P01', message: 'source backend: password authentication failed for user "postgres"' } });
  });

  t.test('missing password → 28P01 without asking the server twice', async (t) => {
    const r = await connectBackend(target(pg14.port, { password: undefined, role: 'target' }), {});
    t.equal(r.ok ? '' : r.error.sqlstate, '28P01');
    t.match(r.ok ? '' : r.error.message, /^target backend: server asked for a SCRAM-SHA-256 password but the proxy holds no credential/);
  });

  t.test('unknown database → its SQLSTATE passes through', async (t) => {
    const r = await connectBackend(target(pg14.port), { database: 'nope' });
    t.equal(r.ok ? '' : r.error.sqlstate, '3D000');
    t.match(r.ok ? '' : r.error.message, /^source backend: database "nope" does not exist/);
  });

  t.test('TLS required but the server has none → 08001; prefer falls back to plain', async (t) => {
    const r = await connectBackend(target(pg14.port, { tls: 'require' }), {});
    t.equal(r.ok ? '' : r.error.sqlstate, '08001');
    t.match(r.ok ? '' : r.error.message, /source backend 127\.0\.0\.1:\d+: server does not support SSL/);
    const b = mustConnect(await connectBackend(target(pg14.port, { tls: 'prefer' }), {}), t);
    t.notOk(b.socket instanceof tls.TLSSocket);
  });

  t.test('cancel request stops a running query with 57014', async (t) => {
    const b = mustConnect(await connectBackend(target(pg14.port), {}), t);
    // pg_sleep ends without an error on its own: 57014 can only come from the cancel.
    const running = query(b, 'SELECT pg_sleep(10)');
    await new Promise((r) => setTimeout(r, 200));
    await sendCancelRequest(target(pg14.port), b.pid, b.secret);
    const r = await running;
    t.equal(r.error?.code, '57014');
  });
});

t.test('PostgreSQL 15 with md5, cleartext, trust and TLS', async (t) => {

  t.test('md5 role logs in; wrong md5 password → 28P01', async (t) => {
    const b = mustConnect(await connectBackend(t15({ user: 'm', password: 'mpw' }), {}), t);
    t.same((await query(b, 'SELECT current_user')).rows, [['m']]);
    const r = await connectBackend(t15({ user: 'm', password: 'bad' }), {});
    t.equal(r.ok ? '' : r.error.sqlstate, '28P01');
    t.match(r.ok ? '' : r.error.message, /^target backend: password authentication failed for user "m"/);
  });

  t.test('trust role needs no password; cleartext-password role', async (t) => {
    const b = mustConnect(await connectBackend(t15({ user: 'trusty', password: undefined }), {}), t);
    t.same((await query(b, 'SELECT 1')).rows, [['1']]);
    const c = mustConnect(await connectBackend(t15({ user: 'plain', password: 'ppw' }), {}), t);
    t.same((await query(c, 'SELECT current_user')).rows, [['plain']]);
  });

  t.test('TLS: require, SCRAM over TLS (PLUS offered, not taken), verify-full with the CA', { skip: !haveOpenssl && 'openssl not installed' }, async (t) => {
    const b = mustConnect(await connectBackend(t15({ user: 's', password: 'spw', tls: 'require' }), {}), t);
    t.ok(b.socket instanceof tls.TLSSocket, 'socket is TLS');
    t.same((await query(b, 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows, [['t']]);
    const ca = `${pg15.dir}/server.crt`;
    const v = mustConnect(await connectBackend(t15({ user: 's', password: 'spw', tls: 'require', tlsVerify: 'verify-full', tlsRootCertPath: ca }), {}), t);
    t.same((await query(v, 'SELECT 1')).rows, [['1']]);
    const untrusted = await connectBackend(t15({ user: 's', password: 'spw', tls: 'require', tlsVerify: 'verify-full' }), {});
    t.equal(untrusted.ok ? '' : untrusted.error.sqlstate, '08001', 'self-signed without its CA is refused');
  });
});

t.test('unreachable, silent and broken backends', async (t) => {
  t.test('closed port → 08001 naming the backend', async (t) => {
    const port = await freePort();
    const r = await connectBackend(target(port), {});
    t.equal(r.ok ? '' : r.error.sqlstate, '08001');
    t.match(r.ok ? '' : r.error.message, new RegExp(`^could not connect to source backend 127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
  });

  const silentPort = await listen(t, () => undefined);

  t.test('a server that never answers → 08001 timeout', async (t) => {
    const r = await connectBackend(target(silentPort, { connectTimeoutMs: 200 }), {});
    t.equal(r.ok ? '' : r.error.sqlstate, '08001');
    t.match(r.ok ? '' : r.error.message, /timeout after 200 ms/);
  });

  t.test('abort signal ends the attempt', async (t) => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const r = await connectBackend(target(silentPort), {}, { signal: ac.signal });
    t.match(r.ok ? '' : r.error.message, /aborted/);
  });

  t.test('not PostgreSQL → 08001, no hang', async (t) => {
    const port = await listen(t, (s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const r = await connectBackend(target(port), {});
    t.equal(r.ok ? '' : r.error.sqlstate, '08001');
  });

  t.test('cancel to an unreachable backend resolves quietly', async (t) => {
    await sendCancelRequest(target(await freePort()), 1, 2);
    t.pass();
  });
});

/** Backend-side frame: type byte, Int32 length, body. */
function frame(type: string, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([h, body]);
}
const int32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };
const authMsg = (code: number, rest: Buffer = Buffer.alloc(0)): Buffer => frame('R', Buffer.concat([int32(code), rest]));
const ready = frame('Z', Buffer.from('I'));

/** A scripted backend on a random port; `script` gets each chunk from the client after the startup packet. */
async function fakeBackend(tt: Teardown, script: (sock: net.Socket, chunk: Buffer, n: number) => void): Promise<number> {
  return listen(tt, (sock) => {
    let n = 0;
    sock.on('data', (c) => script(sock, c, n++));
  });
}

t.test('bytes after ReadyForQuery are handed over as leftover', async (t) => {
  const notice = frame('N', Buffer.from('SNOTICE\0Mhello\0\0'));
  const port = await fakeBackend(t, (sock) => {
    sock.write(Buffer.concat([authMsg(0), frame('S', Buffer.from('server_version\x0015.0\0')), frame('K', Buffer.concat([int32(42), int32(-7)])), ready, notice]));
  });
  const b = mustConnect(await connectBackend(target(port, { password: undefined }), {}), t);
  t.equal(b.pid, 42);
  t.equal(b.secret, -7);
  t.same(b.leftover, notice);
});

t.test('a server that skips SCRAM server-final is refused', async (t) => {
  // Drives our own server-side SCRAM, but answers AuthenticationOk without SASLFinal.
  const auth = createServerAuth({ name: 'postgres', method: 'scram-sha-256', password: 'password' }, 'postgres');
  const port = await fakeBackend(t, (sock, chunk, n) => {
    if (n === 0) {
      auth.start();
      sock.write(authMsg(10, Buffer.from('SCRAM-SHA-256\0\0')));
      return;
    }
    const step = auth.onPasswordMessage(chunk.subarray(5));
    if (step.kind === 'send-sasl-continue') sock.write(authMsg(11, step.data));
    else if (step.kind === 'ok') sock.write(Buffer.concat([authMsg(0), ready]));
  });
  const r = await connectBackend(target(port), {});
  t.equal(r.ok ? '' : r.error.sqlstate, '08001');
  t.match(r.ok ? '' : r.error.message, /before completing SCRAM/);
});

t.test('database URLs', async (t) => {
  const r = parseDatabaseUrl('postgresql://app%40corp:p%40ss%2Fw@db.example.com/my%20db?sslmode=require&connect_timeout=3', 'target');
  t.same(r, { ok: true, value: { role: 'target', host: 'db.example.com', port: 5432, user: 'app@corp', password: 'p@ss/w', database: 'my db', tls: 'require', connectTimeoutMs: 3000 } });
  const v6 = parseDatabaseUrl('postgres://u@[::1]:6543', 'source');
  t.same(v6.ok && [v6.value.host, v6.value.port, v6.value.database, v6.value.tls, v6.value.password], ['::1', 6543, 'u', 'prefer', undefined]);
  const full = parseDatabaseUrl('postgres://u:p@h/d?sslmode=verify-full&sslrootcert=/ca.pem', 'source');
  t.same(full.ok && [full.value.tls, full.value.tlsVerify, full.value.tlsRootCertPath], ['require', 'verify-full', '/ca.pem']);
  const bad: Array<[string, RegExp]> = [
    ['mysql://u@h/d', /must start with postgres:\/\//],
    ['not a url', /not a valid URL/],
    ['postgres://h/d', /has no user name/],
    ['postgres://u@h:0/d', /port must be 1-65535/],
    ['postgres://u@h/d?sslmode=on', /sslmode must be one of/],
    ['postgres://u@h/d?connect_timeout=soon', /connect_timeout must be a whole number/],
    ['postgres://u@h/d?sslmod=require', /unknown parameter "sslmod"/],
    ['postgres://u@h1,h2/d', /several hosts|not a valid URL/],
  ];
  for (const [url, re] of bad) {
    const p = parseDatabaseUrl(url, 'source');
    t.notOk(p.ok, url);
    t.match(p.ok ? '' : p.errors.join('\n'), re, url);
  }
  const two = parseDatabaseUrl('postgres://h/d?sslmode=x', 'source');
  t.equal(two.ok ? 0 : two.errors.length, 2, 'all problems reported');
  t.equal(redactUrl('postgres://u:secret@h:5432/d'), 'postgres://u:***@h:5432/d');
  t.equal(redactUrl('postgres://u@h/d?password=secret'), 'postgres://u@h/d?password=***');
  t.notMatch(redactUrl('postgres://u:sec ret@h/%zz'), /sec ret/);
});
