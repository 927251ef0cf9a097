/**
 * The facts the classifier yields beside the class, from the same parse (issue 13 item 3): the session-state
 * key a replay keeps a statement under (was a set of regexes), "may change session state" (was a byte test),
 * pins (was a word search on the fast path) and "shadowable" (was the shadow's UNSAFE regex). Tables, no
 * sockets; the old detectors' cases are kept.
 */
import t from 'tap';
import { createClassifier, initClassifier } from '../../src/router/classify.js';
import { SessionStateLog } from '../../src/router/session-state.js';
import { mayHaveFacts } from '../../src/router/fact-gate.js';

await initClassifier();
const c = createClassifier();

t.test('sessionKey: what a replay keeps a statement under', async (t) => {
  const table: [string, string | undefined][] = [
    ["set application_name = 'x'", 'set:application_name'],
    ['SET search_path TO a, b', 'set:search_path'],
    ['set session statement_timeout = 5', 'set:statement_timeout'],
    ['SET "Mixed.Case" = 1', 'set:Mixed.Case'],
    ["set time zone 'UTC'", 'set:timezone'],
    ['set timezone = 1', 'set:timezone'],
    ['set role r', 'set:role'],
    ['reset role', 'set:role'],
    ['set session authorization u', 'set:session_authorization'],
    ['reset all', 'set:*'],
    ['set local statement_timeout = 1', undefined],
    ['set transaction read only', undefined],
    ['set constraints all deferred', undefined],
    ['set session characteristics as transaction read only', 'set:session characteristics'],
    ['prepare p as select 1', 'prep:p'],
    ['PREPARE "Q" (int) AS select $1', 'prep:Q'],
    ['deallocate p', 'prep:p'],
    ['deallocate prepare p', 'prep:p'],
    ['deallocate all', 'prep:*'],
    ['discard all', '*'],
    ['discard plans', undefined],
    ['prepare transaction \'x\'', undefined],
    ['select 1', undefined],
    ["select set_config('a', 'b', false)", undefined],
  ];
  for (const [sql, key] of table) t.equal(c.classify(sql).sessionKey, key, sql);
});

t.test('changesSession: only strings with a session statement; multi-statement strings included', async (t) => {
  t.equal(c.classify("set a.b = 1; select 1").changesSession, true);
  t.equal(c.classify("select 1; insert into t values (1)").changesSession, undefined);
  t.equal(c.classify('select 1').changesSession, undefined);
  t.equal(c.classify("set a.b = 1; select 1").sessionKey, undefined, 'a multi-statement string has no single key: it is split');
});

t.test('a literal changes the value, never the key (one cache entry per shape)', async (t) => {
  const log = new SessionStateLog();
  for (const v of ['x', 'y', 'z']) log.record(`set application_name = '${v}'`, c.classify(`set application_name = '${v}'`).sessionKey);
  t.same([...log.entries.entries()], [['set:application_name', "set application_name = 'z'"]]);
  log.record('reset all', c.classify('reset all').sessionKey);
  t.same([...log.entries.keys()], ['set:*']);
  t.equal(log.record('select 1', c.classify('select 1').sessionKey), false, 'no key, nothing recorded');
});

t.test('pins: temp tables, LISTEN, session advisory locks, PREPARE', async (t) => {
  t.equal(c.classify('create temp table x (a int)').pins, 'temp-table');
  t.equal(c.classify('CREATE TEMPORARY TABLE x (a int)').pins, 'temp-table');
  t.equal(c.classify('listen ch').pins, 'listen');
  t.equal(c.classify('select pg_advisory_lock(1)').pins, 'advisory-lock');
  t.equal(c.classify('select pg_advisory_xact_lock(1)').pins, undefined, 'a transaction lock ends with the transaction');
  t.equal(c.classify("select 'temp', 'listen', 'advisory'").pins, undefined, 'words in literals pin nothing');
});

t.test('shadowable: what a shadow transaction can run', async (t) => {
  const no = [
    'commit', 'rollback', 'end', 'abort', 'commit and chain', "prepare transaction 'x'", "commit prepared 'x'",
    'vacuum t', 'vacuum', 'create index concurrently i on t (a)', 'drop index concurrently i', 'reindex table concurrently t',
    'refresh materialized view concurrently m', 'alter system set work_mem = 1', 'create database d', 'drop database d',
    "create tablespace s location '/x'", 'drop tablespace s', 'create table t2 (a int) tablespace s', 'alter table t set tablespace s',
    'do $$ begin perform 1; end $$', 'insert into t values (1); commit',
  ];
  for (const sql of no) t.equal(c.classify(sql).shadowable, false, sql);
  const yes = [
    'insert into t values (1)', "update t set a = 1 where b = 'commit'", 'delete from t', 'begin', 'select 1',
    'create index i on t (a)', 'create table t2 (a int)', 'begin; insert into t values (1)', "insert into log (msg) values ('vacuum end')",
  ];
  for (const sql of yes) t.equal(c.classify(sql).shadowable, true, sql);
});

t.test('the fast path gate lets every statement with a fact through, and skips plain ones', async (t) => {
  const gate = (sql: string) => {
    const b = Buffer.from(sql + '\0');
    return mayHaveFacts(b, 0, b.length);
  };
  const facts = [
    "set application_name = 'x'", "SeT a.b = 1", 'RESET ALL', '/* c */ set x = 1', 'prepare p as select 1', 'DEALLOCATE p', 'discard all',
    'create temp table x (a int)', 'CREATE TEMPORARY TABLE x (a int)', 'LISTEN ch', 'select pg_advisory_lock(1)', 'select 1; select 2',
    'set session characteristics as transaction read only',
  ];
  for (const sql of facts) {
    const k = c.classify(sql);
    t.ok(k.changesSession === true || k.pins !== undefined || k.multi, `${sql}: the classifier finds a fact`);
    t.ok(gate(sql), `${sql}: the gate lets it through`);
  }
  for (const sql of ['SELECT abalance FROM pgbench_accounts WHERE aid = 42;', 'select 1', 'insert into t values (1)', 'select 1;  ', 'update x set a = 1'].slice(0, 4)) {
    t.notOk(gate(sql), `${sql}: skipped`);
  }
  t.ok(gate('update x set a = 1'), 'a false maybe (UPDATE … SET) only costs a cached classification');
});
