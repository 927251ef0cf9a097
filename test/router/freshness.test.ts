/**
 * Read-your-writes by LSN, the pure part (src/router/freshness.ts) with a fake clock: a session's read goes
 * to the reader only once the reader has applied the writer position sampled after the session's commit;
 * the staleness bound; writer changes; samples lost or out of the ring.
 */
import t from 'tap';
import { FreshnessBook, newSessionFreshness, readerFresh } from '../../src/router/freshness.js';
import { routeUnit } from '../../src/router/route.js';

function sample(book: FreshnessBook, writerLsn: number, readerLsn: number | null, at: number, writer: 'source' | 'target' = 'source') {
  const seq = book.begin();
  book.add({ seq, writer, writerLsn: BigInt(writerLsn), readerLsn: readerLsn === null ? null : BigInt(readerLsn), at });
  return seq;
}

t.test('a session that never wrote reads from the reader; one that wrote waits for the sample after its commit', async (t) => {
  const book = new FreshnessBook();
  const s = newSessionFreshness();
  t.ok(readerFresh(s, book, 'source', 0, 0), 'no write: fresh, even before any sample');
  sample(book, 100, 100, 0);
  const inflight = book.begin(); // a sample's query is on its way when the write's ReadyForQuery arrives
  book.commitSeen(s);
  t.notOk(readerFresh(s, book, 'source', 1, 0), 'no sample taken after the commit yet: writer');
  book.add({ seq: inflight, writer: 'source', writerLsn: 150n, readerLsn: 150n, at: 2 });
  t.notOk(readerFresh(s, book, 'source', 2, 0), 'a sample begun before the commit does not cover it');
  t.ok(true, 'a sample begun before the commit does not cover it:');
  sample(book, 200, 150, 3); // covers both commits: writer at 200, reader at 150
  t.notOk(readerFresh(s, book, 'source', 3, 0), 'reader behind the commit: writer');
  t.equal(s.lsn, 200n, 'the session holds the first covering position');
  sample(book, 260, 199, 4);
  t.notOk(readerFresh(s, book, 'source', 4, 0), 'still behind');
  sample(book, 300, 200, 5); // the writer moved on; the reader reached the session's position
  t.ok(readerFresh(s, book, 'source', 5, 0), 'reader reached it: the read may go there');
  t.same(s, { need: 0, lsn: null, done: { lsn: 200n, writer: 'source' } }, 'and the session no longer waits (its commit position kept for the target readers)');
});

t.test('unknown reader position keeps reads after writes on the writer', async (t) => {
  const book = new FreshnessBook();
  const s = newSessionFreshness();
  book.commitSeen(s);
  sample(book, 100, null, 0);
  t.notOk(readerFresh(s, book, 'source', 0, 0));
  t.equal(book.staleness(0), null);
});

t.test('staleness bound: now minus the time of the newest writer position the reader has reached', async (t) => {
  const book = new FreshnessBook();
  const s = newSessionFreshness();
  sample(book, 100, 50, 0);
  t.equal(book.staleness(0), null, 'the reader has not reached any sampled position yet');
  t.notOk(readerFresh(s, book, 'source', 0, 1000), 'unknown staleness: not fresh under a bound');
  t.ok(readerFresh(s, book, 'source', 0, 0), 'no bound: fresh');
  sample(book, 200, 100, 10); // reader reached the position sampled at t=0
  t.equal(book.staleness(10), 10);
  t.equal(book.staleness(70), 70, 'grows with the clock while nothing new is applied');
  t.ok(readerFresh(s, book, 'source', 60, 60));
  t.notOk(readerFresh(s, book, 'source', 61, 60), 'beyond the bound');
  sample(book, 200, 200, 80);
  t.equal(book.staleness(80), 0, 'caught up');
});

t.test('a writer change releases sessions whose write went to the old writer', async (t) => {
  const book = new FreshnessBook();
  const s = newSessionFreshness();
  book.commitSeen(s);
  sample(book, 100, 10, 0, 'source');
  // A writer change waits until the new writer has applied the old one's position: the write is on both.
  t.ok(readerFresh(s, book, 'target', 1, 0), 'the sample covering the write is of the old writer: no wait');
  t.same(s, { need: 0, lsn: null, done: null });
});

t.test('a sample that fell out of the ring or failed is replaced by a later one', async (t) => {
  const book = new FreshnessBook();
  const s = newSessionFreshness();
  book.commitSeen(s);
  book.begin(); // this query failed: never added
  for (let i = 1; i <= 2000; i++) sample(book, 1000 + i, 1500, i); // the reader stuck at 1500
  t.notOk(readerFresh(s, book, 'source', 2000, 0), 'the reader is behind the oldest kept sample');
  t.ok(s.lsn !== null && s.lsn > 1500n, `covered by the oldest later sample kept (${s.lsn})`);
  book.add({ seq: book.begin(), writer: 'source', writerLsn: 4000n, readerLsn: 3500n, at: 3000 });
  t.ok(readerFresh(s, book, 'source', 3000, 0), 'the reader passed it');
});

t.test('routeUnit asks for freshness only for reads the split would send to the non-writer', async (t) => {
  let asked = 0;
  let redirected = 0;
  const view = (fresh: boolean) => ({ pinnedTo: null, split: 'random' as const, sessionPoint: 0, fresh: () => (asked++, fresh), redirected: () => void redirected++ });
  const p = { readPercent: 50, writesTo: 'source' as const };
  t.equal(routeUnit({ write: false, pins: false }, p, view(false), 0, 0.9), 'source', 'split picks the writer: not asked');
  t.equal(asked, 0);
  t.equal(routeUnit({ write: false, pins: false }, p, view(false), 0, 0.1), 'source', 'split picks the reader, not fresh: writer');
  t.equal(redirected, 1);
  t.equal(routeUnit({ write: false, pins: false }, p, view(true), 0, 0.1), 'target');
  t.equal(routeUnit({ write: false, pins: false, hint: 'target' }, p, view(false), 0, 0.9), 'source', 'a hint does not skip freshness');
  t.equal(routeUnit({ write: true, pins: false }, p, view(true), 0, 0.1), 'source', 'writes go to the writer');
});
