/**
 * psql (Debian's PostgreSQL 15 client) through the proxy: -c, multi-statement strings, scripts with
 * ON_ERROR_STOP on and off, \copy from a file and to stdout (COPY FROM STDIN / TO STDOUT on the wire).
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PG_CLIENT_BIN, psql, startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url());
const url = proxy.url();
const dir = mkdtempSync(join(tmpdir(), 'pgc-psql-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const lastLine = (s: string): string => s.trim().split('\n').pop() ?? '';

/** psql -f <script>, ON_ERROR_STOP as given, tuples only. */
function script(name: string, sql: string, onErrorStop: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const f = join(dir, name);
  writeFileSync(f, sql);
  const args = [url, '-X', '-At', '-v', `ON_ERROR_STOP=${onErrorStop ? 1 : 0}`, '-f', f];
  return new Promise((resolve) => {
    execFile(join(PG_CLIENT_BIN, 'psql'), args, { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

t.test('-c with one statement', async (t) => {
  const r = await psql(url, 'select 40 + 2');
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), '42');
  const v = await psql(url, 'show server_version_num');
  t.match(v.stdout.trim(), /^14\d{4}$/, 'served by the PostgreSQL 14 source');
});

t.test('-c with several statements in one Query message', async (t) => {
  const r = await psql(url, 'create table multi (id int, v text); insert into multi values (1, $$a$$), (2, $$b$$); select count(*) from multi');
  t.equal(r.code, 0, r.stderr);
  t.equal(lastLine(r.stdout), '2');
  const e = await psql(url, 'insert into multi values (3, $$c$$); select 1/0; insert into multi values (4, $$d$$)');
  t.not(e.code, 0);
  t.match(e.stderr, /division by zero/);
  t.equal((await psql(url, 'select count(*) from multi')).stdout.trim(), '2', 'a multi-statement Query is one implicit transaction: all rolled back');
});

t.test('ON_ERROR_STOP=1 stops a script at the first error', async (t) => {
  await psql(url, 'create table stop_t (n int)');
  const r = await script('stop.sql', 'insert into stop_t values (1);\nselect no_such_column from stop_t;\ninsert into stop_t values (2);\n', true);
  t.equal(r.code, 3, 'psql exits 3 when a script stops on error');
  t.match(r.stderr, /column "no_such_column" does not exist/);
  t.equal((await psql(url, 'select string_agg(n::text, \',\' order by n) from stop_t')).stdout.trim(), '1', 'the statement after the error did not run');
});

t.test('ON_ERROR_STOP=0 carries on after an error', async (t) => {
  await psql(url, 'create table go_t (n int)');
  const r = await script('go.sql', 'insert into go_t values (1);\nselect no_such_column from go_t;\ninsert into go_t values (2);\n', false);
  t.equal(r.code, 0);
  t.match(r.stderr, /no_such_column/);
  t.equal((await psql(url, "select string_agg(n::text, ',' order by n) from go_t")).stdout.trim(), '1,2');
});

t.test('a script with a transaction, a savepoint and an error inside it', async (t) => {
  const r = await script(
    'tx.sql',
    [
      'create table sp_t (n int primary key);',
      'begin;',
      'insert into sp_t values (1);',
      'savepoint a;',
      'insert into sp_t values (1);',
      'rollback to savepoint a;',
      'insert into sp_t values (2);',
      'commit;',
      "select string_agg(n::text, ',' order by n) from sp_t;",
    ].join('\n'),
    false,
  );
  t.equal(r.code, 0);
  t.match(r.stderr, /duplicate key/);
  t.match(r.stdout, /^1,2$/m);
});

t.test('\\copy from a file (COPY FROM STDIN) and \\copy to stdout (COPY TO STDOUT)', async (t) => {
  await psql(url, 'create table copy_t (id int primary key, name text, note text)');
  const rows: string[] = [];
  for (let i = 1; i <= 20000; i++) rows.push(`${i}\tname ${i}\t${i % 7 === 0 ? '\\N' : `note with "quotes", tabs\\tand unicode \u00e9 ${i}`}`);
  const file = join(dir, 'rows.tsv');
  writeFileSync(file, rows.join('\n') + '\n');
  const load = await psql(url, `\\copy copy_t from '${file}'`);
  t.equal(load.code, 0, load.stderr);
  t.match(load.stdout, /COPY 20000/);
  const count = await psql(url, 'select count(*), count(note), max(id) from copy_t');
  t.equal(count.stdout.trim(), `20000|${20000 - Math.floor(20000 / 7)}|20000`);

  const out = await psql(url, '\\copy (select * from copy_t order by id) to stdout');
  t.equal(out.code, 0, out.stderr);
  const lines = out.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('COPY'));
  t.equal(lines.length, 20000);
  t.same(lines, rows, 'round trip is byte-identical');

  const csv = await psql(url, "\\copy (select id, name from copy_t where id <= 3 order by id) to stdout with (format csv, header)");
  t.equal(csv.stdout.split('\n').slice(0, 4).join('\n'), 'id,name\n1,name 1\n2,name 2\n3,name 3');
});

t.test('\\copy from a file with a bad row fails cleanly and loads nothing', async (t) => {
  await psql(url, 'create table copy_bad (id int)');
  const file = join(dir, 'bad.tsv');
  writeFileSync(file, '1\n2\nnot-a-number\n4\n');
  const r = await psql(url, `\\copy copy_bad from '${file}'`);
  t.not(r.code, 0);
  t.match(r.stderr, /invalid input syntax for type integer/);
  t.equal((await psql(url, 'select count(*) from copy_bad')).stdout.trim(), '0');
  t.equal((await psql(url, 'select 1')).code, 0, 'the proxy still serves psql');
});

t.test('COPY FROM STDIN fed on psql stdin, and a copy with a large row', async (t) => {
  await psql(url, 'create table copy_big (t text)');
  const big = 'y'.repeat(2 * 1024 * 1024);
  const file = join(dir, 'big.txt');
  writeFileSync(file, `${big}\nsmall\n`);
  const r = await psql(url, `\\copy copy_big from '${file}'`);
  t.equal(r.code, 0, r.stderr);
  t.equal((await psql(url, 'select sum(length(t)) from copy_big')).stdout.trim(), String(big.length + 5));
});

t.test('\\conninfo and the tables the proxy created exist on the source only', async (t) => {
  const ci = await psql(url, '\\conninfo');
  t.match(ci.stdout, /You are connected to database "postgres" as user "postgres" on host "127\.0\.0\.1" at port "\d+"/);
  const src = await psql(source.url(), "select to_regclass('copy_t') is not null");
  const tgt = await psql(target.url(), "select to_regclass('copy_t') is not null");
  t.equal(src.stdout.trim(), 't');
  t.equal(tgt.stdout.trim(), 'f');
});
