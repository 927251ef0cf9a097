import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadUsersFile, parseUsersEnv, type UserEntry } from '../../src/auth/users.js';
import { md5StoredHash } from '../../src/auth/md5.js';
import { formatScramVerifier, secretFromPassword } from '../../src/auth/scram-crypto.js';

const dir = mkdtempSync(join(tmpdir(), 'pgc-users-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const p = join(dir, `users-${n++}`);
  writeFileSync(p, text);
  return p;
}

const verifier = formatScramVerifier(secretFromPassword('s3cret'));
const md5hash = md5StoredHash('pw', 'old');

t.test('JSON file: methods, defaults, stored hashes', async (t) => {
  const r = loadUsersFile(
    file(
      JSON.stringify({
        users: [
          { name: 'app', password: 'plain pw' },
          { name: 'ro', password: verifier, method: 'scram-sha-256' },
          { name: 'old', password: md5hash, method: 'md5' },
          { name: 'old2', password: 'plain', method: 'md5' },
          { name: 'mon', method: 'trust' },
        ],
      }),
    ),
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
  t.same([...r.value.values()], [
    { name: 'app', method: 'scram-sha-256', password: 'plain pw' },
    { name: 'ro', method: 'scram-sha-256', password: verifier },
    { name: 'old', method: 'md5', password: md5hash },
    { name: 'old2', method: 'md5', password: 'plain' },
    { name: 'mon', method: 'trust' },
  ] satisfies UserEntry[]);
});

t.test('PgBouncer userlist.txt, with comments, escaped quotes and an optional method', async (t) => {
  const r = loadUsersFile(
    file(
      [
        '; PgBouncer style comment',
        '# another comment',
        '',
        '"app" "pa""ss"',
        `"ro"  "${verifier}"   "scram-sha-256"`,
        `"old" "${md5hash}" "md5"`,
        '"mon" "" "trust"',
      ].join('\n'),
    ),
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
  t.same(r.value.get('app'), { name: 'app', method: 'scram-sha-256', password: 'pa"ss' });
  t.equal(r.value.get('ro')?.password, verifier);
  t.equal(r.value.get('old')?.method, 'md5');
  t.same(r.value.get('mon'), { name: 'mon', method: 'trust' });
});

t.test('env PGCUTOVER_USERS holds the JSON form', async (t) => {
  const r = parseUsersEnv('{"users":[{"name":"a","password":"b"}]}');
  t.ok(r.ok);
  const bad = parseUsersEnv('"a" "b"');
  t.notOk(bad.ok);
  t.match(bad.ok ? '' : bad.errors[0], /^PGCUTOVER_USERS: invalid JSON/);
});

t.test('every problem is reported, one line each', async (t) => {
  const r = parseUsersEnv(
    JSON.stringify({
      users: [
        { name: 'a', password: 'x', method: 'plain' },
        { name: 'b', password: md5hash },
        { name: 'c', password: verifier, method: 'md5' },
        { name: 'd', method: 'md5' },
        { name: 'e', password: 'SCRAM-SHA-256$4096:abc$def' },
        { password: 'x' },
        { name: 'f', password: 'x', extra: 1 },
        { name: 'g', password: 'x' },
        { name: 'g', password: 'y' },
      ],
    }),
  );
  t.notOk(r.ok);
  const errors = r.ok ? [] : r.errors;
  t.equal(errors.length, 8, errors.join('\n'));
  const expect = [
    /users\[0\] \(user "a"\): unknown method "plain"/,
    /users\[1\] \(user "b"\): method scram-sha-256 cannot use an md5 hash/,
    /users\[2\] \(user "c"\): method md5 cannot use a SCRAM-SHA-256 verifier/,
    /users\[3\] \(user "d"\): method md5 needs a password/,
    /users\[4\] \(user "e"\): malformed SCRAM-SHA-256 verifier/,
    /users\[5\]: user name must be a non-empty string/,
    /users\[6\]: unknown field "extra"/,
    /users\[8\]: user "g" is listed more than once/,
  ];
  for (const re of expect) t.ok(errors.some((e) => re.test(e)), re.source);
});

t.test('userlist.txt errors name the file and line', async (t) => {
  const p = file('"a" "x"\nnot quoted\n"b"\n"c" "x" "bogus"\n"d" "unterminated\n');
  const r = loadUsersFile(p);
  t.notOk(r.ok);
  const errors = r.ok ? [] : r.errors;
  t.equal(errors.length, 4, errors.join('\n'));
  t.ok(errors.some((e) => e.startsWith(`${p}:2: expected "user" "password"`)));
  t.ok(errors.some((e) => e.startsWith(`${p}:3: expected`)));
  t.ok(errors.some((e) => e.startsWith(`${p}:4 (user "c"): unknown method "bogus"`)));
  t.ok(errors.some((e) => e.startsWith(`${p}:5: expected`)));
});

t.test('bad JSON shapes and unreadable files', async (t) => {
  for (const text of ['{"users": 3}', '{"people": []}', '{"users":[1]}']) {
    const r = loadUsersFile(file(text));
    t.notOk(r.ok, text);
  }
  const missing = loadUsersFile(join(dir, 'nope'));
  t.notOk(missing.ok);
  t.match(missing.ok ? '' : missing.errors[0], /^cannot read users file .*nope: ENOENT/);
});
