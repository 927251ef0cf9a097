/**
 * What a client sees before its StartupMessage is read (issue 15 item 4), through the proxy and directly from
 * PostgreSQL, compared byte for byte where PostgreSQL sends nothing and by severity/SQLSTATE/message where it
 * sends a FATAL. PostgreSQL's ProcessStartupPacket reports a bad length, a truncated packet or a malformed
 * CancelRequest only in its log (COMMERROR) and closes silently; a Terminate or an HTTP request sent first is
 * read as a bad length; a second SSLRequest is read as protocol version 1234.5679.
 */
import t from 'tap';
import net from 'node:net';
import { Parser } from 'pg-protocol/dist/parser';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { cstr, frame, int32, startupPacket } from './fixtures/wire.js';

const source = await startPg(t, 14, { authMethod: 'trust' });
const target = await startPg(t, 15, { authMethod: 'trust' });
const USERS = { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'postgres', password: 'postgres' }, { name: 'raw', method: 'trust' }] }) };
const proxy = await startProxy(t, source.url(), target.url(), {}, USERS);

interface Seen {
  /** Single-byte answers to SSLRequest/GSSENCRequest, in order. */
  answers: string;
  /** FATAL/ERROR messages after them: "severity code message". */
  errors: string[];
  closed: boolean;
}

/** Sends `parts` (one write each), optionally half-closes, and reports what came back until the close. */
function probe(port: number, parts: Buffer[], halfClose = false): Promise<Seen> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let raw = Buffer.alloc(0);
    s.on('data', (c: Buffer) => (raw = Buffer.concat([raw, c])));
    s.on('error', () => undefined);
    const timer = setTimeout(() => s.destroy(), 5_000);
    s.on('close', () => {
      clearTimeout(timer);
      let i = 0;
      while (i < raw.length && (raw[i] === 0x4e || raw[i] === 0x53) && (i + 1 === raw.length || raw[i + 1] === 0x4e || raw[i + 1] === 0x53 || raw[i + 1] === 0x45)) i++;
      const errors: string[] = [];
      const rest = raw.subarray(i);
      // Protocol 2 style ('E', text, NUL), as PostgreSQL answers a client that asked for protocol 2.
      if (rest.length >= 5 && rest[0] === 0x45 && rest.readInt32BE(1) + 1 > rest.length) errors.push(`v2 ${rest.toString('latin1')}`);
      else try {
        new Parser().parse(raw.subarray(i), (m) => {
          const e = m as unknown as { name: string; severity?: string; code?: string; message?: string };
          if (e.name === 'error') errors.push(`${e.severity} ${e.code} ${e.message}`);
        });
      } catch {
        errors.push(`unparsable ${raw.subarray(i).toString('hex')}`);
      }
      resolve({ answers: raw.subarray(0, i).toString('latin1'), errors, closed: true });
    });
    // A client waits for the one-byte answer to an SSLRequest or GSSENCRequest before it sends more; sent at
    // once, the next packet may share a segment with the request ("received unencrypted data after …") or
    // not, depending on the machine's timing, on either server.
    const answered = (n: number) => new Promise<void>((r) => {
      const check = () => (raw.length >= n ? r() : s.once('data', check));
      s.once('close', () => r());
      check();
    });
    s.on('connect', async () => {
      let answers = 0;
      for (const p of parts) {
        s.write(p);
        if (p.equals(SSL) || p.equals(GSS)) await answered(++answers);
      }
      if (halfClose) s.end();
    });
  });
}

const SSL = Buffer.concat([int32(8), int32(80877103)]);
const GSS = Buffer.concat([int32(8), int32(80877104)]);

const CASES: [string, Buffer[], boolean][] = [
  ['Terminate before the StartupMessage', [frame('X')], false],
  ['EOF at once', [], true],
  ['zero length', [int32(0)], false],
  ['length 4 (no protocol code)', [int32(4), int32(196608)], false],
  ['length over 10000', [int32(20000), int32(196608)], false],
  ['half a length word, then EOF', [Buffer.from([0, 0])], true],
  ['truncated StartupMessage, then EOF', [int32(40), int32(196608), Buffer.from('user\0')], true],
  ['HTTP request', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')], false],
  ['protocol 2.0', [Buffer.concat([int32(17), int32(2 << 16), Buffer.from('user\0raw\0\0')])], false],
  ['protocol 4.0', [startupPacket({ user: 'raw' }).fill(4, 4, 6).fill(0, 4, 5)], false],
  ['SSLRequest then EOF', [SSL], true],
  ['GSSENCRequest then EOF', [GSS], true],
  ['SSLRequest twice', [SSL, SSL], false],
  ['GSSENCRequest twice', [GSS, GSS], false],
  ['GSSENCRequest, SSLRequest, then Terminate', [GSS, SSL, frame('X')], false],
  ['CancelRequest too short', [Buffer.concat([int32(12), int32(80877102), int32(1)])], false],
  ['StartupMessage without user', [Buffer.concat([int32(9), int32(196608), Buffer.from([0])])], false],
  ['StartupMessage without its last terminator', [Buffer.concat([int32(8 + 9), int32(196608), cstr('user'), cstr('raw')])], false],
];

t.before(async () => {
  const c = new pg.Client({ connectionString: source.url() });
  await c.connect();
  await c.query('create role raw login');
  await c.end();
});

for (const [name, parts, halfClose] of CASES) {
  t.test(name, async (t) => {
    const direct = await probe(source.port, parts, halfClose);
    const proxied = await probe(proxy.listen.port, parts, halfClose);
    t.same(proxied, direct, `as PostgreSQL: ${JSON.stringify(direct)}`);
  });
}

t.test('the proxy still serves', async (t) => {
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.equal((await c.query('select 1 as one')).rows[0].one, 1);
  await c.end();
});
