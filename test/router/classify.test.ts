import t from 'tap';
import { createClassifier, initClassifier, type Classification, type StatementClass } from '../../src/router/classify.js';

type Flags = Partial<Omit<Classification, 'cls' | 'reason'>> & { reason?: RegExp };
type Row = [sql: string, cls: StatementClass, flags?: Flags];

const pgbench: Row[] = [
  // pgbench's built-in tpcb-like script, as sent with -M simple
  ['BEGIN;', 'tx-begin'],
  ['UPDATE pgbench_accounts SET abalance = abalance + -2345 WHERE aid = 12345;', 'write', { reason: /UpdateStmt/ }],
  ['SELECT abalance FROM pgbench_accounts WHERE aid = 12345;', 'read'],
  ['UPDATE pgbench_tellers SET tbalance = tbalance + 100 WHERE tid = 3;', 'write'],
  ['UPDATE pgbench_branches SET bbalance = bbalance + 100 WHERE bid = 1;', 'write'],
  ['INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 12345, 100, CURRENT_TIMESTAMP);', 'write'],
  ['END;', 'tx-end'],
  // pgbench -i and its start-up probe
  ['drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers', 'write'],
  ['create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))', 'write'],
  ['truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers', 'write'],
  ['copy pgbench_accounts from stdin with (freeze on)', 'write', { reason: /COPY FROM/ }],
  ['vacuum analyze pgbench_branches', 'write'],
  ['alter table pgbench_branches add primary key (bid)', 'write'],
  ['select count(*) from pgbench_branches', 'read'],
];

const orm: Row[] = [
  ['SELECT "public"."User"."id", "public"."User"."email" FROM "public"."User" WHERE "public"."User"."id" = $1 LIMIT $2 OFFSET $3', 'read'],
  ['INSERT INTO "Users" ("id","name","createdAt") VALUES (DEFAULT,$1,$2) RETURNING "id","name","createdAt";', 'write'],
  [`SELECT "auth_user"."id", "auth_user"."username" FROM "auth_user" WHERE "auth_user"."username" = 'bob' LIMIT 21`, 'read'],
  ['SELECT "users".* FROM "users" WHERE "users"."id" = $1 LIMIT $2', 'read'],
  ['select nextval (\'hibernate_sequence\')', 'write', { reason: /function nextval/ }],
  ['SELECT "User"."id" AS "User_id" FROM "user" "User" WHERE ("User"."id" = $1) FOR UPDATE', 'write', { reason: /locking/ }],
  ['insert into "t" ("a", "b") values ($1, $2) on conflict ("a") do update set "b" = excluded."b"', 'write'],
  ['UPDATE "orders" SET "status" = $1, "updated_at" = now() WHERE "id" = $2 AND "version" = $3', 'write'],
  ['DELETE FROM sessions s USING users u WHERE s.user_id = u.id AND u.deleted', 'write'],
  ['SELECT users.id, users.name FROM users WHERE users.id = 7', 'read'],
  ['SELECT count(*) AS count_1 FROM (SELECT orders.id FROM orders WHERE orders.total > 100.5) AS anon_1', 'read'],
  ['SET extra_float_digits = 3', 'session'],
  ["SET application_name = 'PostgreSQL JDBC Driver'", 'session'],
  ['SELECT version()', 'read'],
  ['SHOW TRANSACTION ISOLATION LEVEL', 'read'],
  ['select current_schema()', 'read'],
  ['SELECT oid, typname FROM pg_type WHERE typname = ANY($1)', 'read'],
  ["select current_setting('transaction_read_only')", 'read'],
];

const readsAndCtes: Row[] = [
  ['TABLE pgbench_branches', 'read'],
  ["VALUES (1, 'a'), (2, 'b')", 'read'],
  ['SHOW search_path', 'read'],
  ['SHOW ALL', 'read'],
  ['WITH a AS (SELECT 1 AS x) SELECT * FROM a', 'read'],
  ['WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) FROM r', 'read'],
  ['WITH m AS MATERIALIZED (SELECT * FROM big) SELECT count(*) FROM m', 'read'],
  ['SELECT 1 UNION SELECT id FROM t', 'read'],
  ['SELECT 1 FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)', 'read'],
  ["SELECT data->>'name' FROM docs WHERE data ? 'x' AND data @> '{\"a\":1}'", 'read'],
  ['SELECT id, rank() OVER (PARTITION BY g ORDER BY v DESC) FROM t', 'read'],
  ['SELECT * FROM t TABLESAMPLE SYSTEM (10)', 'read'],
  ['SELECT * FROM generate_series(1, 10) g', 'read'],
  ['SELECT now(), random(), gen_random_uuid(), pg_sleep(0.01)', 'read'],
  ['SELECT upper(name), custom_pure_fn(x) FROM users', 'read'],
  ['WITH d AS (DELETE FROM t WHERE x < 5 RETURNING *) INSERT INTO archive SELECT * FROM d', 'write'],
  ['WITH u AS (UPDATE t SET x = 1 RETURNING id) SELECT count(*) FROM u', 'write', { reason: /data-modifying UpdateStmt/ }],
  ['WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM i', 'write', { reason: /InsertStmt/ }],
  ['SELECT * FROM (WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM i) s', 'write', { reason: /InsertStmt/ }],
  ['WITH a AS (SELECT 1), b AS (WITH c AS (DELETE FROM t RETURNING 1) SELECT * FROM c) SELECT * FROM a, b', 'write', { reason: /DeleteStmt/ }],
  ['WITH m AS (MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING t.id) SELECT * FROM m', 'write', { reason: /MergeStmt/ }],
  ['SELECT * INTO new_t FROM t', 'write', { reason: /SELECT INTO/ }],
];

const locking: Row[] = [
  ['SELECT * FROM t WHERE id = 1 FOR UPDATE', 'write'],
  ['SELECT * FROM t WHERE id = 1 FOR SHARE', 'write'],
  ['SELECT * FROM t WHERE id = 1 FOR NO KEY UPDATE', 'write'],
  ['SELECT * FROM t WHERE id = 1 FOR KEY SHARE', 'write'],
  ['SELECT * FROM jobs WHERE state = 0 LIMIT 1 FOR UPDATE SKIP LOCKED', 'write'],
  ['SELECT * FROM t JOIN u ON u.id = t.u FOR UPDATE OF t NOWAIT', 'write'],
  ['SELECT * FROM (SELECT * FROM t FOR UPDATE) s', 'write', { reason: /locking/ }],
  ['WITH x AS (SELECT * FROM t FOR SHARE) SELECT * FROM x', 'write', { reason: /locking/ }],
  ['SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)', 'write'],
  ["WITH x AS (SELECT id FROM jobs WHERE state = 'new' LIMIT 1 FOR UPDATE SKIP LOCKED) UPDATE jobs SET state = 'run' FROM x WHERE jobs.id = x.id RETURNING jobs.id", 'write'],
  ['(SELECT 1) UNION ALL (SELECT 2 FROM t FOR UPDATE)', 'write'],
];

const functions: Row[] = [
  ["SELECT nextval('orders_id_seq')", 'write'],
  ["SELECT pg_catalog.setval('s', 42, true)", 'write', { reason: /setval/ }],
  ["SELECT currval('s')", 'write'],
  ['SELECT lastval()', 'write'],
  ['SELECT * FROM t WHERE id = (SELECT nextval(\'s\'))', 'write'],
  ['SELECT pg_advisory_lock(42)', 'write', { pins: 'advisory-lock' }],
  ['SELECT pg_advisory_lock_shared(42)', 'write', { pins: 'advisory-lock' }],
  ['SELECT pg_try_advisory_lock(1, 2)', 'write', { pins: 'advisory-lock' }],
  ['SELECT * FROM pg_advisory_lock(1)', 'write', { pins: 'advisory-lock' }],
  ['SELECT pg_advisory_xact_lock(42)', 'write'],
  ['SELECT pg_try_advisory_xact_lock(7)', 'write'],
  ['SELECT pg_advisory_unlock(42)', 'write'],
  ['SELECT pg_advisory_unlock_all()', 'write'],
  ["SELECT set_config('app.tenant', '42', false)", 'write', { reason: /set_config/ }],
  ['SELECT lo_create(0)', 'write'],
  ['SELECT lo_unlink(16400)', 'write'],
  ["SELECT pg_notify('jobs', 'new')", 'write'],
  ['SELECT txid_current()', 'write'],
  ['SELECT pg_current_xact_id()', 'write'],
  ['SELECT pg_terminate_backend(1234)', 'write'],
  ['SELECT count(*) FROM t WHERE x = nextval(\'s\') OR y = 1', 'write'],
  ['UPDATE t SET a = 1 WHERE pg_try_advisory_lock(id)', 'write', { pins: 'advisory-lock' }],
];

const copy: Row[] = [
  ['COPY t TO STDOUT', 'read'],
  ['COPY t (a, b) TO STDOUT WITH (FORMAT csv, HEADER)', 'read'],
  ['COPY (SELECT * FROM t WHERE a > 5) TO STDOUT WITH CSV', 'read'],
  ['COPY t (a, b) FROM STDIN', 'write'],
  ["COPY t FROM '/tmp/x.csv' WITH (FORMAT csv)", 'write'],
  ["COPY t TO '/tmp/out.csv'", 'write', { reason: /file or program/ }],
  ["COPY t TO PROGRAM 'gzip > /tmp/t.gz'", 'write'],
  ['COPY (INSERT INTO t VALUES (1) RETURNING *) TO STDOUT', 'write'],
  ["COPY (SELECT nextval('s')) TO STDOUT", 'write'],
];

const hintsAndComments: Row[] = [
  ['/* pg-cutover:target */ SELECT * FROM t', 'read', { hint: 'target' }],
  ['/* pg-cutover:source */ SELECT 1', 'read', { hint: 'source' }],
  ['-- pg-cutover:source\nINSERT INTO t VALUES (1)', 'write', { hint: 'source' }],
  ['SELECT 1 /* pg-cutover:target */', 'read'],
  ["/* controller='users',action='show',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' */ SELECT * FROM users WHERE id = 1", 'read'],
  ['/*+ IndexScan(t t_pkey) */ SELECT * FROM t WHERE id = 1', 'read'],
  ['/* pg-cutover:target */ SELECT 1; SELECT 2', 'read', { hint: 'target', multi: true }],
  ["SELECT 'not -- a comment', $$/* nor this */$$", 'read'],
  ['-- only a comment', 'read'],
  ['/* a /* nested */ comment */ UPDATE t SET a = 1', 'write'],
];

const multi: Row[] = [
  ['SELECT 1; SELECT 2', 'read', { multi: true }],
  ['SELECT 1; INSERT INTO t VALUES (1)', 'write', { multi: true }],
  ['BEGIN; SELECT 1; COMMIT;', 'write', { multi: true, reason: /transaction control/ }],
  ['SET search_path = app; SELECT 1', 'session', { multi: true }],
  ['LISTEN ch; SELECT 1', 'session', { multi: true, pins: 'listen' }],
  ['BEGIN READ WRITE; UPDATE t SET a = 1; COMMIT', 'write', { multi: true, readWriteTx: true, setsReadOnlyOff: true }],
  ['SELECT 1;', 'read'],
  [';;SELECT 1;;', 'read'],
  ['CREATE TEMP TABLE x (a int); INSERT INTO x VALUES (1)', 'write', { multi: true, pins: 'temp-table' }],
];

const invalid: Row[] = [
  ['SELEC 1', 'write', { reason: /parse error/ }],
  ['SELECT * FROM', 'write', { reason: /parse error/ }],
  ["SELECT 'unterminated", 'write', { reason: /parse error/ }],
  ['SELECT 1 +', 'write', { reason: /parse error/ }],
  ['hello world', 'write', { reason: /parse error/ }],
  ['\\d pgbench_accounts', 'write', { reason: /parse error/ }],
  ['', 'read'],
  ['   \n\t', 'read'],
  [';', 'read'],
];

const merge: Row[] = [
  ['MERGE INTO accounts a USING (SELECT 1 AS id, 10 AS delta) s ON a.id = s.id WHEN MATCHED THEN UPDATE SET balance = balance + s.delta WHEN NOT MATCHED THEN INSERT (id, balance) VALUES (s.id, s.delta)', 'write', { reason: /MergeStmt/ }],
  ['MERGE INTO t USING u ON t.id = u.id WHEN MATCHED AND u.gone THEN DELETE WHEN NOT MATCHED THEN DO NOTHING', 'write'],
];

const transactions: Row[] = [
  ['BEGIN', 'tx-begin'],
  ['BEGIN TRANSACTION', 'tx-begin'],
  ['begin work', 'tx-begin'],
  ['START TRANSACTION', 'tx-begin'],
  ['BEGIN ISOLATION LEVEL SERIALIZABLE', 'tx-begin'],
  ['BEGIN READ ONLY', 'tx-begin', { readOnlyTx: true }],
  ['START TRANSACTION READ ONLY, DEFERRABLE', 'tx-begin', { readOnlyTx: true }],
  ['BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', 'tx-begin', { readOnlyTx: true }],
  ['BEGIN READ WRITE', 'tx-begin', { readWriteTx: true, setsReadOnlyOff: true }],
  ['START TRANSACTION ISOLATION LEVEL READ COMMITTED, READ WRITE', 'tx-begin', { readWriteTx: true, setsReadOnlyOff: true }],
  ['COMMIT', 'tx-end'],
  ['END TRANSACTION', 'tx-end'],
  ['ROLLBACK', 'tx-end'],
  ['ABORT', 'tx-end'],
  ['COMMIT AND CHAIN', 'tx-end', { reason: /CHAIN/ }],
  ["COMMIT PREPARED 'tx1'", 'tx-end', { reason: /prepared/ }],
  ["ROLLBACK PREPARED 'tx1'", 'tx-end'],
  ['SAVEPOINT sp1', 'tx-other'],
  ['RELEASE SAVEPOINT sp1', 'tx-other'],
  ['RELEASE sp1', 'tx-other'],
  ['ROLLBACK TO SAVEPOINT sp1', 'tx-other'],
  ['ROLLBACK TO sp1', 'tx-other'],
  ["PREPARE TRANSACTION 'tx1'", 'write'],
];

const session: Row[] = [
  ['SET search_path TO app, public', 'session'],
  ["SET LOCAL statement_timeout = '5s'", 'session'],
  ['SET SESSION statement_timeout = 0', 'session'],
  ['RESET ALL', 'session'],
  ['RESET search_path', 'session'],
  ["SET TIME ZONE 'UTC'", 'session'],
  ['SET SESSION AUTHORIZATION bob', 'session'],
  ['RESET SESSION AUTHORIZATION', 'session'],
  ['SET ROLE readonly', 'session'],
  ["SET client_encoding TO 'UTF8'", 'session'],
  ['SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'session'],
  ['SET TRANSACTION READ ONLY', 'session'],
  ['SET TRANSACTION READ WRITE', 'session', { setsReadOnlyOff: true }],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'session', { setsReadOnlyOff: true }],
  ['SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE', 'session'],
  ['SET default_transaction_read_only = off', 'session', { setsReadOnlyOff: true }],
  ["SET SESSION default_transaction_read_only = 'off'", 'session', { setsReadOnlyOff: true }],
  ['SET default_transaction_read_only TO false', 'session', { setsReadOnlyOff: true }],
  ['SET default_transaction_read_only = 0', 'session', { setsReadOnlyOff: true }],
  ['SET default_transaction_read_only = on', 'session'],
  ["SET default_transaction_read_only = 'true'", 'session'],
  ['SET transaction_read_only = off', 'session', { setsReadOnlyOff: true }],
  ["SET LOCAL transaction_read_only TO 'no'", 'session', { setsReadOnlyOff: true }],
  ['SET "default_transaction_read_only" = f', 'session', { setsReadOnlyOff: true }],
  ['SET default_transaction_read_only TO DEFAULT', 'session'],
  ['RESET default_transaction_read_only', 'session'],
  ['SET standard_conforming_strings = off', 'session', { reason: /standard_conforming_strings/ }],
  ['DISCARD ALL', 'session'],
  ['DISCARD TEMP', 'session'],
  ['DEALLOCATE ALL', 'session'],
  ['DEALLOCATE s1', 'session'],
  ['PREPARE s1 (int) AS SELECT $1', 'session', { pins: 'prepare' }],
  ['PREPARE ins AS INSERT INTO t VALUES ($1)', 'session', { pins: 'prepare' }],
  ['EXECUTE s1(1)', 'write', { reason: /EXECUTE/ }],
  ['LISTEN jobs', 'session', { pins: 'listen' }],
  ['UNLISTEN *', 'session'],
  ['UNLISTEN jobs', 'session'],
  ["LOAD 'auto_explain'", 'session'],
  ['SET CONSTRAINTS ALL DEFERRED', 'session'],
  ['FETCH 100 FROM c1', 'session'],
  ['MOVE FORWARD 5 IN c1', 'session'],
  ['CLOSE c1', 'session'],
  ['DECLARE c1 CURSOR FOR SELECT * FROM t', 'read'],
  ['DECLARE c2 CURSOR WITH HOLD FOR SELECT 1', 'session', { reason: /WITH HOLD/ }],
  ['DECLARE c3 CURSOR FOR SELECT * FROM t FOR UPDATE', 'write'],
  ["SELECT set_config('default_transaction_read_only', 'off', false)", 'write', { setsReadOnlyOff: true }],
  ["SELECT set_config('transaction_read_only', 'on', true)", 'write'],
  ["SELECT set_config('Default_Transaction_Read_Only', 'false', false)", 'write', { setsReadOnlyOff: true }],
  ['SELECT set_config($1, $2, false)', 'write', { setsReadOnlyOff: true }],
  ["DO $$BEGIN PERFORM set_config('default_transaction_read_only', 'off', false); END$$", 'write', { setsReadOnlyOff: true }],
  ["DO $$BEGIN SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; END$$", 'write', { setsReadOnlyOff: true }],
  ['DO $$BEGIN INSERT INTO t VALUES (1); END$$', 'write', { reason: /DO/ }],
];

const ddlAndMaintenance: Row[] = [
  ['CREATE TABLE t2 (id bigserial PRIMARY KEY, v text)', 'write', { reason: /CreateStmt/ }],
  ['CREATE TEMP TABLE tmp (a int)', 'write', { pins: 'temp-table' }],
  ['CREATE TEMPORARY TABLE tmp2 ON COMMIT DROP AS SELECT 1 AS a', 'write', { pins: 'temp-table' }],
  ['SELECT * INTO TEMP tmp3 FROM t', 'write', { pins: 'temp-table' }],
  ['CREATE TABLE pg_temp.tmp4 (a int)', 'write', { pins: 'temp-table' }],
  ['CREATE TEMP VIEW tv AS SELECT 1', 'write', { pins: 'temp-table' }],
  ['CREATE UNLOGGED TABLE u (a int)', 'write'],
  ['CREATE TABLE x AS SELECT 1', 'write'],
  ['CREATE INDEX CONCURRENTLY t_v ON t (v)', 'write'],
  ['ALTER TABLE t ADD COLUMN c int DEFAULT 0', 'write'],
  ['DROP TABLE IF EXISTS t CASCADE', 'write'],
  ["CREATE VIEW v AS SELECT nextval('s')", 'write'],
  ['CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$', 'write'],
  ['CREATE EXTENSION IF NOT EXISTS pgcrypto', 'write'],
  ['VACUUM t', 'write'],
  ['VACUUM (ANALYZE, VERBOSE) t', 'write'],
  ['ANALYZE t', 'write'],
  ['CLUSTER t USING t_pkey', 'write'],
  ['REINDEX TABLE t', 'write'],
  ['GRANT SELECT ON t TO bob', 'write'],
  ['REVOKE ALL ON t FROM bob', 'write'],
  ['LOCK TABLE t IN ACCESS EXCLUSIVE MODE', 'write'],
  ['TRUNCATE t RESTART IDENTITY', 'write'],
  ['REFRESH MATERIALIZED VIEW CONCURRENTLY mv', 'write'],
  ["COMMENT ON TABLE t IS 'accounts'", 'write'],
  ["SECURITY LABEL FOR selinux ON TABLE t IS 'system_u:object_r:sepgsql_table_t:s0'", 'write'],
  ["NOTIFY jobs, 'payload'", 'write'],
  ['NOTIFY jobs', 'write'],
  ['CALL process_batch(100)', 'write', { reason: /CallStmt/ }],
  ['CHECKPOINT', 'write'],
  ['ALTER ROLE app SET default_transaction_read_only = off', 'write'],
  ['EXPLAIN SELECT 1', 'read'],
  ['EXPLAIN DELETE FROM t', 'read'],
  ['EXPLAIN (FORMAT JSON) SELECT * FROM t', 'read'],
  ['EXPLAIN ANALYZE SELECT * FROM t', 'read'],
  ['EXPLAIN ANALYZE DELETE FROM t', 'write', { reason: /EXPLAIN ANALYZE/ }],
  ['EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1', 'write'],
  ['EXPLAIN (ANALYZE false) DELETE FROM t', 'write'],
  ["EXPLAIN (ANALYZE) SELECT nextval('s')", 'write'],
  ['EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE', 'write'],
  ["EXPLAIN SELECT nextval('s')", 'read'],
  ['EXPLAIN ANALYZE EXECUTE s1(1)', 'write'],
];

const all = [
  ...pgbench, ...orm, ...readsAndCtes, ...locking, ...functions, ...copy, ...hintsAndComments,
  ...multi, ...invalid, ...merge, ...transactions, ...session, ...ddlAndMaintenance,
];

const FLAG_KEYS = ['multi', 'readOnlyTx', 'readWriteTx', 'hint', 'pins', 'setsReadOnlyOff'] as const;

/** The two assertions check() needs; a subtest has them too. */
type Asserts = Pick<typeof t, 'strictSame' | 'match'>;

function check(t: Asserts, c: Classification, [sql, cls, flags = {}]: Row): void {
  const got: Record<string, unknown> = { cls: c.cls };
  const want: Record<string, unknown> = { cls };
  for (const key of FLAG_KEYS) {
    if (c[key] !== undefined) got[key] = c[key];
    const w = key === 'multi' ? (flags.multi ?? false) : flags[key];
    if (w !== undefined) want[key] = w;
  }
  t.strictSame(got, want, sql.replace(/\s+/g, ' ').slice(0, 100));
  if (flags.reason) t.match(c.reason ?? '', flags.reason, `reason of ${sql.slice(0, 60)}`);
}

t.test('createClassifier before initClassifier is refused', async (t) => {
  t.throws(() => createClassifier(), /initClassifier/);
});

t.test('classification table', async (t) => {
  await initClassifier();
  t.ok(all.length >= 120, `${all.length} statements`);
  const cold = createClassifier({ cacheSize: 0 });
  const warm = createClassifier();
  for (const row of all) {
    check(t, cold.classify(row[0]), row);
    // twice through a cache: the cached answer must equal the parsed one
    check(t, warm.classify(row[0]), row);
    check(t, warm.classify(row[0]), row);
  }
  t.equal(cold.stats().size, 0, 'cacheSize 0 stores nothing');
});

t.test('cache hits for statements differing only in literals', async (t) => {
  await initClassifier();
  const c = createClassifier();
  for (let aid = 1; aid <= 100; aid++) t.equal(c.classify(`SELECT abalance FROM pgbench_accounts WHERE aid = ${aid * 7919};`).cls, 'read');
  t.strictSame(c.stats(), { hits: 99, misses: 1, size: 1 });
  const first = c.classify("UPDATE t SET s = 'a', n = 1 WHERE id = 1");
  const second = c.classify("UPDATE t SET s = 'it''s', n = 2.5e3 WHERE id = 99");
  t.equal(second, first, 'same frozen object from the cache');
  t.ok(Object.isFrozen(first), 'cached classifications are immutable');
  t.strictSame(c.stats(), { hits: 100, misses: 2, size: 2 });
  c.classify('SELEC 1');
  t.match(c.classify('SELEC 2'), { cls: 'write', reason: /parse error/ });
  t.equal(c.stats().hits, 101, 'parse errors are cached by shape too');
  t.notMatch(c.classify("SELECT 'secret").reason ?? '', /secret/, 'no literal text in a shared reason');
});

t.test('literal-dependent decisions are not served from another literal', async (t) => {
  await initClassifier();
  const c = createClassifier();
  t.notOk(c.classify("SELECT set_config('app.tenant', '1', false)").setsReadOnlyOff);
  t.notOk(c.classify("SELECT set_config('app.tenant', '2', false)").setsReadOnlyOff);
  t.equal(c.stats().hits, 1, 'harmless set_config calls share the entry');
  t.ok(c.classify("SELECT set_config('default_transaction_read_only', 'off', false)").setsReadOnlyOff);
  t.ok(c.classify("SELECT set_config(E'default_transaction_read_onl\\x79', 'off', false)").setsReadOnlyOff, 'escapes are decoded');
  t.notOk(c.classify("SELECT set_config('app.user', 'x', false)").setsReadOnlyOff);
  t.notOk(c.classify("SET default_transaction_read_only = 'on'").setsReadOnlyOff);
  t.ok(c.classify("SET default_transaction_read_only = 'off'").setsReadOnlyOff);
  t.notOk(c.classify("SET default_transaction_read_only = 'on'").setsReadOnlyOff);
  t.notOk(c.classify('DO $$BEGIN NULL; END$$').setsReadOnlyOff);
  t.ok(c.classify("DO $$BEGIN EXECUTE 'SET transaction_read_only = off'; END$$").setsReadOnlyOff);
});

t.test('configured write functions', async (t) => {
  await initClassifier();
  const c = createClassifier({ writeFunctions: ['audit_log', 'App_Write_*'] });
  t.match(c.classify("SELECT audit_log('login')"), { cls: 'write', reason: 'function audit_log' });
  t.match(c.classify('SELECT * FROM t WHERE app_write_touch(t.id)'), { cls: 'write' });
  t.match(c.classify('SELECT app_read(1)'), { cls: 'read' });
  t.match(createClassifier().classify("SELECT audit_log('login')"), { cls: 'read' }, 'not in the default list');
});

t.test('bounded cache', async (t) => {
  await initClassifier();
  const c = createClassifier({ cacheSize: 2, maxCachedLength: 100 });
  for (const table of ['a', 'b', 'c', 'd']) c.classify(`SELECT * FROM ${table} WHERE id = 1`);
  t.equal(c.stats().size, 2, 'evicts past cacheSize');
  c.classify(`SELECT * FROM d WHERE id = 2`);
  t.equal(c.stats().hits, 1, 'the most recent shape is still there');
  const long = `SELECT * FROM t WHERE id IN (${Array.from({ length: 60 }, (_, i) => i).join(', ')})`;
  t.equal(c.classify(long).cls, 'read');
  t.equal(c.classify(long).cls, 'read');
  t.equal(c.stats().hits, 1, 'statements over maxCachedLength are not cached');
});
