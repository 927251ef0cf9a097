/** The README's option table, generated from the config schema (test/cli/readme.test.ts keeps them equal). */
import { START_OPTIONS } from './schema.js';

export function optionsTable(): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const rows = START_OPTIONS.map((o) => `| \`--${o.flag}\` | \`${o.env}\` | ${o.required ? 'required' : o.default !== undefined ? `\`${o.default}\`` : '—'} | ${esc(o.doc)} |`);
  return ['| flag | environment | default | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
