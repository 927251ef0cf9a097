/**
 * The shadow comparison's pure parts: ResultCollector turns a reply stream into per-statement results
 * (tag, count, hash of unmasked column bytes), compareUnits finds the first difference and its class.
 */
import t from 'tap';
import { ResultCollector, DEFAULT_MASK, type UnitResult, type StatementResult } from '../../src/shadow/results.js';
import { compareUnits } from '../../src/shadow/compare.js';
import { frame } from '../proxy/fixtures/wire.js';

const cstr = (s: string) => Buffer.from(s + '\0');
function rowDescription(cols: Array<[string, number]>): Buffer {
  const parts = [Buffer.from([0, 0])];
  parts[0]!.writeInt16BE(cols.length, 0);
  for (const [name, oid] of cols) {
    const f = Buffer.alloc(18);
    f.writeInt32BE(oid, 6);
    parts.push(cstr(name), f);
  }
  return frame('T', Buffer.concat(parts));
}
function dataRow(vals: Array<string | null>): Buffer {
  const parts: Buffer[] = [Buffer.alloc(2)];
  parts[0]!.writeInt16BE(vals.length, 0);
  for (const v of vals) {
    const l = Buffer.alloc(4);
    l.writeInt32BE(v === null ? -1 : Buffer.byteLength(v), 0);
    parts.push(l);
    if (v !== null) parts.push(Buffer.from(v));
  }
  return frame('D', Buffer.concat(parts));
}
const complete = (tag: string) => frame('C', cstr(tag));
const error = (code: string) => frame('E', Buffer.concat([cstr('SERROR'), cstr('C' + code), cstr('Mboom'), Buffer.from([0])]));
const ready = frame('Z', Buffer.from('T'));

function collect(frames: Buffer[]): UnitResult[] {
  const out: UnitResult[] = [];
  const c = new ResultCollector(DEFAULT_MASK, (u) => out.push(u));
  for (const f of frames) c.frame(f[0]!, f, 0, f.length);
  return out;
}

t.test('tags and counts: INSERT, SELECT, UPDATE, BEGIN, empty query, suspended portal', async (t) => {
  const units = collect([
    complete('INSERT 0 3'),
    rowDescription([['n', 23]]),
    dataRow(['1']),
    dataRow(['2']),
    complete('SELECT 2'),
    complete('UPDATE 7'),
    complete('BEGIN'),
    frame('I', Buffer.alloc(0)),
    dataRow(['x']),
    frame('s', Buffer.alloc(0)),
    ready,
  ]);
  t.equal(units.length, 1, 'one unit per ReadyForQuery');
  t.same(
    units[0]!.map((r) => [r.ok, r.tag, r.rows]),
    [
      [true, 'INSERT', 3],
      [true, 'SELECT', 2],
      [true, 'UPDATE', 7],
      [true, 'BEGIN', 0],
      [true, '', 0],
      [true, 'SUSPENDED', 1],
    ],
  );
});

t.test('masked columns (by name and by type) do not change the hash; others do', async (t) => {
  const desc = rowDescription([
    ['id', 23],
    ['at', 1184],
    ['v', 25],
  ]);
  const one = (id: string, at: string, v: string | null) => collect([desc, dataRow([id, at, v]), complete('SELECT 1'), ready])[0]![0]!.hash;
  t.equal(one('1', '2026-01-01', 'a'), one('99', '2027-12-31', 'a'), 'id and timestamptz masked');
  t.not(one('1', 'x', 'a'), one('1', 'x', 'b'), 'value differs');
  t.not(one('1', 'x', null), one('1', 'x', ''), 'NULL is not the empty string');
  const order = (a: string, b: string) => collect([desc, dataRow(['1', 'x', a]), dataRow(['1', 'x', b]), complete('SELECT 2'), ready])[0]![0]!.hash;
  t.not(order('a', 'b'), order('b', 'a'), 'row order matters');
  t.not(order('ab', ''), order('a', 'b'), 'column boundaries matter');
});

t.test('errors carry their SQLSTATE', async (t) => {
  const u = collect([complete('BEGIN'), error('23505'), ready])[0]!;
  t.same(u[1], { ok: false, sqlstate: '23505', rows: 0, hash: '' });
});

const ok = (tag: string, rows: number, hash = 'h'): StatementResult => ({ ok: true, tag, rows, hash });
const err = (sqlstate: string): StatementResult => ({ ok: false, sqlstate, rows: 0, hash: '' });

t.test('compareUnits: every class, the first difference wins', async (t) => {
  const table: Array<[string, UnitResult, UnitResult, string | null, number?]> = [
    ['equal', [ok('INSERT', 1), ok('SELECT', 2)], [ok('INSERT', 1), ok('SELECT', 2)], null],
    ['both fail alike', [err('23505')], [err('23505')], null],
    ['target fails', [ok('INSERT', 1)], [err('23505')], 'error-on-target-only'],
    ['source fails', [err('23505')], [ok('INSERT', 1)], 'error-on-source-only'],
    ['different SQLSTATE', [err('23505')], [err('23503')], 'sqlstate'],
    ['row count', [ok('UPDATE', 1)], [ok('UPDATE', 0)], 'row-count'],
    ['tag', [ok('UPDATE', 1)], [ok('DELETE', 1)], 'row-count'],
    ['values', [ok('SELECT', 1, 'a')], [ok('SELECT', 1, 'b')], 'value'],
    ['shadow missing a statement', [ok('INSERT', 1), ok('INSERT', 1)], [ok('INSERT', 1)], 'error-on-target-only', 1],
    ['lock timeout explained', [ok('UPDATE', 1)], [err('55P03')], 'shadow-lock-timeout'],
    ['first difference wins', [ok('SELECT', 1, 'a'), ok('UPDATE', 1)], [ok('SELECT', 1, 'b'), err('55P03')], 'value', 0],
  ];
  for (const [name, a, b, cls, at] of table) {
    const d = compareUnits(a, b);
    t.equal(d?.cls ?? null, cls, name);
    if (at !== undefined) t.equal(d?.statement, at, `${name}: statement index`);
  }
});
