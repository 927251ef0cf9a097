/**
 * Gate 3's target write p99 is the shadows' statement latency. The shadow connection receives a transaction's
 * statements as the client sends them to the source, so a statement sent while its predecessor still runs on the
 * target waits there behind it: that wait is the predecessor's latency, not its own (a client talking to the target
 * would not have sent it yet). Measured before the fix: the statement after a slow one counted the slow one's time
 * again. Here a function is slow on the target only; exactly one shadowed statement carries that time.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query } from '../helpers/replication.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
for (const db of [source, target]) await query(db.url(), 'create table acc (id int primary key, v int not null); insert into acc values (1, 0), (2, 0)');
await query(source.url(), "create function slow_on_target() returns int language sql as 'select 1'");
await query(target.url(), 'create function slow_on_target() returns int language plpgsql as $$ begin perform pg_sleep(0.4); return 1; end $$');

const proxy = await startProxy(t, source.url(), target.url(), { state: 'SHADOW_WRITES', shadowSamplePct: 100, shadowLagBudgetBytes: 64 * 1024 * 1024 });
await proxy.shadower()!.sequencesReady;

t.test('a statement queued behind a slow one on the shadow connection is timed from when that one answered', async (t) => {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  await c.query('begin');
  await c.query('update acc set v = v + 1 where id = 1');
  await c.query('select slow_on_target()');
  // Sent as soon as the source answered the call above, while the shadow still runs it on the target.
  await c.query('update acc set v = v + 1 where id = 2');
  await c.query('commit');
  await c.end();
  const st = proxy.shadower()!.stats;
  for (let i = 0; i < 100 && st.compared < 3; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(st.unexplained, 0, `shadows matched (${JSON.stringify(st.mismatched)})`);
  t.ok(st.latencyMs.length >= 3, `${st.latencyMs.length} shadowed statements timed: ${st.latencyMs.map((m) => m.toFixed(1)).join(', ')} ms`);
  t.equal(st.latencyMs.filter((ms) => ms >= 350).length, 1, 'only the slow statement carries the target\'s 400 ms');
});
