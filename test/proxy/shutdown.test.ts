/**
 * The `pg-cutover start` command as a child process: graceful SIGTERM (no new connections, idle clients
 * closed, open transactions may still COMMIT, exit 0), the shutdown timeout, and invalid configuration
 * refused with exit 2 and one line per problem.
 *
 * The child is `node bin/pg-cutover.js` when dist/ is at least as new as every source file (after `npm ci`,
 * whose `prepare` builds it); otherwise src/cli/index.ts's main() runs through the TypeScript loader tap uses,
 * so a stale build is never what gets tested (and no test runs tsc, which would race other suites).
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import pg from 'pg';
import { freePort, startPg } from '../helpers/servers.js';
import { sleep, until } from './fixtures/wire.js';
import { REPO_ROOT } from '../helpers/repo.js';

const ROOT = REPO_ROOT;
const CLI = join(ROOT, 'src/cli/index.ts');
const BIN = join(ROOT, 'bin/pg-cutover.js');
const TS_LOADER = process.execArgv.find((a) => a.includes('@tapjs/typescript')) ?? '--import=@tapjs/typescript/import';

/** True when every src/**\/*.ts has a dist/src/**\/*.js at least as new. */
function distIsFresh(): boolean {
  const walk = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).every((e) => {
      const p = join(dir, e.name);
      if (e.isDirectory()) return walk(p);
      if (!e.name.endsWith('.ts')) return true;
      try {
        return statSync(join(ROOT, 'dist', relative(ROOT, p)).replace(/\.ts$/, '.js')).mtimeMs >= statSync(p).mtimeMs;
      } catch {
        return false;
      }
    });
  return walk(join(ROOT, 'src'));
}
const USE_BIN = distIsFresh();
t.comment(USE_BIN ? 'running bin/pg-cutover.js (dist/ is fresh)' : 'dist/ is stale or missing: running src/cli through the TypeScript loader');

interface Cli {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Cli {
  const base: NodeJS.ProcessEnv = {};
  // Only what the child needs: no PGCUTOVER_* or NODE_OPTIONS leaking in from the test's environment.
  for (const k of ['PATH', 'HOME', 'TMPDIR', 'LANG']) if (process.env[k] !== undefined) base[k] = process.env[k];
  const code = `const m = await import(${JSON.stringify(CLI)}); await m.main(['node', 'pg-cutover', ...process.argv.slice(1)]);`;
  const argv = USE_BIN ? [BIN, ...args] : [TS_LOADER, '--input-type=module', '-e', code, ...args];
  const child = spawn(process.execPath, argv, {
    env: { ...base, TS_NODE_TRANSPILE_ONLY: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stderr: () => err, exited };
}

/** Problem lines of a refused start (logs are JSON lines; problems are `pg-cutover: ...`). */
const problems = (s: string): string[] => s.split('\n').filter((l) => l.startsWith('pg-cutover: '));

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const admin = new pg.Client({ connectionString: source.url() });
await admin.connect();
t.teardown(() => admin.end());
await admin.query('create table ledger (id int primary key, n int not null)');
await admin.query('insert into ledger values (1, 0), (2, 0)');

async function startCli(extraEnv: NodeJS.ProcessEnv, port?: number): Promise<{ c: Cli; url: string }> {
  port ??= await freePort();
  const adminPort = await freePort();
  // Every option through its PGCUTOVER_* variable: the environment alone configures the sidecar.
  const c = cli(['start'], {
    PGCUTOVER_SOURCE: source.url(),
    PGCUTOVER_TARGET: target.url(),
    PGCUTOVER_LISTEN: `127.0.0.1:${port}`,
    PGCUTOVER_ADMIN: `127.0.0.1:${adminPort}`,
    ...extraEnv,
  });
  const up = await until(() => c.stderr().includes('pg-cutover sidecar started') || c.child.exitCode !== null, 60_000, 100);
  if (!up || c.child.exitCode !== null) throw new Error(`sidecar did not start:\n${c.stderr()}`);
  return { c, url: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres` };
}

async function connect(url: string): Promise<{ client: pg.Client; errors: string[]; ended: Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  const errors: string[] = [];
  client.on('error', (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
  const ended = new Promise<void>((r) => client.once('end', () => r()));
  await client.connect();
  return { client, errors, ended };
}

t.test('SIGTERM: refuse new clients, close idle ones, let an open transaction COMMIT, exit 0', async (t) => {
  const { c, url } = await startCli({ PGCUTOVER_SHUTDOWN_TIMEOUT_MS: '20000' });
  const idle = await connect(url);
  const busy = await connect(url);
  await busy.client.query('begin');
  await busy.client.query('update ledger set n = n + 1 where id = 1');

  c.child.kill('SIGTERM');
  await Promise.race([idle.ended, sleep(10_000)]);
  t.equal(idle.errors[0], '57P01', 'the idle client is closed with admin_shutdown');

  const late = new pg.Client({ connectionString: url });
  late.on('error', () => undefined);
  await t.rejects(late.connect(), 'new connections are refused while draining');

  t.equal(c.child.exitCode, null, 'still running while a transaction is open');
  await busy.client.query('update ledger set n = n + 1 where id = 2');
  await busy.client.query('commit');
  t.pass('the open transaction committed during shutdown');
  const exit = await Promise.race([c.exited, sleep(15_000).then(() => ({ code: -1, signal: null }))]);
  t.same(exit, { code: 0, signal: null }, 'exit 0 once the transaction ended');
  await Promise.race([busy.ended, sleep(2_000)]);
  t.same((await admin.query('select n from ledger order by id')).rows, [{ n: 1 }, { n: 1 }], 'both updates committed on the source');
  t.match(c.stderr(), /pg-cutover sidecar stopped/);
});

t.test('SIGTERM with a transaction that never ends: closed after the shutdown timeout and rolled back', async (t) => {
  const port = await freePort();
  const { c, url } = await startCli({ PGCUTOVER_SHUTDOWN_TIMEOUT_MS: '1500' }, port);
  // A second sidecar on the same address is refused at start (exit 2), the first one is not disturbed.
  const second = cli(['start', '--source', source.url(), '--target', target.url(), '--listen', `127.0.0.1:${port}`, '--admin', '127.0.0.1:0']);
  t.same(await second.exited, { code: 2, signal: null }, 'listen address in use: exit 2');
  t.match(problems(second.stderr()).join('\n'), new RegExp(`--listen 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
  const stuck = await connect(url);
  await stuck.client.query('begin');
  await stuck.client.query('update ledger set n = 100 where id = 1');
  const sent = Date.now();
  c.child.kill('SIGTERM');
  const exit = await Promise.race([c.exited, sleep(20_000).then(() => ({ code: -1, signal: null }))]);
  t.same(exit, { code: 0, signal: null });
  t.ok(Date.now() - sent >= 1400, `waited for the timeout (${Date.now() - sent} ms)`);
  await Promise.race([stuck.ended, sleep(2_000)]);
  t.equal(stuck.errors[0], '57P01', 'the client was told');
  t.ok(
    await until(async () => (await admin.query("select count(*)::int as n from pg_stat_activity where state like 'idle in transaction%'")).rows[0].n === 0, 3_000),
    'no transaction left open on the source',
  );
  t.equal((await admin.query('select n from ledger where id = 1')).rows[0].n, 1, 'rolled back');
});

t.test('invalid configuration: exit 2, one line per problem', async (t) => {
  const runs = await Promise.all([
    // Bad URL, bad port, missing --target, all at once.
    (async () => {
      const c = cli(['start', '--source', 'postgres://app@db.example:0/app', '--listen', '127.0.0.1:70000']);
      return { name: 'url/port/target', r: await c.exited, lines: problems(c.stderr()) };
    })(),
    (async () => {
      const c = cli(['start', '--source', 'mysql://x@y/z', '--target', 'postgres://u@h/db?sslmode=sometimes'], { PGCUTOVER_MAX_CLIENTS: 'lots' });
      return { name: 'scheme/sslmode/env', r: await c.exited, lines: problems(c.stderr()) };
    })(),
  ]);
  const [a, b] = runs;
  t.same(a!.r, { code: 2, signal: null }, 'exit 2');
  t.equal(a!.lines.length, 3, `three problems, three lines:\n${a!.lines.join('\n')}`);
  t.match(a!.lines.join('\n'), /--target \(or PGCUTOVER_TARGET\) is required/);
  t.match(a!.lines.join('\n'), /--listen: expected host:port, got "127\.0\.0\.1:70000"/);
  t.match(a!.lines.join('\n'), /--source: source database URL: port must be 1-65535 \(got "0"\)/);

  t.same(b!.r, { code: 2, signal: null });
  t.equal(b!.lines.length, 3, b!.lines.join('\n'));
  t.match(b!.lines.join('\n'), /--source: source database URL must start with postgres:\/\//);
  t.match(b!.lines.join('\n'), /--target: target database URL: sslmode must be one of/);
  t.match(b!.lines.join('\n'), /--max-clients: expected a whole number, got "lots"/);
});
