import t from 'tap';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import net from 'node:net';
import { decodeStartupPacket, MAX_STARTUP_PACKET_LENGTH } from '../../src/protocol/startup.js';

// Loaded through require: under tap's TypeScript loader an ESM import of pg-protocol fails.
const { serialize } = createRequire(import.meta.url)('pg-protocol') as typeof import('pg-protocol');

/** A startup-phase packet: Int32 length (counting itself), Int32 code, body. */
function packet(code: number, ...body: (Buffer | string)[]): Buffer {
  const rest = Buffer.concat(body.map((p) => (typeof p === 'string' ? Buffer.from(p) : p)));
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + rest.length, 0);
  head.writeUInt32BE(code, 4);
  return Buffer.concat([head, rest]);
}
const version = (major: number, minor: number) => (major << 16) | minor;
const pairs = (...kv: string[]) => kv.map((s) => s + '\0').join('') + '\0';
const err = (message: string, sqlstate = '08P01') => ({ name: 'protocolError', sqlstate, message });
/** PostgreSQL only logs these (COMMERROR) and closes without a word. */
const silent = (message: string) => ({ ...err(message), silent: true });

t.test('StartupMessage', async (t) => {
  const m = decodeStartupPacket(serialize.startup({ user: 'alice', database: 'shop', application_name: 'app' }));
  t.strictSame(m, {
    name: 'startupMessage',
    majorVersion: 3,
    minorVersion: 0,
    parameters: [
      ['user', 'alice'],
      ['database', 'shop'],
      ['application_name', 'app'],
      ['client_encoding', 'UTF8'],
    ],
    params: Object.assign(Object.create(null), { user: 'alice', database: 'shop', application_name: 'app', client_encoding: 'UTF8' }),
    user: 'alice',
    database: 'shop',
    negotiate: null,
  });

  const noDb = decodeStartupPacket(serialize.startup({ user: 'bob' }));
  t.equal(noDb.name === 'startupMessage' && noDb.database, 'bob', 'database defaults to the user name');
  const emptyDb = decodeStartupPacket(packet(version(3, 0), pairs('user', 'bob', 'database', '')));
  t.equal(emptyDb.name === 'startupMessage' && emptyDb.database, 'bob', 'empty database too');

  const dup = decodeStartupPacket(packet(version(3, 0), pairs('user', 'a', 'options', '-c x=1', 'user', 'b')));
  if (dup.name !== 'startupMessage') return t.fail(dup.name);
  t.equal(dup.user, 'b', 'last value wins, as in PostgreSQL');
  t.equal(dup.parameters.length, 3, 'the ordered list keeps both');

  const proto = decodeStartupPacket(packet(version(3, 0), pairs('user', 'u', '__proto__', 'x', 'constructor', 'y')));
  if (proto.name !== 'startupMessage') return t.fail(proto.name);
  t.equal(proto.params['__proto__'], 'x', '__proto__ is an ordinary key');
  t.equal(Object.getPrototypeOf(proto.params), null);
  t.equal(({} as Record<string, unknown>)['x'], undefined, 'no prototype pollution');
});

t.test('protocol versions', async (t) => {
  const newer = decodeStartupPacket(packet(version(3, 2), pairs('user', 'u')));
  t.match(newer, { name: 'startupMessage', minorVersion: 2, negotiate: { newestMinorVersion: 0, unrecognizedOptions: [] } });
  const opts = decodeStartupPacket(packet(version(3, 0), pairs('user', 'u', '_pq_.compression', 'on')));
  t.match(opts, { name: 'startupMessage', negotiate: { newestMinorVersion: 0, unrecognizedOptions: ['_pq_.compression'] } });
  t.strictSame(
    decodeStartupPacket(packet(version(2, 0), pairs('user', 'u'))),
    { ...err('unsupported frontend protocol 2.0: server supports 3.0 to 3.0', '0A000'), legacy: true },
  );
  t.strictSame(
    decodeStartupPacket(packet(version(4, 1), pairs('user', 'u'))),
    err('unsupported frontend protocol 4.1: server supports 3.0 to 3.0', '0A000'),
  );
  // An unknown special code (1234.5681) reads as version 1234.5681, as in PostgreSQL.
  t.strictSame(
    decodeStartupPacket(packet(80877105)),
    err('unsupported frontend protocol 1234.5681: server supports 3.0 to 3.0', '0A000'),
  );
});

t.test('user is required', async (t) => {
  const noUser = err('no PostgreSQL user name specified in startup packet', '28000');
  t.strictSame(decodeStartupPacket(packet(version(3, 0), pairs('database', 'd'))), noUser);
  t.strictSame(decodeStartupPacket(packet(version(3, 0), pairs('user', ''))), noUser);
  t.strictSame(decodeStartupPacket(packet(version(3, 0), '\0')), noUser);
});

t.test('SSLRequest, GSSENCRequest, CancelRequest', async (t) => {
  t.strictSame(decodeStartupPacket(serialize.requestSsl()), { name: 'sslRequest' });
  t.strictSame(decodeStartupPacket(packet(80877104)), { name: 'gssEncRequest' });
  t.strictSame(decodeStartupPacket(packet(80877103, '\0')), silent('invalid length of startup packet'));
  t.strictSame(decodeStartupPacket(packet(80877104, 'xx')), silent('invalid length of startup packet'));

  const key = Buffer.alloc(4);
  key.writeInt32BE(-559038737);
  t.strictSame(decodeStartupPacket(serialize.cancel(4242, -559038737)), { name: 'cancelRequest', processId: 4242, secretKey: key });
  const pid = Buffer.alloc(4);
  pid.writeInt32BE(77);
  const long = Buffer.alloc(32, 0xab); // PostgreSQL 18, protocol 3.2
  t.strictSame(decodeStartupPacket(packet(80877102, pid, long)), { name: 'cancelRequest', processId: 77, secretKey: long });
  t.equal(decodeStartupPacket(packet(80877102, pid, Buffer.alloc(256))).name, 'cancelRequest');
  const badKey = silent('invalid length of cancel key in cancel request packet');
  for (const n of [0, 1, 3, 257]) t.strictSame(decodeStartupPacket(packet(80877102, pid, Buffer.alloc(n))), badKey, `key of ${n} bytes`);
  t.strictSame(decodeStartupPacket(packet(80877102, Buffer.alloc(3))), silent('invalid length of cancel request packet'));
});

t.test('lengths and layout', async (t) => {
  const badLength = silent('invalid length of startup packet');
  const badLayout = err('invalid startup packet layout: expected terminator as last byte');
  const good = serialize.startup({ user: 'alice', database: 'shop' });
  for (let cut = 0; cut < good.length; cut++) {
    const prefix = good.subarray(0, cut);
    // As framed (length field now disagrees) and re-framed (length fixed up, so the layout check runs).
    t.strictSame(decodeStartupPacket(prefix), badLength, `cut at ${cut}`);
    if (cut >= 8) {
      const fixed = Buffer.from(prefix);
      fixed.writeInt32BE(cut, 0);
      const m = decodeStartupPacket(fixed);
      t.ok(m.name === 'protocolError', `re-framed cut at ${cut}: ${m.name === 'protocolError' ? m.message : m.name}`);
    }
  }
  t.strictSame(decodeStartupPacket(packet(version(3, 0))), badLayout, 'no terminator at all');
  t.strictSame(decodeStartupPacket(packet(version(3, 0), 'user\0alice\0')), badLayout, 'missing final terminator');
  t.strictSame(decodeStartupPacket(packet(version(3, 0), 'user\0')), badLayout, 'missing value');
  t.strictSame(decodeStartupPacket(packet(version(3, 0), 'user\0alice\0\0x')), badLayout, 'bytes after terminator');
  t.strictSame(decodeStartupPacket(packet(version(3, 0), 'user\0alice\0\0\0')), badLayout, 'two terminators');
  t.strictSame(decodeStartupPacket(packet(version(3, 0), 'user\0alice\0x')), badLayout, 'last byte not NUL');
  const huge = packet(version(3, 0), pairs('user', 'u', 'options', 'x'.repeat(MAX_STARTUP_PACKET_LENGTH)));
  t.strictSame(decodeStartupPacket(huge), badLength, 'over MAX_STARTUP_PACKET_LENGTH');
  const lying = Buffer.from(good);
  lying.writeInt32BE(good.length + 1, 0);
  t.strictSame(decodeStartupPacket(lying), badLength, 'length field disagrees with the frame');
});

t.test('random packets never throw', async (t) => {
  let seed = 0x5eed;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const codes = [version(3, 0), version(3, 2), 80877102, 80877103, 80877104, version(2, 0)];
  const sample = serialize.startup({ user: 'alice', database: 'shop' });
  for (let i = 0; i < 10_000; i++) {
    let p: Buffer;
    if (i % 2 === 0) {
      const body = Buffer.alloc(Math.floor(rand() * 40));
      for (let j = 0; j < body.length; j++) body[j] = rand() < 0.4 ? 0 : 97 + Math.floor(rand() * 26);
      p = packet(codes[Math.floor(rand() * codes.length)]!, body);
    } else {
      p = Buffer.from(sample);
      p[4 + Math.floor(rand() * (p.length - 4))] = Math.floor(rand() * 256);
      if (rand() < 0.2) p = p.subarray(0, Math.floor(rand() * p.length));
    }
    try {
      decodeStartupPacket(p);
    } catch (e) {
      return t.fail(`${p.toString('hex')}: ${String(e)}`);
    }
  }
  t.pass('10,000 packets');
});

/** Accepts one connection, returns the first startup-phase packet the client sends, then hangs up. */
function captureFirstPacket(args: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      let got = Buffer.alloc(0);
      sock.on('data', (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        if (got.length >= 4 && got.length >= got.readInt32BE(0)) {
          sock.destroy();
          server.close();
          resolve(got.subarray(0, got.readInt32BE(0)));
        }
      });
      sock.on('error', () => {});
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      execFile('psql', ['-X', '-w', `host=127.0.0.1 port=${port} connect_timeout=5 ${args.join(' ')}`, '-c', 'select 1'], { timeout: 10_000 }, () => {});
    });
    setTimeout(() => {
      server.close();
      reject(new Error('psql sent nothing'));
    }, 10_000).unref();
  });
}

t.test('packets from a real client (psql / libpq)', async (t) => {
  const startup = decodeStartupPacket(
    await captureFirstPacket(['user=alice', 'dbname=shop', 'application_name=capture', 'sslmode=disable', 'gssencmode=disable']),
  );
  t.match(startup, {
    name: 'startupMessage',
    majorVersion: 3,
    minorVersion: 0,
    user: 'alice',
    database: 'shop',
    params: { application_name: 'capture' },
    negotiate: null,
  });
  t.strictSame(decodeStartupPacket(await captureFirstPacket(['user=alice', 'sslmode=require', 'gssencmode=disable'])), {
    name: 'sslRequest',
  });
});
