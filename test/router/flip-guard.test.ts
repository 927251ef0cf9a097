/**
 * Read-your-writes across a state flip (issue 15 item 1): writes forwarded unclassified in a uniform state
 * (SOURCE_PRIMARY: the fast path starts no session wait) are covered by the router's flip guard when the state
 * starts splitting reads again, also when the router last routed a unit in a splitting state (READS_100 →
 * SOURCE_PRIMARY → READS_100: found by the target-readers ledger test as an occasional own-row miss).
 * Replication is throttled on the target (60 ms per applied row) so a read sent there too early misses.
 */
import t from 'tap';
import pg from 'pg';
import { startProxy } from '../helpers/proxy.js';
import { startSlowApplyPair } from '../helpers/replication.js';

const { source, target } = await startSlowApplyPair(t);
const proxy = await startProxy(t, source.url(), target.url(), { state: 'READS_100PCT_AURORA' });

t.test('a write made in SOURCE_PRIMARY is read back after the flip to READS_100PCT', async (t) => {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end());
  let misses = 0;
  const n = 20;
  for (let i = 0; i < n; i++) {
    await c.query('select 1'); // a routed read in the splitting state
    await proxy.setState('SOURCE_PRIMARY', 'test');
    const id = (await c.query({ text: 'insert into ryw (v) values ($1) returning id', values: [`f${i}`] })).rows[0].id;
    await proxy.setState('READS_100PCT_AURORA', 'test');
    const r = await c.query({ text: 'select v from ryw where id = $1', values: [id] });
    if (r.rowCount !== 1) misses++;
  }
  t.equal(misses, 0, `0 of ${n} reads after the flip missed the row written just before it`);
});
