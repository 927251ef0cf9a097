/**
 * SIGHUP reloads and never exits (issue 17: it exited 129 and cut open transactions). A real
 * `pg-cutover start` process in front of PostgreSQL 14 and 15: a transaction stays open across two
 * SIGHUPs; the users file is re-read (a new user gets in; a broken file keeps the previous users); a renewed
 * TLS certificate is served to new connections while an open TLS session keeps going;
 * the log level follows --log-level-file.
 */
import t from 'tap';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { TLSSocket } from 'node:tls';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { spawnSidecar, transpileCli } from '../helpers/sidecar-process.js';
import { until } from '../helpers/wait.js';

const [bin, source, target] = await Promise.all([transpileCli(t), startPg(t, 14), startPg(t, 15)]);
const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pg-cutover-sighup-'));
t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
const usersFile = path.join(dir, 'users.json');
const levelFile = path.join(dir, 'log-level');
const users = (...names: string[]) => JSON.stringify({ users: names.map((n) => ({ name: n, password: `${n}-pw`, method: 'scram-sha-256' })) });
await fs.writeFile(usersFile, users('alice'));
await fs.writeFile(levelFile, 'warn\n');
const certFile = path.join(dir, 'cert.pem');
const keyFile = path.join(dir, 'key.pem');
const makeCert = (cn: string) =>
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
makeCert('first-cert');

const sc = await spawnSidecar(t, bin, 'hup', ['--source', source.url(), '--target', target.url(), '--users', usersFile, '--log-level-file', levelFile, '--tls-cert', certFile, '--tls-key', keyFile]);
const connect = async (user: string, ssl = false) => {
  const c = new pg.Client({ host: '127.0.0.1', port: sc.listenPort, user, password: `${user}-pw`, database: 'postgres', ssl: ssl ? { rejectUnauthorized: false } : false });
  c.on('error', () => undefined);
  await c.connect();
  return c;
};

t.test('SIGHUP re-reads users and log level; open transactions and the process survive', async (t) => {
  const alice = await connect('alice');
  t.teardown(() => alice.end().catch(() => undefined));
  await alice.query('BEGIN');
  await alice.query('CREATE TEMP TABLE hup(x int)');
  await alice.query('INSERT INTO hup VALUES (1)');
  await t.rejects(connect('bob'), /password authentication failed|does not exist/, 'bob is not a user yet');

  await fs.writeFile(usersFile, users('alice', 'bob'));
  await fs.writeFile(levelFile, 'debug\n');
  process.kill(sc.proc.pid!, 'SIGHUP');
  const bob = await until('bob logs in after SIGHUP', () => connect('bob').catch(() => null));
  t.equal((await bob.query('select 1 as one')).rows[0].one, 1, 'bob is in');
  await bob.end();
  await until('reload logged at debug level', () => /"what":"log level","ok":true,"detail":"debug"/.test(sc.log()));

  await fs.writeFile(usersFile, '{"users": [ broken');
  process.kill(sc.proc.pid!, 'SIGHUP');
  await until('failed reload logged', () => /"what":"users","ok":false/.test(sc.log()));
  const bob2 = await connect('bob');
  t.pass('a broken users file keeps the previous users');
  await bob2.end();

  await alice.query('INSERT INTO hup VALUES (2)');
  t.same((await alice.query('SELECT count(*)::int AS n FROM hup')).rows, [{ n: 2 }], 'the transaction opened before both SIGHUPs is intact');
  await alice.query('COMMIT');
  t.ok(sc.alive(), 'the sidecar is still running');
});

t.test('SIGHUP loads a renewed TLS certificate for new connections; TLS sessions already open keep going', async (t) => {
  const peerCn = (c: pg.Client) => ((c as unknown as { connection: { stream: TLSSocket } }).connection.stream.getPeerCertificate().subject.CN);
  const before = await connect('alice', true);
  t.teardown(() => before.end().catch(() => undefined));
  t.equal(peerCn(before), 'first-cert');
  makeCert('renewed-cert');
  process.kill(sc.proc.pid!, 'SIGHUP');
  const after = await until('a new TLS connection gets the renewed certificate', async () => {
    const c = await connect('alice', true);
    if (peerCn(c) === 'renewed-cert') return c;
    await c.end();
    return null;
  });
  t.pass('renewed certificate served');
  await after.end();
  t.equal((await before.query('select 1 as one')).rows[0].one, 1, 'the TLS session opened before the reload still works');
  t.ok(sc.alive());
});
