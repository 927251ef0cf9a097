/**
 * Session replay replays only the session statements (issue 14 item 4): a multi-statement Query such as
 * `set application_name='x'; insert …` used to be kept whole and re-run on every other backend the session
 * used later (a row on the target) and after reconnects. Unit tables for the splitter, then the real proxy
 * with PostgreSQL 14 and 15.
 */
import t from 'tap';
import pg from 'pg';
import { createClassifier, initClassifier } from '../../src/router/classify.js';
import { splitStatements } from '../../src/router/split.js';
import { SessionStateLog } from '../../src/router/session-state.js';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';

await initClassifier();

t.test('splitStatements cuts where the parser does, by byte offsets', async (t) => {
  t.same(splitStatements('select 1'), ['select 1']);
  t.same(splitStatements('select 1;'), ['select 1;'], 'a trailing semicolon is one statement');
  t.same(splitStatements("set application_name='é;x'; insert into t values (1)"), ["set application_name='é;x'", 'insert into t values (1)']);
  t.same(splitStatements('prepare p as select $1::int;\n  insert into t select 1; set search_path = a, b'), ['prepare p as select $1::int', 'insert into t select 1', 'set search_path = a, b']);
  t.same(splitStatements('select 1; selec 2'), [], 'a string that does not parse runs nothing');
});

t.test('the session log keeps only the session statements of a string', async (t) => {
  const log = new SessionStateLog();
  const classifier = createClassifier();
  let added = 0;
  for (const st of splitStatements("set application_name='x'; insert into t (tag) values ('a'); set search_path = public")) if (log.record(st, classifier.classify(st).sessionKey)) added++;
  t.equal(added, 2);
  t.same([...log.entries.values()], ["set application_name='x'", 'set search_path = public']);
});

t.test('through the proxy: the INSERT of a SET; INSERT string runs once, on the writer only', async (t) => {
  const source = await startPg(t, 14);
  const target = await startPg(t, 15);
  for (const s of [source, target]) {
    const c = new pg.Client({ connectionString: s.url() });
    await c.connect();
    await c.query('create table t (id bigint generated always as identity primary key, tag text not null)');
    await c.end();
  }
  const proxy = await startProxy(t, source.url(), target.url());
  const count = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const n = (await c.query("select count(*)::int as n from t where tag = 'replay'")).rows[0].n as number;
    await c.end();
    return n;
  };
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  await c.query("set application_name = 'replay-x'; insert into t (tag) values ('replay')");
  // Reads on the target (a new link there, brought up to date by replay), then writes move to the target.
  await proxy.setState('READS_100PCT_AURORA', 'test');
  t.equal((await c.query('show application_name')).rows[0].application_name, 'replay-x', 'the SET was replayed on the target');
  await proxy.setState('WRITES_TO_AURORA', 'test');
  t.equal((await c.query("select current_setting('application_name') as a, current_setting('server_version_num')::int / 10000 as major")).rows[0].a, 'replay-x');
  await proxy.setState('SOURCE_PRIMARY', 'test');
  await c.query('select 1');
  t.equal(await count(source.url()), 1, 'one row on the source');
  t.equal(await count(target.url()), 0, 'no row on the target');
});
