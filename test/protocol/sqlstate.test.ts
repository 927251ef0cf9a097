/**
 * One SQLSTATE catalogue (src/protocol/sqlstate.ts): each code once, documented with its number and
 * PostgreSQL's condition name, and no other source file spells a code.
 */
import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqlState } from '../../src/protocol/sqlstate.js';

const src = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
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
  // A quoted five-character code of a known SQLSTATE class (digits, or XX/P0/HV/F0 classes), not an option default.
  const literal = /(?<!default: )'((?:[0-9][0-9A-Z]|XX|P0|HV|F0)[0-9A-Z]{3})'/g;
  const found: string[] = [];
  for (const f of tsFiles(src)) {
    if (f === catalogue) continue;
    const lines = readFileSync(f, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (/^\s*(\/\/|\*)/.test(line)) return;
      for (const m of line.matchAll(literal)) found.push(`${relative(src, f)}:${i + 1} ${m[1]}`);
    });
  }
  t.strictSame(found, [], 'use SqlState.<Name> from src/protocol/sqlstate.ts');
});
