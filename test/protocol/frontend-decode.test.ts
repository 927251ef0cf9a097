import t from 'tap';
import { createRequire } from 'node:module';
import { parseHead, queryText } from '../../src/protocol/frontend-decode.js';
import { decodeFrontend, decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse } from './fixtures/frontend-decode.js';

// Loaded through require: under tap's TypeScript loader an ESM import of pg-protocol fails (named exports of
// its CommonJS build are not seen, and its ESM wrapper hits a require cycle).
const { serialize } = createRequire(import.meta.url)('pg-protocol') as typeof import('pg-protocol');

/** Splits a serialized frame into (type, body), checking the length header on the way. */
function split(frame: Buffer): [number, Buffer] {
  if (frame.readInt32BE(1) !== frame.length - 1) throw new Error('bad test frame');
  return [frame[0]!, frame.subarray(5)];
}

/** Tiny body builder for messages pg-protocol does not serialize, and for malformed ones. */
const b = {
  i16: (n: number) => {
    const x = Buffer.alloc(2);
    x.writeInt16BE(n);
    return x;
  },
  i32: (n: number) => {
    const x = Buffer.alloc(4);
    x.writeInt32BE(n);
    return x;
  },
  u32: (n: number) => {
    const x = Buffer.alloc(4);
    x.writeUInt32BE(n);
    return x;
  },
  cstr: (s: string) => Buffer.concat([Buffer.from(s), Buffer.from([0])]),
  cat: (...parts: (Buffer | string)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : p))),
};
const bytes = (...v: number[]) => Buffer.from(v);
const F = (c: string) => c.charCodeAt(0);

// A FunctionCall (lo_open(1234, 0x60000), libpq style): oid, 1 format (binary), 2 args, result binary.
const functionCallBody = b.cat(b.u32(952), b.i16(1), b.i16(1), b.i16(2), b.i32(4), b.u32(1234), b.i32(4), b.u32(0x60000), b.i16(1));

const valid: [string, Buffer, unknown][] = [
  ['empty query', serialize.query(''), { name: 'query', text: '' }],
  ['query', serialize.query('select 1'), { name: 'query', text: 'select 1' }],
  ['utf8 query', serialize.query("select 'snö ☃ 😀'"), { name: 'query', text: "select 'snö ☃ 😀'" }],
  ['unnamed parse', serialize.parse({ text: 'select 1' }), { name: 'parse', statement: '', text: 'select 1', paramTypes: [] }],
  [
    'named parse with types',
    serialize.parse({ name: 's1', text: 'select $1::int, $2', types: [23, 0, 0xffffffff] }),
    { name: 'parse', statement: 's1', text: 'select $1::int, $2', paramTypes: [23, 0, 0xffffffff] },
  ],
  [
    'default bind',
    serialize.bind(),
    { name: 'bind', portal: '', statement: '', paramFormats: [], params: [], resultFormats: [0] },
  ],
  [
    'bind with text, null, binary values',
    serialize.bind({ portal: 'p1', statement: 's1', values: ['abc', null, Buffer.from([1, 2, 3]), ''], binary: true }),
    {
      name: 'bind',
      portal: 'p1',
      statement: 's1',
      paramFormats: [0, 0, 1, 0],
      params: [Buffer.from('abc'), null, Buffer.from([1, 2, 3]), Buffer.alloc(0)],
      resultFormats: [1],
    },
  ],
  ['describe unnamed statement', serialize.describe({ type: 'S' }), { name: 'describe', kind: 'S', target: '' }],
  ['describe portal', serialize.describe({ type: 'P', name: 'cur' }), { name: 'describe', kind: 'P', target: 'cur' }],
  ['execute', serialize.execute(), { name: 'execute', portal: '', maxRows: 0 }],
  ['execute portal rows', serialize.execute({ portal: 'cur', rows: 50 }), { name: 'execute', portal: 'cur', maxRows: 50 }],
  ['close statement', serialize.close({ type: 'S', name: 's1' }), { name: 'close', kind: 'S', target: 's1' }],
  ['close portal', serialize.close({ type: 'P' }), { name: 'close', kind: 'P', target: '' }],
  ['sync', serialize.sync(), { name: 'sync' }],
  ['flush', serialize.flush(), { name: 'flush' }],
  ['terminate', serialize.end(), { name: 'terminate' }],
  ['copyData', serialize.copyData(Buffer.from('1\tfoo\n')), { name: 'copyData', data: Buffer.from('1\tfoo\n') }],
  ['copyDone', serialize.copyDone(), { name: 'copyDone' }],
  ['copyFail', serialize.copyFail('client gave up'), { name: 'copyFail', message: 'client gave up' }],
  ['password, undecided', serialize.password('pw'), { name: 'authResponse', data: Buffer.from('pw\0') }],
  [
    'functionCall',
    b.cat(bytes(F('F')), b.i32(4 + functionCallBody.length), functionCallBody),
    { name: 'functionCall', functionOid: 952, argFormats: [1], args: [b.u32(1234), b.u32(0x60000)], resultFormat: 1 },
  ],
];

t.test('decodes each message pg-protocol serializes', async (t) => {
  for (const [what, frame, expected] of valid) {
    const [type, body] = split(frame);
    t.strictSame(decodeFrontend(type, body), expected, what);
  }
});

t.test('Bind parameters and CopyData are views into the frame, not copies', async (t) => {
  const [, body] = split(serialize.bind({ values: ['abc'] }));
  const m = decodeFrontend(F('B'), body);
  if (m.name !== 'bind') return t.fail(m.name);
  t.equal(m.params[0]!.buffer, body.buffer);
  const [, data] = split(serialize.copyData(Buffer.from('row\n')));
  const c = decodeFrontend(F('d'), data);
  t.equal(c.name === 'copyData' && c.data.buffer, data.buffer);
});

t.test("'p' decoders", async (t) => {
  t.strictSame(decodePasswordMessage(split(serialize.password('s3cret'))[1]), { name: 'password', password: 's3cret' });
  t.strictSame(decodePasswordMessage(split(serialize.password('md5abcdef'))[1]), { name: 'password', password: 'md5abcdef' });
  t.strictSame(decodePasswordMessage(b.cstr('')), { name: 'protocolError', sqlstate: '28P01', message: 'empty password returned by client' });
  for (const bad of [Buffer.alloc(0), Buffer.from('pw'), b.cat('pw', bytes(0), 'x'), bytes(0, 0)]) {
    t.strictSame(decodePasswordMessage(bad), { name: 'protocolError', sqlstate: '08P01', message: 'invalid password packet size' });
  }
  const first = 'n,,n=,r=rOprNGfwEbeRWgbNEkqO';
  t.strictSame(decodeSASLInitialResponse(split(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', first))[1]), {
    name: 'saslInitialResponse',
    mechanism: 'SCRAM-SHA-256',
    data: Buffer.from(first),
  });
  t.strictSame(decodeSASLInitialResponse(b.cat(b.cstr('SCRAM-SHA-256'), b.i32(-1))), {
    name: 'saslInitialResponse',
    mechanism: 'SCRAM-SHA-256',
    data: null,
  });
  const final = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
  t.strictSame(decodeSASLResponse(split(serialize.sendSCRAMClientFinalMessage(final))[1]), { name: 'saslResponse', data: Buffer.from(final) });
  const err = (message: string) => ({ name: 'protocolError', sqlstate: '08P01', message });
  t.strictSame(decodeSASLInitialResponse(b.cat('SCRAM-SHA-256')), err('invalid string in message'));
  t.strictSame(decodeSASLInitialResponse(b.cat(b.cstr('SCRAM-SHA-256'), b.i32(5), 'abc')), err('insufficient data left in message'));
  t.strictSame(decodeSASLInitialResponse(b.cat(b.cstr('SCRAM-SHA-256'), b.i32(-2))), err('insufficient data left in message'));
  t.strictSame(decodeSASLInitialResponse(b.cat(b.cstr('SCRAM-SHA-256'), b.i32(1), 'ab')), err('invalid message format'));
});

t.test('hot-path extractors agree with decodeFrontend', async (t) => {
  for (const text of ['', 'select 1', "insert into t values ('ü', $1)"]) {
    t.equal(queryText(split(serialize.query(text))[1]), text);
    for (const name of ['', 'stmt_1']) {
      const body = split(serialize.parse({ name, text, types: [23, 25] }))[1];
      t.strictSame(parseHead(body), { name, text });
      t.strictSame(parseHead(split(serialize.parse({ name, text }))[1]), { name, text });
    }
  }
  t.equal(queryText(Buffer.alloc(0)), null);
  t.equal(queryText(Buffer.from('select 1')), null, 'no terminator');
  t.equal(queryText(b.cat('select 1', bytes(0), 'x', bytes(0))), null, 'NUL inside');
  t.equal(parseHead(b.cat(b.cstr(''), b.cstr('select 1'), b.i16(1))), null, 'OID count past the end');
  t.equal(parseHead(b.cat(b.cstr(''), b.cstr('select 1'), b.i16(0), bytes(9))), null, 'trailing byte');
});

const err = (message: string) => ({ name: 'protocolError', sqlstate: '08P01', message });
const malformed: [string, string, Buffer, unknown][] = [
  ['query without NUL', 'Q', Buffer.from('select 1'), err('invalid string in message')],
  ['query with trailing bytes', 'Q', b.cat(b.cstr('select 1'), 'x'), err('invalid message format')],
  ['parse missing text NUL', 'P', b.cat(b.cstr('s'), 'select 1'), err('invalid string in message')],
  ['parse count past the end', 'P', b.cat(b.cstr(''), b.cstr('select $1'), b.i16(2), b.u32(23)), err('insufficient data left in message')],
  ['parse max count, no OIDs', 'P', b.cat(b.cstr(''), b.cstr('x'), bytes(0xff, 0xff)), err('insufficient data left in message')],
  ['parse trailing', 'P', b.cat(b.cstr(''), b.cstr('x'), b.i16(0), bytes(1)), err('invalid message format')],
  [
    'bind formats vs params',
    'B',
    b.cat(b.cstr(''), b.cstr(''), b.i16(2), b.i16(0), b.i16(0), b.i16(3)),
    err('bind message has 2 parameter formats but 3 parameters'),
  ],
  ['bind value length -2', 'B', b.cat(b.cstr(''), b.cstr(''), b.i16(0), b.i16(1), b.i32(-2), b.i16(0)), err('insufficient data left in message')],
  ['bind value past end', 'B', b.cat(b.cstr(''), b.cstr(''), b.i16(0), b.i16(1), b.i32(10), 'abc'), err('insufficient data left in message')],
  ['bind param count past end', 'B', b.cat(b.cstr(''), b.cstr(''), b.i16(0), b.i16(1000), b.i32(-1)), err('insufficient data left in message')],
  ['bind without result formats', 'B', b.cat(b.cstr(''), b.cstr(''), b.i16(0), b.i16(0)), err('insufficient data left in message')],
  ['bind trailing', 'B', b.cat(b.cstr(''), b.cstr(''), b.i16(0), b.i16(0), b.i16(0), bytes(7)), err('invalid message format')],
  ['bind portal without NUL', 'B', Buffer.from('portal'), err('invalid string in message')],
  ['describe empty', 'D', Buffer.alloc(0), err('no data left in message')],
  ['describe bad kind', 'D', b.cat('X', b.cstr('s1')), err('invalid DESCRIBE message subtype 88')],
  ['close bad kind', 'C', b.cat('s', b.cstr('')), err('invalid CLOSE message subtype 115')],
  ['close without NUL', 'C', Buffer.from('Sname'), err('invalid string in message')],
  ['execute short rows', 'E', b.cat(b.cstr(''), bytes(0, 0, 1)), err('insufficient data left in message')],
  ['sync with body', 'S', bytes(0), err('invalid message format')],
  ['flush with body', 'H', bytes(1, 2), err('invalid message format')],
  ['copyFail without NUL', 'f', Buffer.from('oops'), err('invalid string in message')],
  [
    'function formats vs args',
    'F',
    b.cat(b.u32(1), b.i16(2), b.i16(0), b.i16(0), b.i16(1), b.i32(-1), b.i16(0)),
    err('function call message contains 2 argument formats but 1 arguments'),
  ],
  ['function arg size -3', 'F', b.cat(b.u32(1), b.i16(0), b.i16(1), b.i32(-3), b.i16(0)), err('invalid argument size -3 in function call message')],
  ['function trailing', 'F', b.cat(b.u32(1), b.i16(0), b.i16(0), b.i16(0), bytes(0)), err('invalid message format')],
  ['unknown type', 'Z', Buffer.alloc(0), err('invalid frontend message type 90')],
];

t.test('malformed bodies return a protocolError with PostgreSQL wording', async (t) => {
  for (const [what, type, body, expected] of malformed) t.strictSame(decodeFrontend(F(type), body), expected, what);
});

t.test('every truncation and every trailing byte of a valid body is refused', async (t) => {
  // CopyData takes any bytes; Terminate and CopyDone bodies are not read; CopyFail's text ends at its NUL.
  const lenient = new Set([F('d'), F('X'), F('c'), F('p')]);
  let checked = 0;
  for (const [what, frame] of valid) {
    const [type, body] = split(frame);
    if (lenient.has(type)) continue;
    for (let cut = 0; cut < body.length; cut++) {
      const m = decodeFrontend(type, body.subarray(0, cut));
      if (m.name !== 'protocolError') t.fail(`${what}: cut at ${cut} decoded as ${m.name}`);
      if (type === F('Q') && queryText(body.subarray(0, cut)) !== null) t.fail(`queryText accepted ${what} cut at ${cut}`);
      if (type === F('P') && parseHead(body.subarray(0, cut)) !== null) t.fail(`parseHead accepted ${what} cut at ${cut}`);
      checked++;
    }
    if (type !== F('f')) {
      const m = decodeFrontend(type, Buffer.concat([body, bytes(0)]));
      t.equal(m.name, 'protocolError', `${what} + trailing byte`);
    }
  }
  t.ok(checked > 150, `${checked} truncations checked`);
});

/** Deterministic PRNG (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

t.test('random and mutated bodies never throw', async (t) => {
  const rand = rng(0xc0ffee);
  const samples = valid.map(([, frame]) => split(frame)[1]);
  const types = [...'QPBDECSHXdcfFp', 'Z', '\0'].map(F);
  let n = 0;
  for (const type of types) {
    for (let i = 0; i < 10_000; i++) {
      let body: Buffer;
      if (i % 2 === 0) {
        // Random bytes, small values favoured so counts and lengths are sometimes plausible.
        body = Buffer.alloc(Math.floor(rand() * 48));
        for (let j = 0; j < body.length; j++) body[j] = rand() < 0.5 ? Math.floor(rand() * 4) : Math.floor(rand() * 256);
      } else {
        // A valid body of some type with one to three bytes changed and maybe cut short.
        body = Buffer.from(samples[Math.floor(rand() * samples.length)]!);
        for (let k = 1 + Math.floor(rand() * 3); k > 0 && body.length > 0; k--) body[Math.floor(rand() * body.length)] = Math.floor(rand() * 256);
        if (rand() < 0.3) body = body.subarray(0, Math.floor(rand() * (body.length + 1)));
      }
      try {
        const m = decodeFrontend(type, body);
        if (typeof m.name !== 'string') throw new Error('no name');
        if (type === F('Q')) queryText(body);
        if (type === F('P')) {
          const head = parseHead(body);
          const full = decodeFrontend(type, body);
          if ((head === null) !== (full.name === 'protocolError')) throw new Error('parseHead and decodeFrontend disagree');
        }
        if (type === F('p')) {
          decodePasswordMessage(body);
          decodeSASLInitialResponse(body);
          decodeSASLResponse(body);
        }
      } catch (e) {
        t.fail(`type ${type} body ${body.toString('hex')}: ${String(e)}`);
        return;
      }
      n++;
    }
  }
  t.equal(n, types.length * 10_000);
});
