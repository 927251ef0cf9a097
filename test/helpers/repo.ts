/**
 * Where the repository is, whether a test runs from its TypeScript source (test/…, `npx tap test/x.test.ts`)
 * or compiled (dist-test/test/…, what `npm test` runs): tests find README, src/, bench/ and fixtures here.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function findRoot(dir: string): string {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, 'package.json'))) return d;
    if (path.dirname(d) === d) throw new Error(`no package.json above ${dir}`);
  }
}

/** The repository root (the directory of package.json). */
export const REPO_ROOT = findRoot(here);

/** A path inside the repository, e.g. `repoPath('test/proxy/fixtures/x.py')`. */
export const repoPath = (...parts: string[]): string => path.join(REPO_ROOT, ...parts);

/** When running compiled: the compiled tree (dist-test), whose src/ holds the current sources as JavaScript. */
export const COMPILED_ROOT: string | null = path.basename(path.dirname(path.dirname(here))) === 'dist-test'
  ? path.dirname(path.dirname(here))
  : null;
