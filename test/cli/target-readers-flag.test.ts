/** --target-readers parsing (src/config/load.ts): each reader gets --target's login and --target-control's control login. */
import t from 'tap';
import { loadStartConfig } from '../../src/config/load.js';

const base = { source: 'postgres://app:a@src:5432/db', target: 'postgres://app:b@tgt:5432/db', targetControl: 'postgres://ctl:c@tgt:5432/db' };

t.test('readers take the target login and the control login, host and port their own', async (t) => {
  const r = loadStartConfig({ ...base, targetReaders: 'r1:5433, [::1]:5434' }, {});
  if (!r.ok) return t.fail(r.errors.join('; '));
  t.same(r.value.targetReaders.map((x) => x.name), ['r1:5433', '[::1]:5434']);
  const [a] = r.value.targetReaders;
  t.match(a.link, { host: 'r1', port: 5433, user: 'app', password: 'b', database: 'db' });
  t.match(a.control, { host: 'r1', port: 5433, user: 'ctl', password: 'c' });
  const none = loadStartConfig(base, {});
  t.same(none.ok && none.value.targetReaders, [], 'none by default');
});

t.test('bad lists are refused with the reason', async (t) => {
  for (const [spec, why] of [['r1', /expected host:port/], ['r1:5433,r1:5433', /listed twice/], ['tgt:5432', /--target itself/]] as const) {
    const r = loadStartConfig({ ...base, targetReaders: spec }, {});
    t.notOk(r.ok, spec);
    if (!r.ok) t.match(r.errors.join('; '), why, spec);
  }
});
