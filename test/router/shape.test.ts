import t from 'tap';
import { loadModule, scanSync } from 'libpg-query';
import { leadingHint, shapeKey } from '../../src/router/shape.js';

// Expected keys are written with `?` for the placeholder, to read like the SQL they come from.
const k = (s: string) => s.replaceAll('?', '{}');

const table: [string, string, string][] = [
  ['no literal: same string back', 'SELECT * FROM t WHERE a = $1', 'SELECT * FROM t WHERE a = $1'],
  ['integer', 'SELECT abalance FROM pgbench_accounts WHERE aid = 12345;', 'SELECT abalance FROM pgbench_accounts WHERE aid = ?;'],
  ['decimal and leading dot', 'select 1.5, .5, 5., 007', 'select ?, ?, ?, ?'],
  ['scientific notation', 'select 1e10, 1.5E-3, 2e+7, 3e', 'select ?, ?, ?, ?e'],
  ['negative number keeps its sign operator', 'UPDATE a SET b = b + -4321 WHERE id=-1', 'UPDATE a SET b = b + -? WHERE id=-?'],
  ['range dots are not a decimal', 'select a[1..2]', 'select a[?..?]'],
  ['identifiers with digits untouched', 'select t1.c2, x3y from t1, "t 4"', 'select t1.c2, x3y from t1, "t 4"'],
  ['digits after an identifier dot', 'select t1.5', 'select t1?'],
  ['parameters are not literals', 'insert into t values ($1, $2, $10)', 'insert into t values ($1, $2, $10)'],
  ['identifier containing $', 'select a$1, b$$c from t$2', 'select a$1, b$$c from t$2'],
  ['string with doubled quote', "select 'it''s', 'x'", 'select ?, ?'],
  ['E-string with backslash escapes', "select E'a\\'b\\\\', e'\\n''x'", 'select ?, ?'],
  ['backslash in a standard string ends nothing', "select 'a\\', 2", 'select ?, ?'],
  ['bit, hex and national strings', "select B'1010', x'ff', N'abc', b'0'", 'select ?, ?, ?, ?'],
  ['unicode string and identifier', "select U&'d\\0061t' UESCAPE '!', U&\"d\\0061t\" from t", 'select ? UESCAPE ?, U&"d\\0061t" from t'],
  ['typed literals', "select date '2024-01-01', interval '1 day', '{1,2}'::int[]", 'select date ?, interval ?, ?::int[]'],
  ['dollar quote', "select $$it's $1 -- not a comment$$, 1", 'select ?, ?'],
  ['tagged dollar quote with nested $$', 'do $fn$ begin perform $$x$$; end $fn$', 'do ?'],
  ['dollar tag needs a matching close', 'select $a$ x $b$ y $a$ || 3', 'select ? || ?'],
  ['quoted identifier keeps digits and quotes', 'select "col 1", "a""b" from "T2" where x = 5', 'select "col 1", "a""b" from "T2" where x = ?'],
  ['string inside a quoted identifier is not a literal', `select "it's 5" from t`, `select "it's 5" from t`],
  ['line comment becomes a space', "select 1 -- it's 2\nfrom t", 'select ?  \nfrom t'],
  ['block comment becomes a space', "select /* 'x' 5 */ 1", 'select   ?'],
  ['nested block comment', "select /* a /* 'b' */ c */ 2", 'select   ?'],
  ['hint comment kept verbatim', '/* pg-cutover:target */ select 1', '/* pg-cutover:target */ select ?'],
  ['hint line comment kept', '-- pg-cutover:source\nselect 2', '-- pg-cutover:source\nselect ?'],
  ['sqlcommenter trace comment dropped', "select 1 /*traceparent='00-abc-01'*/", 'select ?  '],
  ['operator chars around literals', 'select 1+2*3/4, a<>5, b::numeric(10,2)', 'select ?+?*?/?, a<>?, b::numeric(?,?)'],
  ['comment start inside operator', 'select 1 +-- c\n2', 'select ? + \n?'],
  ['hex literal (PG16+) keeps its tail', 'select 0x1F', 'select ?x1F'],
  ['non-ASCII identifiers', "select ñ1, 'ü' from tä5", 'select ñ1, ? from tä5'],
  ['IN list', "select * from t where id in (1, 2, 3) and s = 'a'", 'select * from t where id in (?, ?, ?) and s = ?'],
  ['empty', '', ''],
  // Unterminated constructs mask (or keep) to the end and never throw.
  ['unterminated string', "select 'abc", 'select ?'],
  ['unterminated E-string ending in backslash', "select E'abc\\", 'select ?'],
  ['unterminated dollar quote', 'select $$abc', 'select ?'],
  ['unterminated quoted identifier', 'select "abc', 'select "abc'],
  ['unterminated block comment', 'select 1 /* abc', 'select ?  '],
  ['lone dollar', 'select $ 1, $a', 'select $ ?, $a'],
  ['trailing E', "select e", 'select e'],
  ['no doubled quote in bit strings', "select B'01''a'", 'select ??'],
  ['string continuation across a newline: one literal to the server, two masks here', "select 'a'\n  'b'", 'select ?\n  ?'],
];

t.test('shapeKey table', async (t) => {
  for (const [name, sql, key] of table) t.equal(shapeKey(sql), k(key), name);
});

t.test('statements differing only in literals share a key', async (t) => {
  const pairs: [string, string][] = [
    ['SELECT abalance FROM pgbench_accounts WHERE aid = 1;', 'SELECT abalance FROM pgbench_accounts WHERE aid = 98765;'],
    ["UPDATE t SET s = 'a' WHERE id = 1.5", "UPDATE t SET s = 'it''s long' WHERE id = 2e9"],
    ['select $$a$$', "select $x$b$x$"],
    ["insert into t values (E'\\x', B'1')", "insert into t values ('y', X'FF')"],
    ['select 1 /* a */', 'select 22 /* bb */'],
  ];
  for (const [a, b] of pairs) t.equal(shapeKey(a), shapeKey(b), a);
});

t.test('structurally different statements get different keys', async (t) => {
  const pairs: [string, string][] = [
    ['select * from t1', 'select * from t2'],
    ['select $1', 'select $2'],
    ['select 1 for update', 'select 1'],
    ['/* pg-cutover:source */ select 1', '/* pg-cutover:target */ select 1'],
    ['select "a" from t', "select 'a' from t"],
  ];
  for (const [a, b] of pairs) t.not(shapeKey(a), shapeKey(b), `${a} vs ${b}`);
});

t.test('never throws on arbitrary input', async (t) => {
  const alphabet = ['\'', '"', '$', '$$', '$a$', '-', '--', '/*', '*/', '\\', 'E', 'e\'', 'U&', '1', '.', 'e', '\n', ' ', 'x', 'ü'];
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let n = 0; n < 2000; n++) {
    let s = '';
    for (let j = 0; j < 12; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    shapeKey(s);
  }
  t.pass('2000 random strings');
});

t.test('leadingHint', async (t) => {
  t.equal(leadingHint('/* pg-cutover:source */ select 1'), 'source');
  t.equal(leadingHint('  -- pg-cutover:target\n select 1'), 'target');
  t.equal(leadingHint('/* app=x */ /* PG-CUTOVER:Target */ select 1'), 'target');
  t.equal(leadingHint('select 1 /* pg-cutover:target */'), undefined, 'only before the first token');
  t.equal(leadingHint("select '/* pg-cutover:target */'"), undefined, 'not inside a literal');
  t.equal(leadingHint('/* pg-cutover:targets */ select 1'), undefined);
  t.equal(leadingHint(''), undefined);
});

/**
 * The PostgreSQL scanner (libpg-query) as the oracle: for random sequences of awkward tokens,
 * rebuilding the key from its tokens must give exactly shapeKey's answer.
 */
t.test('agrees with the PostgreSQL scanner on token boundaries', async (t) => {
  await loadModule();
  const LITERALS = new Set(['SCONST', 'FCONST', 'ICONST']);
  const oracle = (text: string): string => {
    const sql = Buffer.from(text); // the scanner reports UTF-8 byte offsets
    let out = '';
    let last = 0;
    for (const tok of scanSync(text).tokens) {
      out += sql.subarray(last, tok.start).toString();
      const src = sql.subarray(tok.start, tok.end).toString();
      // B'..', X'..' and U&'..' come back as UNKNOWN tokens in this build.
      if (LITERALS.has(tok.tokenName) || (tok.tokenName === 'UNKNOWN' && /^([bBxX]'|[uU]&')/.test(src))) out += '{}';
      else if (tok.tokenName.endsWith('_COMMENT')) out += /pg-cutover/i.test(src) ? src : ' ';
      else out += src;
      last = tok.end;
    }
    return out + sql.subarray(last).toString();
  };
  // Left out on purpose: N'..' (N is a separate token there), 'a'\n'b' (merged there), 0x1F and
  // 1_000 (PostgreSQL 16+ syntax, which our PostgreSQL 14/15 backends read as a number and a name).
  const frags = [
    'select', 't1', '1', '00', '1.5', '.5', '1..', '..', '1.e5', '1e5', '2E-3', "'a''b'", "E'\\''", "e'x'", "E'\\\\'",
    '$$x$$', '$q$ $$ $q$', '$a$', '$_$', '$é$', '$$', '$', '$1', '$1a', 'a$b', '"id"', '"a""b"', 'U&"x"', "B'01'", "X'ff'",
    "U&'a'", '-- c\n', '--', '/* c /* d */ */', '/* pg-cutover:target */', '+', '-', '::', '(', ')', ',', '.', '*', '/',
    '=', '<>', 'e', 'x', 'ü', 'é', '\t', '\r', "'", '"',
  ];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  let compared = 0;
  let mismatches = 0;
  for (let i = 0; i < 6000; i++) {
    let sql = '';
    const n = 2 + Math.floor(rnd() * 6);
    for (let j = 0; j < n; j++) sql += frags[Math.floor(rnd() * frags.length)] + (rnd() < 0.5 ? ' ' : '');
    let want: string;
    try {
      want = oracle(sql);
    } catch {
      continue; // the scanner rejects it (unterminated quote, trailing junk): nothing to compare
    }
    compared++;
    const got = shapeKey(sql);
    if (got !== want && mismatches++ < 5) t.equal(got, want, JSON.stringify(sql));
  }
  t.equal(mismatches, 0, `no mismatch in ${compared} scannable statements`);
  t.ok(compared > 2000, 'enough statements compared');
});
