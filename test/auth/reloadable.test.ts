/**
 * The holders SIGHUP reloads: TlsHolder re-reads the certificate (a renewed one is served to new connections;
 * a broken one keeps the old), UserDirectory re-reads the users (a broken file keeps the old list).
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TlsHolder } from '../../src/proxy/tls-context.js';
import { UserDirectory } from '../../src/auth/user-directory.js';
import { loadUsersFile } from '../../src/auth/users.js';

const dir = mkdtempSync(join(tmpdir(), 'pgc-reload-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const mkcert = (cn: string) => {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '1', '-keyout', join(dir, `${cn}.key`), '-out', join(dir, `${cn}.pem`)], { stdio: 'ignore' });
};
mkcert('first');
mkcert('second');
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
copyFileSync(join(dir, 'first.pem'), cert);
copyFileSync(join(dir, 'first.key'), key);

/** The CN of the certificate a TLS server with `holder`'s current context presents. */
async function servedCn(holder: TlsHolder): Promise<string> {
  const server = tls.createServer({ SNICallback: (_n, cb) => cb(null, holder.context()), secureContext: holder.context() }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, servername: 'localhost' }, () => {
        resolve(String(c.getPeerCertificate().subject.CN));
        c.destroy();
      });
      c.on('error', reject);
    });
  } finally {
    server.close();
  }
}

t.test('TlsHolder.reload serves a renewed certificate and keeps the old one when the new files are broken', async (t) => {
  const h = TlsHolder.open({ certPath: cert, keyPath: key, minVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' });
  if (!h.ok) throw new Error(h.errors.join());
  t.equal(await servedCn(h.value), 'first');
  copyFileSync(join(dir, 'second.pem'), cert);
  copyFileSync(join(dir, 'second.key'), key);
  t.same(h.value.reload(), { ok: true, value: undefined });
  t.equal(await servedCn(h.value), 'second', 'the renewed certificate');
  writeFileSync(cert, 'not a certificate');
  const bad = h.value.reload();
  t.equal(bad.ok, false);
  t.match(bad.ok ? '' : bad.errors[0], /TLS certificate/);
  t.equal(await servedCn(h.value), 'second', 'the old context stays');
});

t.test('UserDirectory.reload swaps the list, keeps it on a broken file', async (t) => {
  const f = join(dir, 'users.json');
  writeFileSync(f, JSON.stringify({ users: [{ name: 'a', password: 'x' }] }));
  const d = UserDirectory.open(() => loadUsersFile(f));
  if (!d.ok) throw new Error(d.errors.join());
  t.ok(d.value.get('a'));
  writeFileSync(f, JSON.stringify({ users: [{ name: 'b', password: 'y' }] }));
  t.same(d.value.reload(), { ok: true, value: 1 });
  t.notOk(d.value.get('a'));
  t.ok(d.value.get('b'));
  writeFileSync(f, '{ broken');
  t.equal(d.value.reload().ok, false);
  t.ok(d.value.get('b'), 'the old list stays');
});
