/**
 * One SQLSTATE catalogue (src/protocol/sqlstate.ts): each code once, documented with its number and
 * PostgreSQL's condition name, and no other source file spells a code.
 */
import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SqlState } from '../../src/protocol/sqlstate.js';
import { repoPath } from '../helpers/repo.js';

const src = repoPath('src');
const catalogue = join(src, 'protocol', 'sqlstate.ts');

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? tsFiles(p) : n.endsWith('.ts') ? [p] : [];
  });
}

t.test('each code once, each with a doc line naming it', async (t) => {
  const codes = Object.values(SqlState);
  t.equal(new Set(codes).size, codes.length, 'no code under two names');
  for (const c of codes) t.match(c, /^[0-9A-Z]{5}$/, `${c} is five characters`);
  const text = readFileSync(catalogue, 'utf8');
  for (const [name, code] of Object.entries(SqlState)) t.match(text, new RegExp(`/\\*\\* ${code} [a-z_]+[^*]*\\*/\\n  ${name}: '${code}'`), `${name} documented`);
});

t.test('no source file outside the catalogue spells a SQLSTATE', async (t) => {
  // A quoted five-character code of one of PostgreSQL's SQLSTATE classes (Appendix A), not an option default
  // and not a number such as '10000' (class 10 does not exist).
  const CLASSES = '00 01 02 03 08 09 0A 0B 0F 0L 0P 0Z 20 21 22 23 24 25 26 27 28 2B 2D 2F 34 38 39 3B 3D 3F 40 42 44 53 54 55 57 58 72 F0 HV P0 XX';
  const literal = new RegExp(`(?<!default: )'((?:${CLASSES.split(' ').join('|')})[0-9A-Z]{3})'`, 'g');
  const found: string[] = [];
  for (const f of tsFiles(src)) {
    if (f === catalogue) continue;
    const lines = readFileSync(f, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return;
      // All-digit ones ('23505') only where the line is about an error code, not a number in a string ('10000').
      for (const m of line.matchAll(literal)) if (/[A-Z]/.test(m[1]!) || /code|sqlstate|err/i.test(line)) found.push(`${relative(src, f)}:${i + 1} ${m[1]}`);
    });
  }
  t.strictSame(found, [], 'use SqlState.<Name> from src/protocol/sqlstate.ts');
});
