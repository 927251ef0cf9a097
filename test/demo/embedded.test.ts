import t from 'tap';
import pg from 'pg';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { freePort, startEmbeddedPostgres } from '../../src/demo/embedded.js';
import { startPg } from '../helpers/servers.js';
import { repoPath } from '../helpers/repo.js';

import { pathToFileURL } from 'node:url';
async function query(url: string, sql: string, password?: string): Promise<pg.QueryResult> {
  const u = new URL(url);
  if (password !== undefined) u.password = encodeURIComponent(password);
  const c = new pg.Client({ connectionString: u.href });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('freePort gives a bindable port', async (t) => {
  const port = await freePort();
  t.ok(port > 1024);
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  await new Promise((r) => srv.close(r));
});

t.test('scram-sha-256 by default, logical settings, pg_stat_statements, stop is idempotent', async (t) => {
  const started = Date.now();
  const s = await startEmbeddedPostgres({ major: 14, logical: true, settings: { work_mem: '7MB' } });
  t.comment(`PostgreSQL 14 up in ${Date.now() - started} ms`);
  t.equal(s.major, 14);
  t.equal(s.host, '127.0.0.1');
  t.equal(s.user, 'postgres');
  t.match(s.url('shop'), new RegExp(`^postgresql://postgres:postgres@127\\.0\\.0\\.1:${s.port}/shop$`));
  const r = await query(
    s.url(),
    `SELECT current_setting('server_version_num')::int / 10000 AS major, current_setting('wal_level') AS wal_level,
            current_setting('max_replication_slots')::int AS slots, current_setting('max_wal_senders')::int AS senders,
            current_setting('work_mem') AS work_mem, current_setting('shared_preload_libraries') AS spl,
            current_setting('server_encoding') AS enc, current_setting('lc_collate') AS collate,
            current_setting('listen_addresses') AS listen,
            (SELECT array_agg(DISTINCT auth_method) FROM pg_hba_file_rules) AS auth,
            (SELECT left(rolpassword, 13) FROM pg_authid WHERE rolname = 'postgres') AS stored`,
  );
  t.same(r.rows[0], {
    major: 14,
    wal_level: 'logical',
    slots: 10,
    senders: 10,
    work_mem: '7MB',
    spl: 'pg_stat_statements',
    enc: 'UTF8',
    collate: 'C',
    listen: '127.0.0.1',
    auth: ['scram-sha-256'],
    stored: 'SCRAM-SHA-256',
  });
  await query(s.url(), 'CREATE EXTENSION pg_stat_statements');
  await t.rejects(query(s.url(), 'SELECT 1', 'wrong'), { code: '28P01' });
  t.ok(existsSync(s.dataDir));
  await Promise.all([s.stop(), s.stop()]);
  await s.stop();
  t.notOk(alive(s.pid), 'postmaster gone');
  t.notOk(existsSync(s.dataDir), 'data dir removed');
  t.notOk(await portOpen(s.port), 'port closed');
});

t.test('md5 stores an MD5 password so the server really asks for MD5', async (t) => {
  const s = await startPg(t, 15, { authMethod: 'md5', password: 'p@ss w/rd:%' });
  const r = await query(s.url(), `SELECT left(rolpassword, 3) AS stored, current_setting('server_version_num')::int / 10000 AS major FROM pg_authid WHERE rolname = 'postgres'`);
  t.same(r.rows[0], { stored: 'md5', major: 15 });
  await t.rejects(query(s.url(), 'SELECT 1', 'nope'), { code: '28P01' });
});

t.test('trust and password methods', async (t) => {
  const [tr, pw] = await Promise.all([startPg(t, 15, { authMethod: 'trust' }), startPg(t, 14, { authMethod: 'password', password: 'x' })]);
  t.equal((await query(tr.url(), 'SELECT 1 AS one', 'anything')).rows[0].one, 1, 'trust ignores the password');
  t.equal((await query(pw.url(), 'SELECT 1 AS one')).rows[0].one, 1);
  await t.rejects(query(pw.url(), 'SELECT 1', 'y'), { code: '28P01' });
});

t.test('an explicit port is used', async (t) => {
  const port = await freePort();
  const s = await startPg(t, 15, { port });
  t.equal(s.port, port);
  t.equal((await query(s.url(), 'SELECT inet_server_port() AS p')).rows[0].p, port);
});

t.test('a server that cannot start rejects with an Error that carries its log', async (t) => {
  const err = await startEmbeddedPostgres({ major: 15, settings: { shared_buffers: 'plenty' } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof Error);
  t.match(String(err), /exited during start-up[\s\S]*shared_buffers/);
});

async function runFixture(mode: 'hang' | 'exit') {
  const child = spawn(
    process.execPath,
    [
      `--import=${pathToFileURL(repoPath('node_modules/@tapjs/typescript/dist/esm/import.mjs')).href}`,
      repoPath('test/helpers/embedded-owner-fixture.ts'),
      mode,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const info = await new Promise<{ pid: number; dataDir: string }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as { pid: number; dataDir: string });
    });
    child.once('exit', (code) => reject(new Error(`fixture exited before starting a server (${code}): ${out}`)));
  });
  return { child, info };
}

async function gone(pid: number, dir: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && (alive(pid) || existsSync(dir))) await new Promise((r) => setTimeout(r, 100));
}

t.test('servers do not outlive the process that started them', async (t) => {
  // Both fixtures at once: each pays a TypeScript-loader start-up and a server start.
  const [exiting, hanging] = await Promise.all([runFixture('exit'), runFixture('hang')]);
  t.ok(alive(hanging.info.pid), 'postmaster running');
  hanging.child.kill('SIGKILL');
  await Promise.all([gone(exiting.info.pid, exiting.info.dataDir, 5_000), gone(hanging.info.pid, hanging.info.dataDir, 8_000)]);
  t.notOk(alive(exiting.info.pid), 'process.exit without stop(): postmaster gone (exit hook, or else the watchdog)');
  t.notOk(existsSync(exiting.info.dataDir), 'process.exit without stop(): directory removed');
  t.notOk(alive(hanging.info.pid), 'SIGKILLed owner: postmaster gone (the watchdog)');
  t.notOk(existsSync(hanging.info.dataDir), 'SIGKILLed owner: directory removed');
});
