/**
 * Target readers against real servers (issue 15 item 2): PostgreSQL 14 → logical → PostgreSQL 15 → physical
 * standby (the reader). Whenever the sampled positions say the reader has applied a session's commit, the
 * row is there on the reader (0 misses); a reader whose replay is paused is not used for that session while
 * the target primary is; a reader that stops answering is marked down.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { query, replicate } from '../helpers/replication.js';
import { startStandby } from '../helpers/standby.js';
import { until } from '../helpers/wait.js';
import { FreshnessBook, newSessionFreshness, readerFresh } from '../../src/router/freshness.js';
import { covers, newReaderView } from '../../src/router/readers.js';
import { FreshnessSampler } from '../../src/replication/freshness-sampler.js';
import { ReaderSampler, walEnd } from '../../src/replication/reader-sampler.js';

t.test('walEnd: an insert position just past an empty page\'s header is the page\'s start (what a caught-up standby reports)', async (t) => {
  const B = 8192n;
  const S = 16n * 1024n * 1024n;
  t.equal(walEnd(0x3000028n, B, S), 0x3000000n, 'segment start: 40-byte long header');
  t.equal(walEnd(0x3002018n, B, S), 0x3002000n, 'page start: 24-byte short header');
  t.equal(walEnd(0x3002028n, B, S), 0x3002028n, '40 bytes into an ordinary page: the rest of a record, kept');
  t.equal(walEnd(0x3002100n, B, S), 0x3002100n, 'mid-page: as is');
});

t.test('reader positions through the chain: never ahead of what the reader really has', async (t) => {
  const source = await startPg(t, 14, { logical: true });
  const target = await startPg(t, 15, { logical: true });
  await query(source.url(), 'create table ryw (id bigserial primary key, v text)');
  await replicate(source, target);
  const standby = await startStandby(t, target);

  const main = new FreshnessBook();
  const reader = newReaderView('r1');
  const lags: (number | null)[] = [];
  const readers = new ReaderSampler({
    readers: [reader],
    readerControl: [{ connectionString: standby.url() }],
    targetControl: { connectionString: target.url() },
    onLag: (_n, ms) => void lags.push(ms),
  });
  const sampler = new FreshnessSampler({
    book: main,
    writer: () => 'source',
    control: { source: { connectionString: source.url() }, target: { connectionString: target.url() } },
    everyMs: 10,
    afterSample: (x) => readers.afterSample(x),
  });
  sampler.start();
  t.teardown(async () => {
    await sampler.stop();
    await readers.stop();
  });

  const writer = new pg.Client({ connectionString: source.url() });
  await writer.connect();
  const onReader = new pg.Client({ connectionString: standby.url() });
  await onReader.connect();
  onReader.on('error', () => {}); // the last subtest stops the standby under it
  t.teardown(async () => {
    await writer.end();
    await onReader.end();
  });

  await t.test('every position the sampler reports for the reader holds the session\'s row there', async (t) => {
    let misses = 0;
    const n = 60;
    for (let i = 0; i < n; i++) {
      const s = newSessionFreshness();
      const id = (await writer.query('insert into ryw (v) values ($1) returning id', [`r${i}`])).rows[0].id as string;
      main.commitSeen(s); // the write's ReadyForQuery arrived
      await until('reader covers the commit', () => covers(s, main, reader.book, 'source', Date.now(), 0), 20_000, 2);
      const r = await onReader.query('select 1 from ryw where id = $1', [id]);
      if (r.rowCount !== 1) misses++;
    }
    t.equal(misses, 0, `${n} writes: the reader had each one whenever the sampler said so`);
    t.ok(lags.some((x) => x !== null), 'lag readings reach the histogram');
  });

  await t.test('a paused reader is not used for the session while the target primary is', async (t) => {
    await standby.pauseReplay(true);
    t.teardown(() => standby.pauseReplay(false).catch(() => {}));
    const s = newSessionFreshness();
    await writer.query("insert into ryw (v) values ('paused')");
    main.commitSeen(s);
    await until('target primary applied it', () => readerFresh(s, main, 'source', Date.now(), 0), 20_000, 5);
    const seqNow = main.begin(); // a few more readings, so the reader's book has moved past the commit
    main.add({ ...main.last!, seq: seqNow });
    await until('two more readings', () => (reader.book.last?.seq ?? 0) > seqNow + 2, 10_000, 5);
    t.notOk(covers(s, main, reader.book, 'source', Date.now(), 0), 'the paused reader does not have the commit');
    await standby.pauseReplay(false);
    await until('reader caught up', () => covers(s, main, reader.book, 'source', Date.now(), 0), 20_000, 5);
    const r = await onReader.query("select 1 from ryw where v = 'paused'");
    t.equal(r.rowCount, 1, 'and once it says so, the row is there');
  });

  await t.test('a reader that stops answering is marked down (the router skips it)', async (t) => {
    await standby.stop();
    await until('marked down', () => !reader.up, 20_000, 10);
    t.notOk(reader.up, 'down after its sample failed');
  });
});
