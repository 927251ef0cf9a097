import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chownTo, type RunAs } from './embedded-os.js';
import type { PgBinaries } from './embedded-binaries.js';

const run = promisify(execFile);

/**
 * Bump when the initdb arguments change, so stale templates are not reused. The template is plain
 * initdb output that was never started; instances copy it and set auth and password themselves.
 */
const TEMPLATE_FORMAT = 1;
const READY_MARKER = '.pg-cutover-template-ok';

/**
 * initdb costs ~0.9 s of CPU per cluster here (2 cores shared by parallel test files); copying its
 * output (~40 MB) costs ~0.1 s. So each major is initialised once per machine and copied.
 * - `-E UTF8 --locale=C`: the same encoding and byte-order collation on both majors, so equal values
 *   give equal bytes and equal sort orders in shadow comparisons (and no dependency on host locales).
 * - `--no-sync`: these clusters are scratch data (https://www.postgresql.org/docs/15/app-initdb.html).
 * - `--auth=trust`: replaced per instance (see embedded.ts bootstrap).
 */
function initdbArgs(dataDir: string): string[] {
  return [`--pgdata=${dataDir}`, '--username=postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'];
}

/** Per OS user: a root-owned cache is not writable by a non-root user sharing /tmp, and vice versa. */
export function templateRoot(): string {
  return path.join(os.tmpdir(), `pg-cutover-templates-${process.getuid?.() ?? 'u'}`);
}

function templateDir(bins: PgBinaries, who: RunAs): string {
  return path.join(templateRoot(), `pg${bins.major}-${bins.version}-u${who.uid ?? 'self'}-f${TEMPLATE_FORMAT}`);
}

async function isReady(dir: string): Promise<boolean> {
  return fs.access(path.join(dir, READY_MARKER)).then(
    () => true,
    () => false,
  );
}

const building = new Map<string, Promise<string>>();

/** Returns the data directory of a ready template for this major, building it if needed. */
export function ensureTemplate(bins: PgBinaries, who: RunAs): Promise<string> {
  const dir = templateDir(bins, who);
  let p = building.get(dir);
  if (!p) {
    p = buildOnce(bins, who, dir).catch((err: unknown) => {
      building.delete(dir);
      throw err;
    });
    building.set(dir, p);
  }
  return p;
}

async function buildOnce(bins: PgBinaries, who: RunAs, dir: string): Promise<string> {
  const data = path.join(dir, 'data');
  if (await isReady(dir)) return data;
  await fs.mkdir(templateRoot(), { recursive: true, mode: 0o755 });
  // Build beside the final place and rename: concurrent builders (parallel test processes) race
  // only on the rename, and a half-built template is never visible.
  const tmp = await fs.mkdtemp(path.join(templateRoot(), '.build-'));
  try {
    await fs.chmod(tmp, 0o755);
    const tmpData = path.join(tmp, 'data');
    await fs.mkdir(tmpData, { mode: 0o700 });
    await chownTo(tmpData, who);
    await runInitdb(bins, who, tmpData);
    await fs.writeFile(path.join(tmp, READY_MARKER), `${bins.version}\n`);
    try {
      await fs.rename(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !(await isReady(dir))) throw err;
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return data;
}

function runInitdb(bins: PgBinaries, who: RunAs, dataDir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bins.initdb, initdbArgs(dataDir), {
      uid: who.uid,
      gid: who.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_MESSAGES: 'C', LC_ALL: 'C' },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (out += b.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`initdb (PostgreSQL ${bins.major}) failed: code ${code} signal ${signal}\n${out.slice(-2000)}`));
    });
  });
}

/** Copies the template into `dest` (which must not exist), keeping ownership and the 0700 mode postgres requires. */
export async function copyTemplate(template: string, dest: string): Promise<void> {
  // cp -a keeps owner and modes in one pass; fs.cp would need a chown walk afterwards when root.
  await run('cp', ['-a', template, dest]);
}
