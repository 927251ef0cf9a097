/**
 * Target readers, the pure part (src/router/readers.ts): the chain from the target's WAL position to what it
 * had applied of the writer; a reader serves a session only once it has applied the session's last commit,
 * even after the target primary cleared the session's wait; the staleness bound per reader; the pick.
 */
import t from 'tap';
import { FreshnessBook, newSessionFreshness, readerFresh } from '../../src/router/freshness.js';
import { ChainMap, covers, guardCovers, newReaderView, pickReader, ReaderChoice } from '../../src/router/readers.js';

t.test('chain: a reader has applied what the target had applied before the target position it replayed', async (t) => {
  const c = new ChainMap();
  t.equal(c.appliedAt(10n), null, 'nothing known');
  c.add(1000n, 50n);
  c.add(1100n, 80n);
  c.add(1100n, null); // an unknown reading adds nothing
  c.add(1300n, 120n);
  t.equal(c.appliedAt(999n), null, 'before the first reading: unknown');
  t.equal(c.appliedAt(1000n), 50n);
  t.equal(c.appliedAt(1250n), 80n, 'between readings: the earlier one');
  t.equal(c.appliedAt(5000n), 120n, 'past the last: the last');
  c.add(10n, 200n);
  t.equal(c.appliedAt(9n), null, 'a target position going backwards (a new target) starts the chain again');
  t.equal(c.appliedAt(10n), 200n);
});

function tick(main: FreshnessBook, readers: [FreshnessBook, number | null][], writerLsn: number, primaryLsn: number, at: number): number {
  const seq = main.begin();
  main.add({ seq, writer: 'source', writerLsn: BigInt(writerLsn), readerLsn: BigInt(primaryLsn), at });
  for (const [book, lsn] of readers) {
    book.add({ seq, writer: 'source', writerLsn: BigInt(writerLsn), readerLsn: lsn === null ? null : BigInt(lsn), at });
  }
  return seq;
}

t.test('a reader trailing the target primary keeps the session off it after the primary cleared its wait', async (t) => {
  const main = new FreshnessBook();
  const r1 = newReaderView('r1');
  const s = newSessionFreshness();
  tick(main, [[r1.book, 100]], 100, 100, 0);
  t.ok(covers(s, main, r1.book, 'source', 0, 0), 'no write yet: any reader');
  main.commitSeen(s);
  t.notOk(covers(s, main, r1.book, 'source', 1, 0), 'no sample after the commit yet');
  tick(main, [[r1.book, 150]], 200, 150, 2);
  t.notOk(covers(s, main, r1.book, 'source', 2, 0), 'reader behind the commit (200)');
  tick(main, [[r1.book, 180]], 250, 220, 3);
  t.ok(readerFresh(s, main, 'source', 3, 0), 'the target primary has applied it: its wait clears');
  t.equal(s.need, 0);
  t.notOk(covers(s, main, r1.book, 'source', 3, 0), 'but the reader has not: still not this reader');
  tick(main, [[r1.book, 200]], 260, 260, 4);
  t.ok(covers(s, main, r1.book, 'source', 4, 0), 'the reader reached 200');
  main.commitSeen(s);
  tick(main, [[r1.book, 260]], 300, 300, 5);
  t.notOk(covers(s, main, r1.book, 'source', 5, 0), 'a later commit (300) waits again');
});

t.test('staleness bound per reader, and unknown positions', async (t) => {
  const main = new FreshnessBook();
  const r = newReaderView('r');
  const s = newSessionFreshness();
  tick(main, [[r.book, null]], 100, 100, 0);
  t.ok(covers(s, main, r.book, 'source', 0, 0), 'no write and no bound: fine even when unknown');
  t.notOk(covers(s, main, r.book, 'source', 0, 1000), 'unknown staleness fails a bound');
  tick(main, [[r.book, 100]], 200, 200, 10);
  t.ok(covers(s, main, r.book, 'source', 60, 60), 'fresh as of t=0, 60 ms ago');
  t.notOk(covers(s, main, r.book, 'source', 61, 60), 'beyond the bound');
});

t.test('pick: uniformly among the readers that are up and fit; -1 when none', async (t) => {
  const rs = [newReaderView('a'), newReaderView('b'), newReaderView('c')];
  const all = () => true;
  t.equal(pickReader(rs, all, 0), 0);
  t.equal(pickReader(rs, all, 0.5), 1);
  t.equal(pickReader(rs, all, 0.99), 2);
  rs[1].up = false;
  t.equal(pickReader(rs, all, 0.6), 2, 'a reader that is down is skipped');
  t.equal(pickReader(rs, (r) => r.name === 'a', 0.99), 0);
  t.equal(pickReader(rs, () => false, 0.3), -1);
  t.equal(pickReader([], all, 0.3), -1);
});

t.test('choice: a reader a session saw fail is backed off (fake clock); the session\'s commit and the flip guard hold per reader', async (t) => {
  const main = new FreshnessBook();
  const a = newReaderView('a');
  const b = newReaderView('b');
  const choice = new ReaderChoice([a, b], 2000);
  const s = newSessionFreshness();
  const flip = newSessionFreshness();
  tick(main, [[a.book, 100], [b.book, 100]], 100, 100, 0);
  t.equal(choice.pick(s, [flip], main, 'source', 0, 0, 0.9), 1, 'both fit: the draw picks b');
  choice.failed(1, 10);
  t.equal(choice.pick(s, [flip], main, 'source', 10, 0, 0.9), 0, 'b backed off: a');
  t.equal(choice.pick(s, [flip], main, 'source', 2009, 0, 0.9), 0, 'still within the back-off');
  t.equal(choice.pick(s, [flip], main, 'source', 2010, 0, 0.9), 1, 'back-off over');
  t.equal(choice.pick(s, [flip], null, 'source', 2010, 0, 0.9), 1, 'without read-your-writes: by health alone');
  main.commitSeen(s);
  tick(main, [[a.book, 150], [b.book, 250]], 200, 200, 2020);
  t.ok(readerFresh(s, main, 'source', 2020, 0), 'the target primary has the commit (200)');
  t.equal(choice.pick(s, [flip], main, 'source', 2020, 0, 0), 1, 'only b has it');
  a.up = false;
  b.up = false;
  t.equal(choice.pick(s, [flip], main, 'source', 2020, 0, 0), -1, 'none up: the target primary');
  a.up = b.up = true;
  main.commitSeen(flip); // the state started splitting reads: every read waits once for the writer position then
  tick(main, [[a.book, 250], [b.book, 300]], 300, 300, 2030);
  t.ok(readerFresh(flip, main, 'source', 2030, 0), 'the flip cleared at the primary');
  const fresh = newSessionFreshness();
  t.equal(choice.pick(fresh, [flip], main, 'source', 2030, 0, 0), 1, 'a session with no write still waits for the flip on each reader: only b (300)');
});

t.test('writer guard: armed as the writer changes, a sample still in the old writer\'s terms arms it again; a reader passes it once it has the new writer\'s position', async (t) => {
  const main = new FreshnessBook();
  const r = newReaderView('r');
  const g = newSessionFreshness();
  const at = (writer: 'source' | 'target', w: number, rl: number, ms: number) => {
    const seq = main.begin();
    main.add({ seq, writer, writerLsn: BigInt(w), readerLsn: BigInt(w), at: ms });
    r.book.add({ seq, writer, writerLsn: BigInt(w), readerLsn: BigInt(rl), at: ms });
  };
  at('source', 100, 100, 0);
  t.ok(guardCovers(g, main, r.book, 'target', 0), 'not armed: passes');
  main.commitSeen(g); // the writer became the target
  t.notOk(guardCovers(g, main, r.book, 'target', 1), 'no sample since');
  const before = g.need;
  at('source', 110, 110, 2); // taken as the writer changed, still labelled source
  t.notOk(guardCovers(g, main, r.book, 'target', 2), 'an old-writer sample does not count');
  t.ok(g.need > before, 'the guard waits for the next sample instead');
  at('target', 5000, 4000, 3);
  t.notOk(guardCovers(g, main, r.book, 'target', 3), 'reader behind the new writer position');
  at('target', 5100, 5000, 4);
  t.ok(guardCovers(g, main, r.book, 'target', 4), 'reader reached it');
});
