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
import { cstr, frame, int16, int32 } from '../proxy/fixtures/wire.js';

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

t.test('a read cut by a Flush goes to the writer but starts no wait, unless what follows in its unit writes', async (t) => {
  const { router, sample, set } = setup();
  set({ readPercent: 100, writesTo: 'source' });
  sample(100, 100);
  const frames = (...bufs: Buffer[]): Frame[] => {
    const out: Frame[] = [];
    for (const buf of bufs) out.push({ type: buf[0], buf, start: 0, end: buf.length });
    return out;
  };
  const parse = (sql: string, name = '') => frame('P', Buffer.concat([cstr(name), cstr(sql), int16(0)]));
  const bind = (name = '') => frame('B', Buffer.concat([cstr(''), cstr(name), int16(0), int16(0), int16(0)]));
  const execute = (rows = 0) => frame('E', Buffer.concat([cstr(''), int32(rows)]));
  const describe = frame('D', Buffer.concat([Buffer.from('P'), cstr('')]));
  const FLUSH = frame('H');
  const SYNC = frame('S');
  const finish = (s: ReturnType<typeof router.newSession>, ...rest: Frame[]) => {
    for (const f of rest) if (s.unitCut) router.continued(s, f);
    router.unitDone(s, link);
  };

  // A cursor: Parse/Bind/Describe/Execute(3)/Flush, then Execute(3)/Flush pages, then Sync.
  const s = router.newSession('cursor');
  const cut = frames(parse('select * from t'), bind(), describe, execute(3), FLUSH);
  t.equal(router.route(s, cut), 'source', 'a cut unit goes to the writer');
  for (const f of cut) router.continued(s, f);
  finish(s, ...frames(execute(3), FLUSH, execute(3), SYNC));
  t.equal(router.route(s, q('select 1')), 'target', 'a cursor read started no read-your-writes wait');

  // postgres.js's first execution: Parse/Describe/Flush, then Bind/Execute/Sync of the same statement.
  const p = router.newSession('postgres.js');
  t.equal(router.route(p, frames(parse('select 2'), describe, FLUSH)), 'source');
  finish(p, ...frames(bind(), execute(), SYNC));
  t.equal(router.route(p, q('select 1')), 'target', 'neither did a Describe-first read');

  // The issue-14 case: a read ended by Flush, then an INSERT and Sync in the same unit.
  const w = router.newSession('write after flush');
  t.equal(router.route(w, frames(parse('select 3'), bind(), execute(), FLUSH)), 'source');
  finish(w, ...frames(parse('insert into t values (1)'), bind(), execute(), SYNC));
  t.equal(router.route(w, q('select 1')), 'source', 'the INSERT after the Flush starts the wait');
  sample(200, 200);
  t.equal(router.route(w, q('select 1')), 'target', 'which ends once the reader applied it');
});
