/**
 * UnitAssembler as pg-protocol tests its parser: byte tables of client streams, fed through the FrameReader
 * whole, cut at every offset and byte by byte, must yield the same units (the same frames, in order, cut at
 * the same messages). No sockets.
 */
import t from 'tap';
import { FrameReader, type Frame } from '../../src/protocol/framer.js';
import { FRONTEND_TYPES } from '../../src/protocol/codes.js';
import { isWhole, MAX_UNIT_BYTES, MAX_UNIT_FRAMES, UnitAssembler } from '../../src/proxy/unit-assembler.js';
import { cstr, frame, int16, int32, query } from './fixtures/wire.js';

const parse = (name: string, sql: string) => frame('P', Buffer.concat([cstr(name), cstr(sql), int16(0)]));
const bind = (stmt: string) => frame('B', Buffer.concat([cstr(''), cstr(stmt), int16(0), int16(0), int16(0)]));
const describeP = frame('D', Buffer.concat([Buffer.from('P'), cstr('')]));
const execute = (rows = 0) => frame('E', Buffer.concat([cstr(''), int32(rows)]));
const sync = frame('S');
const flush = frame('H');
const fcall = frame('F', Buffer.concat([int32(1), int16(0), int16(0), int16(0)]));

/** Each table row: a stream and the units it holds, as type letters per unit ('' when a unit is still open). */
const TABLE: { name: string; stream: Buffer[]; units: string[]; open: string }[] = [
  { name: 'simple queries', stream: [query('select 1'), query('select 2; select 3')], units: ['Q', 'Q'], open: '' },
  { name: 'extended up to Sync', stream: [parse('', 'select $1'), bind(''), describeP, execute(), sync], units: ['PBDES'], open: '' },
  { name: 'pipelined extended units', stream: [parse('s1', 'select 1'), bind('s1'), execute(), sync, bind('s1'), execute(), sync], units: ['PBES', 'BES'], open: '' },
  { name: 'cut by Flush (postgres.js describe first)', stream: [parse('', 'select $1'), describeP, flush, bind(''), execute(), sync], units: ['PDH', 'BES'], open: '' },
  { name: 'cursor: Execute(rows) Flush', stream: [parse('', 'select 1'), bind(''), execute(3), flush, execute(3), flush, sync], units: ['PBEH', 'EH', 'S'], open: '' },
  { name: 'function call', stream: [fcall, query('select 1')], units: ['F', 'Q'], open: '' },
  { name: 'a unit still open', stream: [query('select 1'), parse('a', 'select 1'), bind('a')], units: ['Q'], open: 'PB' },
];

type Result = { units: string[]; bytes: string[]; open: number };

function run(chunks: Buffer[]): Result {
  const reader = new FrameReader(1 << 20, FRONTEND_TYPES);
  const asm = new UnitAssembler();
  const units: string[] = [];
  const bytes: string[] = [];
  let open = 0;
  for (const c of chunks) {
    const bad = reader.feed(c, (type, buf, start, end) => {
      open++;
      const u = asm.push({ type, buf, start, end });
      if (u === null) return;
      open = 0;
      units.push(u.map((f) => String.fromCharCode(f.type)).join(''));
      bytes.push(Buffer.concat(u.map((f) => f.buf.subarray(f.start, f.end))).toString('hex'));
    });
    if (bad) throw new Error(bad.message);
  }
  t.equal(asm.empty, open === 0, 'empty() says whether a unit is open');
  return { units, bytes, open };
}

for (const row of TABLE) {
  t.test(row.name, async (t) => {
    const stream = Buffer.concat(row.stream);
    const whole = run([stream]);
    t.same(whole.units, row.units, 'units as the table says');
    t.equal(whole.open, row.open.length, 'frames of the open unit');
    // The bytes of the closed units are the stream's, in order, each frame whole.
    const closedLen = row.stream.slice(0, row.stream.length - row.open.length).reduce((n, b) => n + b.length, 0);
    t.equal(whole.bytes.join(''), stream.subarray(0, closedLen).toString('hex'), 'the units hold the stream bytes in order');
    for (let cut = 1; cut < stream.length; cut++) {
      const r = run([stream.subarray(0, cut), stream.subarray(cut)]);
      if (JSON.stringify(r) !== JSON.stringify(whole)) {
        t.fail(`cut at ${cut} differs: ${JSON.stringify(r.units)}`);
        return;
      }
    }
    t.pass(`cut at every offset (${stream.length - 1}) gives the same units`);
    const bytewise = run([...stream].map((b) => Buffer.from([b])));
    t.same(bytewise, whole, 'byte by byte gives the same units');
  });
}

t.test('a unit is cut at the message cap and at the byte cap', async (t) => {
  const asm = new UnitAssembler();
  const b = bind('s');
  const f: Frame = { type: b[0], buf: b, start: 0, end: b.length };
  let cutAt = 0;
  for (let i = 1; i <= MAX_UNIT_FRAMES + 1; i++) if (asm.push(f) !== null) cutAt = i;
  t.equal(cutAt, MAX_UNIT_FRAMES + 1, `routed as it stands past ${MAX_UNIT_FRAMES} messages`);
  const big = parse('x', 'select ' + 'x'.repeat(1 << 20));
  const fb: Frame = { type: big[0], buf: big, start: 0, end: big.length };
  let n = 0;
  let unit: Frame[] | null = null;
  while (unit === null) {
    unit = asm.push(fb);
    n++;
  }
  t.equal(n, Math.ceil(MAX_UNIT_BYTES / big.length), 'routed once it holds MAX_UNIT_BYTES');
  t.notOk(isWhole(unit), 'a cut unit is not whole: only a whole unit can be known to be a read');
});

t.test('isWhole: Query, Sync and FunctionCall end a whole unit; Flush does not', async (t) => {
  const mk = (b: Buffer): Frame => ({ type: b[0], buf: b, start: 0, end: b.length });
  t.ok(isWhole([mk(query('select 1'))]));
  t.ok(isWhole([mk(bind('')), mk(sync)]));
  t.ok(isWhole([mk(fcall)]));
  t.notOk(isWhole([mk(bind('')), mk(execute(3)), mk(flush)]));
});
