/**
 * The admin HTTP server against hostile request shapes (issue 17): oversized, streamed, aborted and slow
 * bodies, huge headers, many connections, cross-site and rebinding requests, wrong tokens. The server
 * must answer each one (or close it) and keep answering; a mutation refused must not run its handler.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { startAdmin, tokenOk, originProblem, type Route } from '../../src/control/admin-api.js';
import { auditActor } from '../../src/control/admin-routes.js';

const TOKEN = 'hostile-test-token';

async function server(t: { teardown(fn: () => unknown): void }, token?: string, requestTimeoutMs?: number) {
  const ran: { path: string; actor: string; body: unknown }[] = [];
  const route = (method: 'GET' | 'POST', path: string, mutates: boolean): Route => ({
    method,
    path,
    mutates,
    handler: ({ body, actor }) => (ran.push({ path, actor, body }), { status: 200, body: { ok: true, actor } }),
  });
  const a = await startAdmin({ host: '127.0.0.1', port: 0, token, routes: [route('GET', '/healthz', false), route('POST', '/transition', true), route('POST', '/gates/:n', true)], requestTimeoutMs });
  t.teardown(() => a.close());
  return { port: a.port, url: `http://127.0.0.1:${a.port}`, ran };
}

/** One raw HTTP exchange: what the server answered (status line) or 'closed' when it closed without one. */
function raw(port: number, bytes: Buffer | string, opts: { thenEnd?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => resolve(got.split('\r\n')[0] || 'closed'));
    s.write(bytes, () => {
      if (opts.thenEnd) s.end();
    });
    s.setTimeout(20_000, () => s.destroy());
  });
}

const healthy = async (url: string) => (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) })).status;

t.test('bodies over 1 MiB: 413, the server stays up (was: TypeError in the finish handler, process exit)', async (t) => {
  const s = await server(t);
  const head = (len: number | 'chunked') =>
    `POST /transition HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n${len === 'chunked' ? 'transfer-encoding: chunked' : `content-length: ${len}`}\r\n\r\n`;
  const r1 = await fetch(`${s.url}/transition`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(2 * 1024 * 1024) }).then(
    (r) => r.status,
    () => 'reset',
  );
  t.ok(r1 === 413 || r1 === 'reset', `2 MiB body by fetch: ${r1}`);
  t.equal(await healthy(s.url), 200, 'still answering after a 2 MiB body');
  t.match(await raw(s.port, head(2 * 1024 * 1024) + 'y'.repeat(1024 * 1024 + 10)), /413|closed/, 'declared 2 MiB, 1 MiB sent');
  const chunk = Buffer.alloc(256 * 1024, 'z');
  const chunked = Buffer.concat([Buffer.from(head('chunked')), ...Array.from({ length: 6 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]))]);
  t.match(await raw(s.port, chunked), /413|closed/, 'chunked stream past 1 MiB');
  t.match(await raw(s.port, head(200_000) + 'a'.repeat(200_000)), /HTTP\/1.1 413/, '200 kB body: a readable 413');
  t.equal(await healthy(s.url), 200, 'still answering');
  t.equal(s.ran.filter((r) => r.path !== '/healthz').length, 0, 'no mutation ran');
});

t.test('aborted, truncated and slow requests, huge headers, bad JSON, many connections', async (t) => {
  const s = await server(t);
  // Half a body, then the client goes away.
  t.match(await raw(s.port, 'POST /transition HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"to":', { thenEnd: true }), /400|closed/, 'half a body, then EOF');
  t.match(await raw(s.port, `GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: ${'h'.repeat(64 * 1024)}\r\n\r\n`), /HTTP\/1.1 431/, 'huge header: 431');
  t.match(await raw(s.port, 'NOT HTTP AT ALL\r\n\r\n'), /HTTP\/1.1 400/, 'garbage: 400');
  t.match(await raw(s.port, 'POST /transition HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 5\r\n\r\n{"to"'), /HTTP\/1.1 400/, 'bad JSON: 400');
  // 300 idle connections (more than the server keeps) and a slow body dribbling in: others still get answers.
  const idle = await Promise.all(Array.from({ length: 300 }, () => new Promise<net.Socket>((r) => { const c = net.connect(s.port, '127.0.0.1', () => r(c)); c.on('error', () => undefined); })));
  const slow = net.connect(s.port, '127.0.0.1');
  slow.on('error', () => undefined);
  slow.write('POST /transition HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{');
  for (const c of idle.slice(0, 200)) c.destroy();
  t.equal(await healthy(s.url), 200, 'answers while 100 idle and one slow connection are open');
  for (const c of idle) c.destroy();
  slow.destroy();
  t.equal(await healthy(s.url), 200);
  t.equal(s.ran.filter((r) => r.path !== '/healthz').length, 0, 'no mutation ran');
});

t.test('slowloris: a body or headers that never finish get 408 and a closed socket', async (t) => {
  const s = await server(t, undefined, 300);
  const slowBody = raw(s.port, 'POST /transition HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{');
  const slowHeaders = raw(s.port, 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ');
  t.match(await slowBody, /HTTP\/1.1 408/, 'body never finished');
  t.match(await slowHeaders, /HTTP\/1.1 408/, 'headers never finished');
  t.equal(await healthy(s.url), 200);
  t.equal(s.ran.filter((r) => r.path !== '/healthz').length, 0);
});

t.test('CSRF: mutating calls need a JSON content type and no foreign Origin or Host', async (t) => {
  const s = await server(t);
  const post = (headers: Record<string, string>, body = '{"to":"READS_10PCT_AURORA"}') =>
    fetch(`${s.url}/transition`, { method: 'POST', headers, body }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error: string } }));
  t.match(await post({ 'content-type': 'text/plain' }), { status: 415, body: { error: /application\/json/ } }, 'text/plain (a simple cross-site form): 415');
  t.match(await post({ 'content-type': 'application/x-www-form-urlencoded' }, 'to=ROLLBACK'), { status: 415 }, 'form: 415');
  t.match(await post({}), { status: 415 }, 'no content type: 415');
  t.match(await post({ 'content-type': 'application/json', origin: 'http://evil.example' }), { status: 403, body: { error: /cross-origin/ } }, 'foreign Origin: 403');
  t.match(await post({ 'content-type': 'application/json', origin: 'http://127.0.0.1:1' }), { status: 403 }, 'same host, other port: 403');
  t.match(await post({ 'content-type': 'application/json', origin: 'null' }), { status: 403 }, 'opaque origin: 403');
  t.match(await raw(s.port, 'GET /healthz HTTP/1.1\r\nhost: evil.example:80\r\n\r\n'), /HTTP\/1.1 403/, 'foreign Host without a token (DNS rebinding): 403');
  t.equal(s.ran.filter((r) => r.path !== '/healthz').length, 0, 'nothing ran');
  t.match(await post({ 'content-type': 'application/json; charset=utf-8', origin: s.url }), { status: 200 }, 'same origin with JSON: 200');
  t.match(await post({ 'content-type': 'application/json' }), { status: 200, body: { actor: 'loopback-anonymous' } }, 'no Origin (CLI, curl): 200');
});

t.test('token: constant time over the whole value, actor from the credential', async (t) => {
  for (const h of [undefined, '', 'Bearer', 'Bearer ', `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`, `bearer ${TOKEN}`, TOKEN, `Bearer ${'x'.repeat(10_000)}`]) {
    t.equal(tokenOk(h, TOKEN), false, `${JSON.stringify(h?.slice(0, 40))} refused`);
  }
  t.equal(tokenOk(`Bearer ${TOKEN}`, TOKEN), true);
  const s = await server(t, TOKEN);
  const r = await fetch(`${s.url}/transition`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` }, body: '{"by":"mallory"}' });
  t.match(await r.json(), { actor: 'admin-token' });
  t.equal(auditActor('admin-token', { by: 'mallory' }), 'operator:admin-token (note: mallory)', 'the body is only a note');
  t.equal(auditActor('loopback-anonymous', { note: 'n'.repeat(500) }).length, 'operator:loopback-anonymous (note: )'.length + 200, 'notes are capped');
  t.equal(auditActor('admin-token', {}), 'operator:admin-token');
  t.equal(originProblem({ host: 'sidecar-1.internal:9187' }, true, '0.0.0.0'), null, 'a DNS name is fine when a token guards the API');
});
