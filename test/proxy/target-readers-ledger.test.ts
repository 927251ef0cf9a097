/**
 * Target readers under load (issue 15 item 2), with an acknowledged-write ledger: writers and
 * insert-then-select sessions through the proxy while the state flips between SOURCE_PRIMARY, the READS_*
 * states and SHADOW_WRITES, the reader's replay is paused, resumed, and then the reader is killed. Afterwards
 * every acknowledged write is on the source, source and target hold the same rows, no session missed its
 * own row, and no client saw an error it did not cause.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query, replicate, tableChecksum, waitCaughtUp } from '../helpers/replication.js';
import { startStandby } from '../helpers/standby.js';
import { sleep, until } from '../helpers/wait.js';
import type { CutoverState } from '../../src/domain/states.js';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
await query(source.url(), 'create table ledger (id bigint generated always as identity primary key, client int not null, seq int not null, unique (client, seq))');
await replicate(source, target);
const standby = await startStandby(t, target);
const proxy = await startProxy(t, source.url(), target.url(), { targetReaders: `${standby.host}:${standby.port}`, state: 'READS_50PCT_AURORA' });

/** Where a read ran: the reader (a standby), the target primary or the source. */
const WHERE = "case when pg_is_in_recovery() then 'reader' when current_setting('server_version_num')::int >= 150000 then 'primary' else 'source' end as at";

/** The smallest histogram bucket bound holding the quantile `q` of the reader lag samples so far. */
async function lagQuantile(q: number): Promise<{ le: number; count: number }> {
  const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const buckets: [number, number][] = [];
  for (const m of text.matchAll(/^pgcutover_target_reader_lag_seconds_bucket\{([^}]*)\} (\d+)/gm)) {
    const le = /le="([^"]+)"/.exec(m[1])![1];
    buckets.push([le === '+Inf' ? Infinity : Number(le), Number(m[2])]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const count = buckets.at(-1)?.[1] ?? 0;
  const at = buckets.find(([, c]) => c >= q * count);
  return { le: at?.[0] ?? Infinity, count };
}

t.test('every acknowledged write survives; 0 own-row misses; no client error, with the reader paused, killed and the state flipping', async (t) => {
  const acked: [number, number][] = [];
  const errors: string[] = [];
  let stop = false;
  const missedOn: string[] = [];
  let onReader = 0;
  let reads = 0;
  const session = async (client: number, readBack: boolean) => {
    const c = new pg.Client({ connectionString: proxy.url() });
    c.on('error', () => {});
    await c.connect();
    try {
      for (let seq = 1; !stop; seq++) {
        await c.query('insert into ledger (client, seq) values ($1, $2)', [client, seq]);
        acked.push([client, seq]);
        if (!readBack) continue;
        // Now and then a read comes a moment after its write, once the readers may have it: it can go there.
        if (seq % 3 === 0) await sleep(150);
        const r = await c.query(`select (select count(*)::int from ledger where client = $1 and seq = $2) as n, ${WHERE}`, [client, seq]);
        reads++;
        const at = r.rows[0].at as string;
        if (r.rows[0].n !== 1) missedOn.push(`${at} in ${proxy.state()}`);
        else if (at === 'reader') onReader++;
      }
    } catch (e) {
      errors.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
    } finally {
      await c.end().catch(() => {});
    }
  };
  let pureReads = 0;
  let pureOnReader = 0;
  const reader = async () => {
    const c = new pg.Client({ connectionString: proxy.url() });
    c.on('error', () => {});
    await c.connect();
    try {
      while (!stop) {
        const r = await c.query('select pg_is_in_recovery() as r, count(*)::int as n from ledger');
        pureReads++;
        if (r.rows[0].r) pureOnReader++;
      }
    } catch (e) {
      errors.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
    } finally {
      await c.end().catch(() => {});
    }
  };
  const load = [session(1, false), session(2, false), session(3, true), session(4, true), reader(), reader()];
  const flips: CutoverState[] = ['READS_100PCT_AURORA', 'READS_10PCT_AURORA', 'SOURCE_PRIMARY', 'READS_50PCT_AURORA', 'SHADOW_WRITES', 'READS_100PCT_AURORA'];
  const flipAll = async () => {
    for (const s of flips) {
      await proxy.setState(s, 'readers ledger test');
      await sleep(250);
    }
  };
  await until('reads on the reader', () => pureOnReader > 10, 20_000, 20);
  await flipAll();
  // The seed's "replica lag < 1 s p99", read from the reader lag histogram under this load (before the pause).
  const lag = await lagQuantile(0.99);
  t.ok(lag.count > 0, `reader lag p99 under load: <= ${lag.le} s (${lag.count} samples)`);
  t.ok(lag.le <= 1, 'reader lag p99 under 1 s');
  await standby.pauseReplay(true);
  await flipAll();
  await standby.pauseReplay(false);
  await flipAll();
  const before = pureOnReader;
  await standby.kill();
  await flipAll();
  stop = true;
  await Promise.all(load);

  t.same(errors, [], 'no client saw an error');
  t.same(missedOn, [], `0 of ${reads} reads after a write missed the row (${onReader} of them on the reader)`);
  t.ok(pureOnReader > 0 && before > 0, `reads reached the reader (${pureOnReader} of ${pureReads} plain reads)`);
  t.ok(acked.length > 100, `${acked.length} acknowledged writes`);
  const rows = (await query(source.url(), 'select client, seq from ledger')).rows as { client: number; seq: number }[];
  const have = new Set(rows.map((r) => `${r.client}:${r.seq}`));
  t.same(acked.filter(([c, s]) => !have.has(`${c}:${s}`)), [], 'every acknowledged write is on the source');
  await waitCaughtUp(source, 30_000);
  t.equal(await tableChecksum(target.url(), 'ledger', 'id'), await tableChecksum(source.url(), 'ledger', 'id'), 'source and target hold the same rows');
  t.comment(`reader statements ${proxy.proxy.stats.readerStatements[0] ?? 0}, faults ${proxy.proxy.stats.readerFaults}, fallbacks ${proxy.proxy.stats.readerFallbacks}, connect failures ${proxy.proxy.stats.readerConnectFailures}`);
});
