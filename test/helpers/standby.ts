/**
 * A physical hot standby of an embedded PostgreSQL (a "target reader", as an Aurora reader instance is to
 * its writer): Debian's pg_basebackup (postgresql-15, installed by .ci/run) copies the primary with -R
 * (standby.signal and primary_conninfo), then the embedded postgres binary of the same major runs it.
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { pgBinaries } from '../../src/demo/embedded-binaries.js';
import { chownTo, postgresRunAs } from '../../src/demo/embedded-os.js';
import { spawnPostmaster, stopPostmaster, type Postmaster } from '../../src/demo/embedded-process.js';
import { freePort, PG_CLIENT_BIN, type EmbeddedPg, type Teardown } from './servers.js';

const run = promisify(execFile);

export interface Standby {
  host: string;
  port: number;
  url(db?: string): string;
  /** Stop replaying (pg_wal_replay_pause) or resume: a reader that falls behind on demand. */
  pauseReplay(paused: boolean): Promise<void>;
  stop(): Promise<void>;
  /** kill -9 of the whole server (postmaster and backends, one process group): connections reset mid-reply. */
  kill(): Promise<void>;
}

export async function startStandby(t: Teardown, primary: EmbeddedPg): Promise<Standby> {
  const who = await postgresRunAs();
  const base = await fs.mkdtemp(path.join(os.tmpdir(), 'pg-cutover-standby-'));
  await fs.chmod(base, 0o755);
  await chownTo(base, who);
  const dataDir = path.join(base, 'data');
  const sock = path.join(base, 'sock');
  await fs.mkdir(sock, { mode: 0o755 });
  await chownTo(sock, who);
  const conn = `host=127.0.0.1 port=${primary.port} user=${primary.user} password=${primary.password}`;
  await run(path.join(PG_CLIENT_BIN, 'pg_basebackup'), ['-D', dataDir, '-d', conn, '-R', '-X', 'stream', '-c', 'fast'], {
    uid: who.uid,
    gid: who.gid,
    timeout: 120_000,
  });
  const port = await freePort();
  const flags = ['listen_addresses=127.0.0.1', `unix_socket_directories=${sock}`, 'fsync=off', 'hot_standby=on', 'wal_receiver_status_interval=1s'];
  const pm: Postmaster = await spawnPostmaster(
    pgBinaries(primary.major).postgres,
    ['-D', dataDir, '-p', String(port), ...flags.flatMap((f) => ['-c', f])],
    who,
    60_000,
  );
  const url = (db = 'postgres') => `postgresql://${primary.user}:${encodeURIComponent(primary.password)}@127.0.0.1:${port}/${db}`;
  let stopping: Promise<void> | undefined;
  const s: Standby = {
    host: '127.0.0.1',
    port,
    url,
    async pauseReplay(paused) {
      const c = new pg.Client({ connectionString: url() });
      await c.connect();
      try {
        await c.query(paused ? 'SELECT pg_wal_replay_pause()' : 'SELECT pg_wal_replay_resume()');
      } finally {
        await c.end();
      }
    },
    async kill() {
      if (pm.running() && pm.child.pid !== undefined) {
        try {
          process.kill(-pm.child.pid, 'SIGKILL');
        } catch {
          pm.child.kill('SIGKILL');
        }
      }
      await pm.exited;
      await s.stop();
    },
    stop() {
      stopping ??= (async () => {
        await stopPostmaster(pm);
        await fs.rm(base, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
  t.teardown(() => s.stop());
  return s;
}
