/**
 * Target readers through the real proxy (issue 15 item 2): PostgreSQL 14 → logical → PostgreSQL 15 (the
 * target primary) → physical hot standby (a reader, as an Aurora reader instance), `--target-readers` naming
 * it. Reads reach the reader (pg_is_in_recovery() through the proxy), with the session's SETs and prepared
 * statements replayed there; writes never do. A session's insert-then-select misses 0 of N while the reader's
 * replay is paused (its reads go elsewhere) and its reads come back once replay resumes; the staleness bound
 * skips a lagging reader; a reader killed under load costs no client an error: reads move to the primary.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy, type ProxyHandle } from '../helpers/proxy.js';
import { query, replicate } from '../helpers/replication.js';
import { startStandby } from '../helpers/standby.js';
import { sleep, until } from '../helpers/wait.js';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
await query(source.url(), 'create table ryw (id bigint generated always as identity primary key, v text not null)');
await query(source.url(), 'create table kv (k text primary key, v text not null)');
await replicate(source, target);
const standby = await startStandby(t, target);
const readers = `${standby.host}:${standby.port}`;
const proxy = await startProxy(t, source.url(), target.url(), { targetReaders: readers, state: 'READS_100PCT_AURORA' });

/** Where a read ran: the reader (a standby), the target primary or the source. */
const WHERE = "select case when pg_is_in_recovery() then 'reader' when current_setting('server_version_num')::int >= 150000 then 'primary' else 'source' end as at";

async function client(tt: { teardown(fn: () => unknown): void }, p: ProxyHandle): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: p.url() });
  c.on('error', () => {}); // a proxy stopped under it
  await c.connect();
  tt.teardown(() => c.end().catch(() => {}));
  return c;
}

async function tally(c: pg.Client, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const at = (await c.query(WHERE)).rows[0].at as string;
    out[at] = (out[at] ?? 0) + 1;
  }
  return out;
}

t.test('reads reach the reader, with the session state replayed there; writes never do', async (t) => {
  const c = await client(t, proxy);
  const before = proxy.proxy.stats.readerStatements[0] ?? 0;
  const seen = await tally(c, 50);
  t.equal(seen.reader, 50, `a session that does not write reads from the reader (${JSON.stringify(seen)})`);
  t.ok((proxy.proxy.stats.readerStatements[0] ?? 0) - before >= 50, 'counted per reader');
  await c.query("set statement_timeout = '4321ms'");
  const st = (await c.query(`select current_setting('statement_timeout') as st, pg_is_in_recovery() as r`)).rows[0];
  t.same(st, { st: '4321ms', r: true }, 'a SET made on the writer is replayed on the reader link');
  for (let i = 0; i < 5; i++) {
    const r = (await c.query({ name: 'on-reader', text: 'select pg_is_in_recovery() as r, $1::int as x', values: [i] })).rows[0];
    t.same(r, { r: true, x: i }, `prepared statement run ${i} on the reader`);
  }
  const w = (await c.query("insert into ryw (v) values ('w') returning id")).rows[0].id;
  t.ok(w, 'a write through the proxy succeeds (on the source; a standby would refuse it)');
  await c.query('begin read only');
  const inTx = (await c.query(WHERE)).rows[0].at;
  await c.query('commit');
  t.not(inTx, 'reader', `a transaction never runs on a reader (${inTx})`);
  const m = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  t.match(m, /pgcutover_target_reader_lag_seconds_bucket\{le="1",reader="127\.0\.0\.1:\d+"\} [1-9]|pgcutover_target_reader_lag_seconds_bucket\{reader="127\.0\.0\.1:\d+",le="1"\} [1-9]/, 'reader lag histogram exported');
  t.match(m, /pgcutover_target_reader_statements_total\{reader="127\.0\.0\.1:\d+"\} [1-9]/, 'reader statements exported');
});

t.test('a read a hot standby refuses (serializable mode) runs on the target primary: the client sees its result', async (t) => {
  const c = await client(t, proxy);
  await c.query("set default_transaction_isolation = 'serializable'");
  const fallbacks = proxy.proxy.stats.readerFallbacks;
  const r = await c.query(`${WHERE}, current_setting('default_transaction_isolation') as iso`);
  t.same(r.rows[0], { at: 'primary', iso: 'serializable' }, 'answered by the target primary, no 0A000');
  t.ok(proxy.proxy.stats.readerFallbacks > fallbacks, 'counted as a reader fallback');
});

t.test('insert-then-select misses 0 of N with the reader paused; reads return when it resumes', async (t) => {
  const c = await client(t, proxy);
  const other = await client(t, proxy);
  await standby.pauseReplay(true);
  t.teardown(() => standby.pauseReplay(false).catch(() => {}));
  let misses = 0;
  const at: Record<string, number> = {};
  for (let i = 0; i < 300; i++) {
    const id = (await c.query({ text: 'insert into ryw (v) values ($1) returning id', values: [`p${i}`] })).rows[0].id;
    // Every tenth read comes a moment later, once the target primary has applied the write: it goes there.
    if (i % 10 === 0) await sleep(150);
    const r = await c.query({ text: `select v, (${WHERE}) as at from ryw where id = $1`, values: [id] });
    if (r.rowCount !== 1) misses++;
    else at[r.rows[0].at] = (at[r.rows[0].at] ?? 0) + 1;
  }
  t.equal(misses, 0, `0 of 300 reads missed their own row (${JSON.stringify(at)})`);
  t.notOk(at.reader, 'none of them read from the paused reader');
  t.ok((at.primary ?? 0) > 0, 'reads the target primary had applied went there');
  const still = await tally(other, 20);
  t.equal(still.reader, 20, 'a session that did not write still reads from it (no staleness bound)');
  await standby.pauseReplay(false);
  let back = 0;
  let missesAfter = 0;
  await until('reads after writes return to the reader', async () => {
    const id = (await c.query({ text: 'insert into ryw (v) values ($1) returning id', values: ['resumed'] })).rows[0].id;
    await sleep(150);
    const r = await c.query({ text: `select v, (${WHERE}) as at from ryw where id = $1`, values: [id] });
    if (r.rowCount !== 1) missesAfter++;
    else if (r.rows[0].at === 'reader') back++;
    return back >= 3;
  }, 30_000, 20);
  t.equal(missesAfter, 0, 'and none missed its row meanwhile');
});

t.test('the staleness bound skips a lagging reader', async (t) => {
  const bounded = await startProxy(t, source.url(), target.url(), { targetReaders: readers, state: 'READS_100PCT_AURORA', maxReadStalenessMs: 300 });
  const c = await client(t, bounded);
  await until('the reader within the bound serves reads', async () => (await c.query(WHERE)).rows[0].at === 'reader', 20_000, 20);
  // WAL must move for a paused reader to fall behind: a writer on the source meanwhile.
  let writing = true;
  const writer = (async () => {
    while (writing) {
      await query(source.url(), "insert into ryw (v) values ('tick')");
      await sleep(20);
    }
  })();
  await standby.pauseReplay(true);
  t.teardown(() => standby.pauseReplay(false).catch(() => {}));
  await until('the reader is past the bound', () => (bounded.proxy.stats.readerLagMs[readers] ?? 0) > 600, 20_000, 20);
  const seen = await tally(c, 40);
  t.notOk(seen.reader, `no read went to the reader while it trailed by more than 300 ms (${JSON.stringify(seen)})`);
  await standby.pauseReplay(false);
  await until('reads return once it is back within the bound', async () => (await c.query(WHERE)).rows[0].at === 'reader', 20_000, 20);
  writing = false;
  await writer;
});

t.test('from WRITES_TO_AURORA on, reads go to the readers too; a write made before the writer changed is read back', async (t) => {
  const c = await client(t, proxy);
  const other = await client(t, proxy);
  await standby.pauseReplay(true);
  t.teardown(() => standby.pauseReplay(false).catch(() => {}));
  // Written on the source, applied by the target primary, not by the paused reader; then the writer changes.
  await c.query("insert into kv (k, v) values ('before', 'source')");
  await until('the target primary has it', async () => (await query(target.url(), "select 1 from kv where k = 'before'")).rowCount === 1, 20_000, 20);
  await proxy.setState('WRITES_TO_AURORA', 'test');
  t.teardown(() => proxy.setState('READS_100PCT_AURORA', 'test'));
  const r = await c.query(`select v, (${WHERE}) as at from kv where k = 'before'`);
  t.equal(r.rowCount, 1, `the write made before the writer changed is read back (${r.rows[0]?.at})`);
  let misses = 0;
  const at: Record<string, number> = {};
  for (let i = 0; i < 100; i++) {
    await c.query({ text: 'insert into kv (k, v) values ($1, $2)', values: [`w${i}`, 'target'] });
    if (i % 10 === 0) await sleep(150);
    const q = await c.query({ text: `select v, (${WHERE}) as at from kv where k = $1`, values: [`w${i}`] });
    if (q.rowCount !== 1) misses++;
    else at[q.rows[0].at] = (at[q.rows[0].at] ?? 0) + 1;
  }
  t.equal(misses, 0, `0 of 100 reads after writes on the target missed their row, reader paused (${JSON.stringify(at)})`);
  t.notOk(at.reader, 'none read from the paused reader');
  await standby.pauseReplay(false);
  let back = 0;
  let missesAfter = 0;
  await until('reads after writes reach the reader', async () => {
    const k = `r${back}-${Math.random()}`;
    await c.query({ text: 'insert into kv (k, v) values ($1, $2)', values: [k, 'target'] });
    await sleep(150);
    const q = await c.query({ text: `select v, (${WHERE}) as at from kv where k = $1`, values: [k] });
    if (q.rowCount !== 1) missesAfter++;
    else if (q.rows[0].at === 'reader') back++;
    return back >= 3;
  }, 30_000, 20);
  t.equal(missesAfter, 0, 'none missed meanwhile');
  const seen = await tally(other, 20);
  t.ok((seen.reader ?? 0) > 0, `a session that does not write reads from the reader (${JSON.stringify(seen)})`);
  await proxy.setState('READS_100PCT_AURORA', 'test');
});

t.test('a reader killed mid-load: no client error, reads move to the primary', async (t) => {
  let stop = false;
  let errors = 0;
  const messages: string[] = [];
  let misses = 0;
  const at: Record<string, number> = {};
  const loop = async (k: number) => {
    const c = await client(t, proxy);
    for (let i = 0; !stop; i++) {
      try {
        if (k % 2 === 0) {
          const r = await c.query(`${WHERE}, pg_sleep(0.01)`);
          at[r.rows[0].at] = (at[r.rows[0].at] ?? 0) + 1;
        } else {
          const id = (await c.query({ text: 'insert into ryw (v) values ($1) returning id', values: [`k${k}`] })).rows[0].id;
          const r = await c.query({ text: 'select v from ryw where id = $1', values: [id] });
          if (r.rowCount !== 1) misses++;
        }
      } catch (e) {
        errors++;
        messages.push(`${(e as { code?: string }).code}: ${(e as Error).message}`);
        return;
      }
    }
  };
  const loops = [0, 1, 2, 3, 4, 5].map(loop);
  await until('reads on the reader under load', () => (at.reader ?? 0) > 20, 20_000, 10);
  const faultsBefore = proxy.proxy.stats.backendFaults.target;
  await standby.kill();
  const readerBefore = at.reader ?? 0;
  await until('reads go on elsewhere', () => (at.primary ?? 0) > 30, 20_000, 10);
  stop = true;
  await Promise.all(loops);
  t.equal(errors, 0, `no client saw an error (${messages.slice(0, 3).join('; ')})`);
  t.equal(misses, 0, 'no read after a write missed its row');
  t.equal(at.reader ?? 0, readerBefore, `no read reached the killed reader afterwards (${JSON.stringify(at)})`);
  t.equal(proxy.proxy.stats.backendFaults.target, faultsBefore, 'a reader lost is not counted against the target (the breaker)');
  t.ok(proxy.proxy.stats.readerFaults + proxy.proxy.stats.readerFallbacks + proxy.proxy.stats.readerConnectFailures > 0, 'it is counted as a reader fault');
});
