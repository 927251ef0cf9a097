/**
 * BackendScanner: only the bodies of the types of interest reach the handler, whole and in order, however the
 * backend's stream is cut; everything else is skipped by length without being read.
 */
import t from 'tap';
import { BackendScanner } from '../../src/protocol/backend-scan.js';
import { frame } from '../proxy/fixtures/wire.js';


const Z = 'Z'.charCodeAt(0);
const E = 'E'.charCodeAt(0);
const S = 'S'.charCodeAt(0);
const stream = Buffer.concat([
  frame('T', Buffer.alloc(40, 1)),
  frame('D', Buffer.alloc(2000, 2)),
  frame('S', 'TimeZone\0UTC\0'),
  frame('D', Buffer.alloc(3, 3)),
  frame('C', 'SELECT 2\0'),
  frame('E', 'SERROR\0C57014\0Mcanceling statement due to user request\0\0'),
  frame('Z', 'I'),
]);

type Seen = { type: string; body: string; framed: boolean };
function scan(chunks: Buffer[], types = [Z, E, S]): { seen: Seen[]; scanner: BackendScanner } {
  const seen: Seen[] = [];
  const scanner = new BackendScanner(types, (type, buf, s, e, frameStart) => {
    seen.push({ type: String.fromCharCode(type), body: buf.subarray(s, e).toString('latin1'), framed: frameStart >= 0 });
    if (frameStart >= 0) {
      // When the header is in this chunk, it sits 5 bytes before the body.
      if (buf[frameStart] !== type || buf.readInt32BE(frameStart + 1) !== e - s + 4) throw new Error('bad frameStart');
    }
  });
  for (const c of chunks) scanner.feed(c);
  return { seen, scanner };
}

const whole = scan([stream]);
const strip = (xs: Seen[]) => xs.map(({ type, body }) => ({ type, body }));

t.test('a whole stream hands over only the bodies of interest, in order', async (t) => {
  t.same(strip(whole.seen), [
    { type: 'S', body: 'TimeZone\0UTC\0' },
    { type: 'E', body: 'SERROR\0C57014\0Mcanceling statement due to user request\0\0' },
    { type: 'Z', body: 'I' },
  ]);
  t.ok(whole.seen.every((s) => s.framed), 'every header was in the chunk');
  t.ok(whole.scanner.atBoundary);
});

t.test('cut in two at every offset: same bodies, and at a boundary at the end', async (t) => {
  let bad = 0;
  for (let i = 1; i < stream.length; i++) {
    const r = scan([stream.subarray(0, i), stream.subarray(i)]);
    if (JSON.stringify(strip(r.seen)) !== JSON.stringify(strip(whole.seen)) || !r.scanner.atBoundary) bad++;
  }
  t.equal(bad, 0, `all ${stream.length - 1} cuts`);
});

t.test('one byte at a time: same bodies; not at a boundary mid-frame', async (t) => {
  const chunks = [...stream].map((b) => Buffer.from([b]));
  t.same(strip(scan(chunks).seen), strip(whole.seen));
  const s = scan([stream.subarray(0, 3)]);
  t.notOk(s.scanner.atBoundary, 'a partial header');
  const s2 = scan([stream.subarray(0, 50)]);
  t.notOk(s2.scanner.atBoundary, 'inside a skipped body');
});

t.test('no types of interest: nothing handed over, the stream still tracked', async (t) => {
  const r = scan([stream.subarray(0, 77), stream.subarray(77)], []);
  t.same(r.seen, []);
  t.ok(r.scanner.atBoundary);
});
