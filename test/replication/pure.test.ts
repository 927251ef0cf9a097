import t from 'tap';
import { formatLsn, lsnAtLeast, lsnDistance, maxLsn, parseLsn } from '../../src/replication/lsn.js';
import { heartbeatLagMs } from '../../src/replication/heartbeat-lag.js';
import { arnResourceId, dmsPhase } from '../../src/replication/dms-phase.js';
import { phaseOf } from '../../src/replication/native-monitor.js';
import { parseTableName } from '../../src/replication/sql.js';

t.test('pg_lsn arithmetic', async (t) => {
  t.equal(parseLsn('0/0'), 0n);
  t.equal(parseLsn('16/B374D848'), (0x16n << 32n) | 0xb374d848n);
  t.equal(formatLsn(parseLsn('16/B374D848')), '16/B374D848');
  t.equal(lsnDistance('1/10', '0/FFFFFFF0'), 0x20);
  t.equal(lsnDistance('0/10', '0/20'), 0, 'behind counts as zero');
  t.equal(lsnDistance(null, '0/20'), null);
  t.ok(lsnAtLeast('0/20', '0/20'));
  t.notOk(lsnAtLeast(null, '0/0'));
  t.equal(maxLsn(null, '0/30', '0/4', undefined), '0/30');
  t.throws(() => parseLsn('nope'));
});

t.test('heartbeat lag: age of the oldest write the replica has not shown', async (t) => {
  const w = [1000, 2000, 3000, 4000];
  t.equal(heartbeatLagMs(w, 4000, 4500), 0, 'newest write arrived');
  t.equal(heartbeatLagMs(w, 2000, 4500), 1500, 'writes at 3000 and 4000 missing: 4500 - 3000');
  t.equal(heartbeatLagMs(w, null, 4500), 3500, 'nothing arrived: age of the first write');
  t.equal(heartbeatLagMs(w, 500, 4500), 3500, 'an older value (another run) counts as nothing of ours');
  t.equal(heartbeatLagMs([], 1000, 4500), 3500, 'no local writes: now - replicated (upper bound)');
  t.equal(heartbeatLagMs([], null, 4500), null);
});

t.test('native phase from pg_subscription_rel states', async (t) => {
  t.equal(phaseOf(true, false, ['i', 'i']), 'full-load');
  t.equal(phaseOf(true, true, ['r', 'd']), 'full-load');
  t.equal(phaseOf(true, true, ['r', 'f']), 'full-load-complete');
  t.equal(phaseOf(true, true, ['s', 'r']), 'full-load-complete');
  t.equal(phaseOf(true, true, ['r', 'r']), 'cdc');
  t.equal(phaseOf(false, false, ['r']), 'paused', 'a disabled subscription is paused (not lag, not a failure)');
  t.equal(phaseOf(true, false, []), 'not-started');
});

t.test('DMS task status mapping', async (t) => {
  const base = { fullLoadStarted: true, migrationType: 'full-load-and-cdc' };
  t.same(dmsPhase({ ...base, status: 'ready', fullLoadStarted: false }, false), { phase: 'not-started', streaming: false });
  t.same(dmsPhase({ ...base, status: 'running', fullLoadProgressPercent: 10 }, false), { phase: 'full-load', streaming: true });
  t.same(dmsPhase({ ...base, status: 'running', fullLoadProgressPercent: 100 }, false), { phase: 'full-load-complete', streaming: true });
  t.same(dmsPhase({ ...base, status: 'running', fullLoadProgressPercent: 100 }, true), { phase: 'cdc', streaming: true });
  t.same(dmsPhase({ status: 'running', migrationType: 'cdc', fullLoadStarted: false }, true), { phase: 'cdc', streaming: true });
  t.same(dmsPhase({ ...base, status: 'stopped', fullLoadProgressPercent: 100, stopReason: 'Stop Reason FULL_LOAD_ONLY_FINISHED', migrationType: 'full-load' }, false), { phase: 'full-load-complete', streaming: false });
  t.match(dmsPhase({ ...base, status: 'stopped', fullLoadProgressPercent: 100, stopReason: 'Stop Reason FATAL_ERROR' }, true).error, /FATAL_ERROR/);
  t.match(dmsPhase({ ...base, status: 'failed', lastFailureMessage: 'boom' }, true).error, /failed: boom/);
  t.match(dmsPhase({ ...base, status: 'running', fullLoadProgressPercent: 50, tablesErrored: 2 }, false).error, /2 table/);
  t.equal(arnResourceId('arn:aws:dms:us-east-1:1:task:ABC'), 'ABC');
});

t.test('table names as operators type them', async (t) => {
  t.same(parseTableName('Orders'), { schema: 'public', name: 'orders' });
  t.same(parseTableName('sales.orders'), { schema: 'sales', name: 'orders' });
  t.same(parseTableName('"My Schema"."T.1"'), { schema: 'My Schema', name: 'T.1' });
  t.same(parseTableName('"a""b"'), { schema: 'public', name: 'a"b' });
  t.throws(() => parseTableName('a.b.c'));
  t.throws(() => parseTableName('"open'));
});

t.test('replication gauges are read at scrape time; unknown lag is NaN, not 0', async (t) => {
  const { Registry } = await import('prom-client');
  const { registerReplicationMetrics } = await import('../../src/replication/metrics.js');
  const reg = new Registry();
  let lag: number | null = 2.5;
  registerReplicationMetrics(reg, { lagSeconds: () => lag, lagBytes: () => 1024, state: () => 'CDC_ACTIVE' });
  let text = await reg.metrics();
  t.match(text, /pgcutover_replication_lag_seconds 2\.5/);
  t.match(text, /pgcutover_replication_lag_bytes 1024/);
  t.match(text, /pgcutover_replication_state\{state="CDC_ACTIVE"\} 1/);
  t.match(text, /pgcutover_replication_state\{state="CDC_CAUGHT_UP"\} 0/);
  lag = null;
  text = await reg.metrics();
  t.match(text, /pgcutover_replication_lag_seconds NaN/i); // prom-client writes "Nan"; Prometheus parses any case
});
