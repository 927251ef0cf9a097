/** The README's option table is the config schema's (src/config/doc.ts): a new option without docs fails here. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { optionsTable } from '../../src/config/doc.js';
import { repoPath } from '../helpers/repo.js';

t.test('README option table matches the config schema', async (t) => {
  const readme = readFileSync(repoPath('README.md'), 'utf8');
  t.ok(readme.includes(optionsTable()), 'regenerate with: node -e "import(\'./dist/src/config/doc.js\').then(m => console.log(m.optionsTable()))"');
});
