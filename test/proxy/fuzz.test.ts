/**
 * Protocol fuzz: thousands of random and mutated frames, from many short-lived connections, in the startup
 * phase and after login (valid frames, flipped bits, random type bytes, random lengths, truncated frames,
 * raw noise). The proxy must survive every one (an uncaught exception would fail this file, since the
 * proxy runs in-process), keep serving a good client throughout, and leave no session behind on the
 * proxy or the source. Also mutated real captures: the bytes psql, pgbench and node-postgres send, recorded,
 * then replayed with frames flipped, re-typed, re-sized, cut, dropped and doubled. Seeded: set FUZZ_SEED to replay a run.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { captureRealClients, framesOf } from './fixtures/captures.js';
import { startProxy } from '../helpers/proxy.js';
import { cstr, extended, frame, int16, int32, query, sleep, startupPacket, until, Wire } from './fixtures/wire.js';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 0x7fffffff);
t.comment(`FUZZ_SEED=${SEED}`);

/** mulberry32: small, fast, good enough to pick mutations reproducibly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = prng(SEED);
const int = (n: number) => Math.floor(rnd() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const MAX_MESSAGE = 64 * 1024;
const proxy = await startProxy(t, source.url(), target.url(), { maxMessageBytes: MAX_MESSAGE }, {
  PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'postgres', password: 'postgres' }, { name: 'fuzz', method: 'trust' }] }),
});
const admin = new pg.Client({ connectionString: source.url() });
await admin.connect();
t.teardown(() => admin.end());
await admin.query('create table fuzz_t (a int, b text)');

/** Valid frontend frames to send as they are or mutated. */
const VALID: Buffer[] = [
  query('select 1'),
  query("select 'a' || $$b$$, now()"),
  query('begin'),
  query('commit'),
  query('rollback'),
  query('select * from fuzz_t limit 5'),
  query('copy fuzz_t from stdin'),
  query('copy (select 1, 2) to stdout'),
  query("set application_name = 'fuzz'"),
  query('listen fuzz_chan'),
  query("notify fuzz_chan, 'x'"),
  query(''),
  extended('select $1::int + 1', ['41']),
  extended('select $1::text', [null], 'fz_named'),
  frame('P', Buffer.concat([cstr('s1'), cstr('select $1::int'), int16(1), int32(23)])),
  frame('B', Buffer.concat([cstr(''), cstr('s1'), int16(0), int16(1), int32(1), Buffer.from('7'), int16(0)])),
  frame('D', Buffer.concat([Buffer.from('S'), cstr('s1')])),
  frame('E', Buffer.concat([cstr(''), int32(0)])),
  frame('C', Buffer.concat([Buffer.from('S'), cstr('s1')])),
  frame('H'),
  frame('S'),
  frame('d', '1\tfuzz\n'),
  frame('c'),
  frame('f', cstr('fuzz abort')),
];
const TYPES = 'BCdcfDEHFPpQSX';

function flipBits(b: Buffer): Buffer {
  const c = Buffer.from(b);
  for (let i = 1 + int(3); i > 0; i--) c[int(c.length)] ^= 1 << int(8);
  return c;
}

/** One fuzz frame; `last` frames may be truncated (the connection ends right after). */
function fuzzFrame(last: boolean): Buffer {
  const r = rnd();
  if (r < 0.35) return pick(VALID);
  if (r < 0.6) return flipBits(pick(VALID));
  if (r < 0.75) return frame(rnd() < 0.7 ? TYPES.charCodeAt(int(TYPES.length)) : int(256), bytes(int(64)));
  if (r < 0.85) {
    // Random length field: negative, tiny, within the limit (the proxy then waits for a body that never
    // comes), or far over it.
    const len = pick([-1, 0, 3, 4, 5 + int(100), int(MAX_MESSAGE), MAX_MESSAGE + 1 + int(1 << 20), 0x7fffffff]);
    return Buffer.concat([Buffer.from([TYPES.charCodeAt(int(TYPES.length))]), int32(len), bytes(int(16))]);
  }
  if (r < 0.93 && last) {
    const f = pick(VALID);
    return f.subarray(0, int(f.length));
  }
  return bytes(1 + int(40));
}

function startupNoise(): Buffer {
  const r = rnd();
  if (r < 0.2) return bytes(int(64));
  if (r < 0.35) return Buffer.concat([int32(8 + int(64)), int32(int(0x7fffffff)), bytes(int(64))]); // random code
  if (r < 0.5) return flipBits(startupPacket({ user: 'fuzz', database: 'postgres' }));
  if (r < 0.6) return Buffer.concat([int32(8), int32(80877103), bytes(1 + int(64))]); // SSLRequest + noise
  if (r < 0.7) return Buffer.concat([int32(16), int32(80877102), bytes(8)]); // CancelRequest, random key
  if (r < 0.8) return startupPacket({ user: 'fuzz', database: 'postgres' }).subarray(0, int(20)); // truncated
  if (r < 0.9) return Buffer.concat([int32(int(0x7fffffff) * (rnd() < 0.5 ? -1 : 1)), bytes(int(16))]); // bad length
  // A valid startup for a SCRAM user, then garbage instead of a SASLInitialResponse.
  return Buffer.concat([startupPacket({ user: 'postgres', database: 'postgres' }), rnd() < 0.5 ? bytes(int(40)) : flipBits(frame('p', Buffer.concat([cstr('SCRAM-SHA-256'), int32(4), Buffer.from('n,,x')])))]);
}

/** Runs `n` jobs with at most `width` at a time. */
async function pool(n: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await job(next++);
    }),
  );
}

async function writeSplit(w: Wire, data: Buffer): Promise<void> {
  // Split at random points so frames straddle writes (and so TCP chunks).
  let pos = 0;
  while (pos < data.length) {
    const n = 1 + int(Math.max(1, data.length - pos));
    w.send(data.subarray(pos, pos + n));
    pos += n;
    if (rnd() < 0.3) await sleep(int(3));
  }
}

// A good client keeps querying through the whole run and must never see an error.
const good = new pg.Client({ connectionString: proxy.url() });
await good.connect();
t.teardown(() => good.end().catch(() => undefined));
let goodQueries = 0;
let goodError: unknown = null;
let fuzzing = true;
const goodLoop = (async () => {
  while (fuzzing) {
    try {
      const r = await good.query('select $1::int as n', [goodQueries]);
      if (r.rows[0].n !== goodQueries) throw new Error(`wrong answer ${r.rows[0].n} for ${goodQueries}`);
      goodQueries++;
    } catch (e) {
      goodError = e;
      return;
    }
    await sleep(5);
  }
})();

t.test('random bytes and mutated packets in the startup phase', async (t) => {
  const N = 800;
  let replies = 0;
  await pool(N, 16, async () => {
    const w = await Wire.connect(proxy.listen.port);
    w.rawOnly();
    await writeSplit(w, startupNoise());
    if (rnd() < 0.5) await w.waitClosed(200);
    if (w.raw.length > 0) replies++;
    w.destroy();
  });
  t.pass(`${N} connections of startup noise, ${replies} got a reply before we hung up`);
  t.ok(await until(() => proxy.proxy.clientCount <= 1, 5_000), 'no connection left in login');
});

t.test('random, mutated and truncated frames after login', async (t) => {
  const N = 160;
  let frames = 0;
  let loginFailures = 0;
  let protocolErrors = 0;
  await pool(N, 6, async () => {
    const w = await Wire.connect(proxy.listen.port);
    try {
      await w.login('fuzz');
    } catch {
      loginFailures++;
      w.destroy();
      return;
    }
    const count = 10 + int(40);
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) parts.push(fuzzFrame(i === count - 1));
    frames += count;
    await writeSplit(w, Buffer.concat(parts));
    // Sometimes wait for the replies (or the proxy closing on us), sometimes hang up at once.
    if (rnd() < 0.6) await w.waitClosed(int(150));
    if (w.errors().some((m) => m.code === '08P01')) protocolErrors++;
    if (rnd() < 0.3) w.send(frame('X'));
    w.destroy();
  });
  t.equal(loginFailures, 0, 'every fuzz connection logged in');
  t.ok(frames >= 3000, `${frames} frames over ${N} connections; ${protocolErrors} connections closed with 08P01`);
});

/** One mutation of a real frame: bits, length field, type byte, truncation, or as it was. */
function mutate(f: Buffer): Buffer {
  const r = rnd();
  if (r < 0.25) return f;
  if (r < 0.5) return flipBits(f);
  const c = Buffer.from(f);
  if (r < 0.65) {
    c.writeInt32BE(pick([-1, 0, 3, c.readInt32BE(1) - 1, c.readInt32BE(1) + 1, MAX_MESSAGE + 1, 0x7fffffff]), 1);
    return c;
  }
  if (r < 0.8) {
    c[0] = TYPES.charCodeAt(int(TYPES.length));
    return c;
  }
  if (r < 0.9 && c.length > 6) {
    // Cut inside the body but keep the length field's claim: the next frame's bytes become this one's body.
    return c.subarray(0, 5 + int(c.length - 5));
  }
  return Buffer.concat([c, bytes(1 + int(8))]);
}

t.test('mutated real captures: every frontend message type, as real clients send them', async (t) => {
  const captures = (await captureRealClients(proxy.listen.port)).map(framesOf).filter((c) => c.frames.length > 0);
  const captured = new Set(captures.flatMap((c) => c.frames.map((f) => String.fromCharCode(f[0]!))));
  // Types no capture had (Close, FunctionCall, CopyFail, Flush, a SASL response) come from the hand-built frames.
  const handBuilt = [
    ...VALID,
    // FunctionCall of random() (oid 1598): no arguments, text result.
    frame('F', Buffer.concat([int32(1598), int16(0), int16(0), int16(0)])),
    // A password message after login.
    frame('p', cstr('not now')),
  ];
  const corpus = [...captures.flatMap((c) => c.frames), ...handBuilt.filter((f) => !captured.has(String.fromCharCode(f[0]!)))];
  const types = new Set(corpus.map((f) => String.fromCharCode(f[0]!)));
  t.comment(`captured from real clients: ${[...captured].sort().join('')}; in the corpus: ${[...types].sort().join('')}`);
  t.ok(captures.length >= 4, `${captures.length} client connections recorded`);
  for (const ty of 'QPBEDSXdc') t.ok(captured.has(ty), `real clients sent ${ty}`);
  for (const ty of TYPES) t.ok(types.has(ty), `the corpus has ${ty}`);
  const startup = captures[0]!.startup;
  const N = 120;
  let frames = 0;
  let loginFailures = 0;
  await pool(N, 6, async () => {
    const w = await Wire.connect(proxy.listen.port);
    w.send(startup);
    try {
      await w.waitFor((m) => m.name === 'readyForQuery' || m.name === 'error', 10_000);
    } catch {
      loginFailures++;
      w.destroy();
      return;
    }
    // A contiguous run of one real session (its message order), each frame mutated or not, some dropped or doubled.
    const src = pick(captures).frames;
    const from = int(src.length);
    const run = src.slice(from, from + 5 + int(30));
    const out: Buffer[] = [];
    for (const f of run) {
      const r = rnd();
      if (r < 0.1) continue;
      out.push(mutate(f));
      if (r > 0.9) out.push(pick(corpus));
    }
    frames += out.length;
    await writeSplit(w, Buffer.concat(out));
    if (rnd() < 0.6) await w.waitClosed(int(150));
    w.destroy();
  });
  t.equal(loginFailures, 0, 'the recorded startup logs in every time');
  t.ok(frames >= 500, `${frames} mutated real frames over ${N} connections`);
});

t.test('the proxy survived and still serves', async (t) => {
  fuzzing = false;
  await goodLoop;
  t.equal(goodError, null, 'the good client never saw an error during the fuzz');
  t.ok(goodQueries > 10, `good client ran ${goodQueries} queries during the fuzz`);
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.equal((await c.query('select 1 as one')).rows[0].one, 1, 'a new client runs SELECT 1');
  await c.end();
  t.ok(await until(() => proxy.proxy.clientCount === 1, 5_000), `no proxy session leaked (clients: ${proxy.proxy.clientCount})`);
  const leftovers = async () =>
    (
      await admin.query(
        "select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and application_name not like 'pg-cutover-control%'",
      )
    ).rows[0].n as number;
  // One backend remains: the good client's.
  t.ok(await until(async () => (await leftovers()) <= 1, 5_000), 'no backend session left on the source');
  t.ok(proxy.proxy.stats.protocolErrors > 0, `protocol errors counted: ${proxy.proxy.stats.protocolErrors}`);
});
