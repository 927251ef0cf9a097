/**
 * FrameReader and StartupReader as pg-protocol tests its parser: byte tables, and every stream cut at every
 * offset (and into single bytes) must yield the same frames as the whole stream.
 */
import t from 'tap';
import { FrameReader, StartupReader } from '../../src/protocol/framer.js';
import { FRONTEND_TYPES } from '../../src/protocol/codes.js';
import { frame } from '../proxy/fixtures/wire.js';


const query = frame('Q', 'select 1\0');
const parse = frame('P', Buffer.concat([Buffer.from('s1\0select $1\0'), Buffer.from([0, 0])]));
const sync = frame('S', Buffer.alloc(0));
const big = frame('d', Buffer.alloc(3000, 7));
const stream = Buffer.concat([query, parse, big, sync]);

type Seen = { type: string; bytes: string };
function collect(chunks: Buffer[], max = 1 << 20): { frames: Seen[]; error: string | null; reader: FrameReader } {
  const reader = new FrameReader(max, FRONTEND_TYPES);
  const frames: Seen[] = [];
  for (const c of chunks) {
    const bad = reader.feed(c, (type, buf, start, end) => frames.push({ type: String.fromCharCode(type), bytes: buf.subarray(start, end).toString('hex') }));
    if (bad) return { frames, error: `${bad.sqlstate} ${bad.message}`, reader };
  }
  return { frames, error: null, reader };
}

const whole = collect([stream]);

t.test('a whole stream yields each frame with its header, in order', async (t) => {
  t.equal(whole.error, null);
  t.same(whole.frames.map((f) => f.type), ['Q', 'P', 'd', 'S']);
  t.equal(whole.frames[0]!.bytes, query.toString('hex'));
  t.equal(whole.frames[2]!.bytes, big.toString('hex'));
  t.equal(whole.reader.buffered, 0);
});

t.test('the stream cut in two at every offset yields the same frames', async (t) => {
  let bad = 0;
  for (let i = 1; i < stream.length; i++) {
    const r = collect([stream.subarray(0, i), stream.subarray(i)]);
    if (r.error !== null || JSON.stringify(r.frames) !== JSON.stringify(whole.frames)) bad++;
  }
  t.equal(bad, 0, `all ${stream.length - 1} cuts`);
});

t.test('the stream cut in three around every header yields the same frames', async (t) => {
  let bad = 0;
  for (let i = 1; i < 40; i++) {
    for (let j = i + 1; j < Math.min(stream.length, i + 12); j++) {
      const r = collect([stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]);
      if (r.error !== null || JSON.stringify(r.frames) !== JSON.stringify(whole.frames)) bad++;
    }
  }
  t.equal(bad, 0);
});

t.test('one byte at a time yields the same frames, and buffered counts what is held', async (t) => {
  const chunks = [...stream].map((b) => Buffer.from([b]));
  const r = collect(chunks);
  t.same(r.frames, whole.frames);
  const reader = new FrameReader(1 << 20, FRONTEND_TYPES);
  reader.feed(big.subarray(0, 100), () => undefined);
  t.equal(reader.buffered, 100, 'a partial frame counts the bytes received, not the length claimed');
});

t.test('a frame complete within one chunk is a view, not a copy', async (t) => {
  const reader = new FrameReader(1 << 20, FRONTEND_TYPES);
  let same = false;
  reader.feed(stream, (_type, buf) => {
    same ||= buf === stream;
  });
  t.ok(same);
});

t.test('violations: unknown type, length below 4, length over the limit', async (t) => {
  const table: Array<[string, Buffer, RegExp]> = [
    ['unknown type byte', Buffer.from([0x01, 0, 0, 0, 4]), /08P01 invalid frontend message type 1/],
    ['length 3', Buffer.from(['Q'.charCodeAt(0), 0, 0, 0, 3]), /08P01 invalid message length 3/],
    ['negative length', Buffer.from(['Q'.charCodeAt(0), 0xff, 0xff, 0xff, 0xff]), /08P01 invalid message length -1/],
    ['over the limit', frame('Q', Buffer.alloc(200)), /08P01 message length 204 exceeds the limit of 100 bytes/],
  ];
  for (const [name, bytes, want] of table) {
    t.match(collect([bytes], 100).error, want, name);
    // The same violation when the header arrives split.
    t.match(collect([bytes.subarray(0, 2), bytes.subarray(2)], 100).error, want, `${name}, header split`);
  }
  t.equal(collect([frame('Q', Buffer.alloc(95))], 100).error, null, 'exactly at the limit is accepted');
});

t.test('a frame that claims a huge length holds only what arrived', async (t) => {
  const reader = new FrameReader(1 << 30, null);
  const hdr = Buffer.from(['P'.charCodeAt(0), 0x10, 0, 0, 0]);
  reader.feed(hdr, () => undefined);
  reader.feed(Buffer.alloc(1000), () => undefined);
  t.equal(reader.buffered, 1005);
});

t.test('StartupReader: whole, split, with trailing bytes, and bad lengths', async (t) => {
  const startup = Buffer.alloc(8 + 10);
  startup.writeInt32BE(startup.length, 0);
  startup.writeInt32BE(196608, 4);
  const extra = query;
  const both = Buffer.concat([startup, extra]);
  for (let i = 1; i < both.length; i++) {
    const r = new StartupReader(10000);
    const a = r.feed(both.subarray(0, i));
    const out = a ?? r.feed(both.subarray(i));
    if (out === null || 'sqlstate' in out) {
      t.fail(`cut at ${i}: ${JSON.stringify(out)}`);
      continue;
    }
    if (a !== null && i < startup.length) t.fail(`cut at ${i}: packet before it was complete`);
    t.equal(out.packet.toString('hex'), startup.toString('hex'), `cut at ${i}: packet`);
  }
  const tooShort = Buffer.from([0, 0, 0, 4]);
  t.match(new StartupReader(10000).feed(tooShort), { sqlstate: '08P01' });
  const tooLong = Buffer.from([0, 1, 0, 0]);
  t.match(new StartupReader(10000).feed(tooLong), { sqlstate: '08P01' });
});
