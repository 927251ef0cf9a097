/**
 * Issue 16, item 6: shadow mismatches are evidence, kept after SHADOW_WRITES ends (GET /shadow/mismatches
 * emptied once the state moved on). The target here holds a different row, so a shadowed UPDATE … RETURNING
 * mismatches; after a rollback to SOURCE_PRIMARY the mismatch is still listed (active: false).
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query } from '../helpers/replication.js';
import { formatGate, gateResult, notJudged, criterion } from '../../src/domain/gate-result.js';

t.test('a criterion a run could not judge says NOT JUDGED, never PASS, and does not fail the gate', async (t) => {
  const g = gateResult(2, [criterion('rows a', 'source 1, target 1', 'equal', true), notJudged('replication lag and errors', null, 'native subscription', 'no native subscription configured')], 0, 10);
  t.ok(g.passed);
  const text = formatGate(g);
  t.match(text, /Gate 2: PASSED \(1\/1 criteria, 1 not judged/);
  t.match(text, /replication lag and errors\s+-\s+native subscription\s+NOT JUDGED\n\s+no native subscription configured/);
  t.equal(g.criteria[1]!.judged, false);
});

t.test('shadow mismatches stay readable after SHADOW_WRITES', async (t) => {
  const source = await startPg(t, 14);
  const target = await startPg(t, 15);
  for (const [url, v] of [[source.url(), 'source'], [target.url(), 'target']] as const) {
    await query(url, `create table items (id int primary key, v text); insert into items values (1, '${v}')`);
  }
  const proxy = await startProxy(t, source.url(), target.url(), { state: 'SHADOW_WRITES', shadowSamplePct: 100, timeScale: '0.000001' });
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  for (let i = 0; i < 5; i++) await c.query("update items set v = v || '!' where id = 1 returning v");
  const get = async () => (await (await fetch(`${proxy.adminUrl}/shadow/mismatches`)).json()) as { active: boolean; total: number };
  for (let i = 0; i < 100 && (await get()).total === 0; i++) await new Promise((r) => setTimeout(r, 50));
  const during = await get();
  t.ok(during.active && during.total > 0, `mismatches recorded in SHADOW_WRITES (${during.total})`);
  t.ok((await proxy.controller.transition({ to: 'ROLLBACK', reason: 'test', by: 'test' })).ok);
  await proxy.controller.rollbackDone();
  const after = await get();
  t.equal(after.active, false, 'no shadow service any more');
  t.equal(after.total, during.total, 'the mismatches are still there');
});
