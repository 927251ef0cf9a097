/**
 * Two target readers (physical standbys of the embedded PG15 target) behind one --target-readers list: reads
 * spread over both; a reader whose replay is paused is skipped for the reads that need a session's write
 * while the other takes them; when that other one is killed, those reads go to the target primary and no
 * client sees an error.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query, replicate } from '../helpers/replication.js';
import { startStandby } from '../helpers/standby.js';
import { sleep, until } from '../helpers/wait.js';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
await query(source.url(), 'create table ryw (id bigint generated always as identity primary key, v text not null)');
await replicate(source, target);
const a = await startStandby(t, target);
const b = await startStandby(t, target);
const proxy = await startProxy(t, source.url(), target.url(), { targetReaders: `${a.host}:${a.port},${b.host}:${b.port}`, state: 'READS_100PCT_AURORA' });

/** Which server ran a read: a reader's port, 'primary' or 'source'. */
const WHERE = "case when pg_is_in_recovery() then inet_server_port()::text when current_setting('server_version_num')::int >= 150000 then 'primary' else 'source' end";

t.test('reads spread over both readers; a paused one is skipped for reads after writes, a killed one for all', async (t) => {
  const c = new pg.Client({ connectionString: proxy.url() });
  const other = new pg.Client({ connectionString: proxy.url() });
  c.on('error', () => {});
  other.on('error', () => {});
  await c.connect();
  await other.connect();
  t.teardown(() => Promise.all([c.end().catch(() => {}), other.end().catch(() => {})]));
  const tally = async (n: number) => {
    const out: Record<string, number> = {};
    for (let i = 0; i < n; i++) {
      const at = (await other.query(`select ${WHERE} as at`)).rows[0].at as string;
      out[at] = (out[at] ?? 0) + 1;
    }
    return out;
  };
  const spread = await tally(100);
  t.ok((spread[String(a.port)] ?? 0) > 10 && (spread[String(b.port)] ?? 0) > 10, `both readers take reads (${JSON.stringify(spread)})`);

  await a.pauseReplay(true);
  t.teardown(() => a.pauseReplay(false).catch(() => {}));
  const readBack = async (n: number) => {
    const at: Record<string, number> = {};
    let misses = 0;
    for (let i = 0; i < n; i++) {
      const id = (await c.query({ text: 'insert into ryw (v) values ($1) returning id', values: ['x'] })).rows[0].id;
      await sleep(i % 2 === 0 ? 700 : 0); // half the reads come once a live reader may have the write
      const r = await c.query({ text: `select v, (${WHERE}) as at from ryw where id = $1`, values: [id] });
      if (r.rowCount !== 1) misses++;
      else at[r.rows[0].at] = (at[r.rows[0].at] ?? 0) + 1;
    }
    return { at, misses };
  };
  const paused = await readBack(20);
  t.equal(paused.misses, 0, `0 of 20 reads after writes missed with reader ${a.port} paused (${JSON.stringify(paused.at)})`);
  t.notOk(paused.at[String(a.port)], 'none on the paused reader');
  t.ok((paused.at[String(b.port)] ?? 0) > 0, 'the live reader took some');

  await b.kill();
  await until('reads leave the killed reader', async () => (await other.query(`select ${WHERE} as at`)).rows[0].at !== String(b.port), 10_000, 20);
  const after = await readBack(10);
  t.equal(after.misses, 0, `0 of 10 missed with one reader paused and the other killed (${JSON.stringify(after.at)})`);
  t.notOk(after.at[String(a.port)] ?? after.at[String(b.port)], 'none on either reader');
  const plain = await tally(20);
  t.notOk(plain[String(b.port)], `plain reads avoid the killed reader (${JSON.stringify(plain)})`);
});
