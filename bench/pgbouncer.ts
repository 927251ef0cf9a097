// PgBouncer (Debian package) as the reference pooler: session mode, run as
// the postgres user (it refuses to run as root), config in a temp dir.
// https://www.pgbouncer.org/config.html
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, readFileSync, chownSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgbouncerOptions {
  listenPort: number;
  pgHost: string;
  pgPort: number;
  /** Database name clients use; mapped to the same name on the server. */
  database: string;
  user: string;
  password: string;
  /** Default scram-sha-256: the same method the server and pg-cutover use. */
  authType?: 'scram-sha-256' | 'md5';
  binary?: string;
}

export interface Pgbouncer {
  host: string;
  port: number;
  /** PID of the pgbouncer process itself (not runuser), for RSS readings. */
  pid: number;
  stop(): Promise<void>;
  /** Synchronous best-effort kill for process 'exit' handlers. */
  killSync(): void;
}

/** Userlist quoting: a `"` inside a value is written twice. */
const quote = (s: string): string => `"${s.replaceAll('"', '""')}"`;

export function pgbouncerIni(opts: PgbouncerOptions, dir: string): string {
  return [
    '[databases]',
    `${opts.database} = host=${opts.pgHost} port=${opts.pgPort} dbname=${opts.database}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${opts.listenPort}`,
    `unix_socket_dir = ${dir}`,
    `auth_type = ${opts.authType ?? 'scram-sha-256'}`,
    `auth_file = ${join(dir, 'userlist.txt')}`,
    'pool_mode = session',
    'max_client_conn = 1200',
    'default_pool_size = 100',
    'max_db_connections = 0',
    // pg and psycopg2 send extra_float_digits; harmless to let through.
    'ignore_startup_parameters = extra_float_digits',
    `logfile = ${join(dir, 'pgbouncer.log')}`,
    `pidfile = ${join(dir, 'pgbouncer.pid')}`,
    'log_connections = 0',
    'log_disconnections = 0',
    'stats_period = 3600',
    '',
  ].join('\n');
}

export async function startPgbouncer(opts: PgbouncerOptions): Promise<Pgbouncer> {
  const bin = opts.binary ?? '/usr/sbin/pgbouncer';
  const dir = mkdtempSync(join(tmpdir(), 'bench-pgbouncer-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
  const ini = join(dir, 'pgbouncer.ini');
  writeFileSync(ini, pgbouncerIni(opts, dir));
  // A plain-text password lets PgBouncer answer SCRAM or md5 and also log in
  // to the server with it.
  writeFileSync(join(dir, 'userlist.txt'), `${quote(opts.user)} ${quote(opts.password)}\n`, { mode: 0o600 });
  for (const f of ['', 'pgbouncer.ini', 'userlist.txt']) chownSync(join(dir, f), uid, gid);

  const child: ChildProcess = spawn('runuser', ['-u', 'postgres', '--', bin, ini], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
  const pidFile = join(dir, 'pgbouncer.pid');
  const logFile = join(dir, 'pgbouncer.log');

  let pid = 0;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    if (existsSync(pidFile) && existsSync(logFile) && readFileSync(logFile, 'utf8').includes('process up')) {
      pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (pid > 0) break;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const killSync = (): void => {
    // SIGTERM to pgbouncer itself is "immediate shutdown"; runuser then exits.
    if (pid > 0) try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    try { child.kill('SIGTERM'); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
  };
  if (!pid) {
    const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    killSync();
    throw new Error(`pgbouncer did not start: ${stderr}${log.split('\n').slice(-10).join('\n')}`);
  }
  return {
    host: '127.0.0.1',
    port: opts.listenPort,
    pid,
    killSync,
    stop: async () => {
      const exited = child.exitCode !== null
        ? Promise.resolve()
        : new Promise<void>((r) => child.once('exit', () => r()));
      killSync();
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    },
  };
}
