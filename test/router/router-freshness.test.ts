/**
 * The Router's read-your-writes bookkeeping with the real classifier and a fed FreshnessBook (no sockets):
 * a write's commit makes the session's reads wait for the reader; a unit of SETs alone does not; a change
 * from a one-backend state (whose units were forwarded unclassified) to a splitting one makes reads wait once
 * for the reader to apply the position sampled after the change, unless no reader position is visible.
 */
import t from 'tap';
import { initClassifier, createClassifier } from '../../src/router/classify.js';
import { FreshnessBook } from '../../src/router/freshness.js';
import { Router, type Frame } from '../../src/proxy/router-glue.js';
import { queryFrame } from '../../src/protocol/frontend-encode.js';
import type { RoutePolicy } from '../../src/router/route.js';
import type { BackendLink } from '../../src/proxy/backend-link.js';

await initClassifier();
const q = (sql: string): Frame[] => {
  const buf = queryFrame(sql);
  return [{ type: buf[0], buf, start: 0, end: buf.length }];
};
const link = {} as BackendLink;

function setup() {
  let policy: RoutePolicy = { readPercent: 0, writesTo: 'source' };
  const book = new FreshnessBook();
  let redirected = 0;
  const router = new Router({
    policy: () => policy,
    classifier: createClassifier(),
    freshness: { book, maxStalenessMs: 0 },
    onRedirected: () => void redirected++,
    split: 'random',
    rand: () => 0.1,
  });
  const sample = (w: number, r: number | null) => book.add({ seq: book.begin(), writer: 'source', writerLsn: BigInt(w), readerLsn: r === null ? null : BigInt(r), at: 0 });
  return { router, book, sample, set: (p: RoutePolicy) => void (policy = p), redirected: () => redirected };
}

t.test('a commit holds the session on the writer until the reader applied it; SETs alone do not', async (t) => {
  const { router, sample, set, redirected } = setup();
  set({ readPercent: 100, writesTo: 'source' });
  const s = router.newSession('a');
  sample(100, 100);
  t.equal(router.route(s, q('select 1')), 'target');
  t.equal(router.route(s, q("insert into t values (1)")), 'source');
  router.unitDone(s, link);
  t.equal(router.route(s, q('select 1')), 'source', 'no sample after the commit yet');
  sample(200, 150);
  t.equal(router.route(s, q('select 1')), 'source', 'reader behind');
  sample(260, 200);
  t.equal(router.route(s, q('select 1')), 'target', 'reader reached the commit');
  t.equal(redirected(), 2);
  t.equal(router.route(s, q("set application_name = 'x'")), 'source');
  router.unitDone(s, link);
  t.equal(router.route(s, q('select 1')), 'target', 'a SET changed no data');
  t.equal(router.route(s, q("set application_name = 'x'; insert into t values (2)")), 'source');
  router.unitDone(s, link);
  t.equal(router.route(s, q('select 1')), 'source', 'a SET with an INSERT did');
});

t.test('a change into a splitting state waits once for the reader, unless its position is unknown', async (t) => {
  const { router, sample, set } = setup();
  const s = router.newSession('b');
  t.equal(router.route(s, q('select 1')), 'source', 'one-backend state');
  set({ readPercent: 100, writesTo: 'source' });
  t.equal(router.route(s, q('select 1')), 'source', 'no sample since the change');
  sample(300, 250);
  t.equal(router.route(s, q('select 1')), 'source', 'reader behind the position sampled after the change');
  sample(320, 300);
  t.equal(router.route(s, q('select 1')), 'target');

  const other = setup();
  const s2 = other.router.newSession('c');
  other.router.route(s2, q('select 1'));
  other.set({ readPercent: 100, writesTo: 'source' });
  other.sample(300, null);
  t.equal(other.router.route(s2, q('select 1')), 'target', 'no replication visible: nothing to wait for');
});
