/**
 * The admin HTTP API. Routes are a table; handlers get parsed JSON and return values, never throw to the
 * socket. Mutating routes need the bearer token when one is configured (required off loopback), a JSON
 * content type (a browser cannot send one cross-site without a preflight we never answer), and no foreign
 * Origin or Host (cross-site requests and DNS rebinding). Any request shape gets an answer or a closed
 * socket, never a crash: bodies are capped, slow requests time out, aborted ones are dropped.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import { log } from '../support/log.js';

export interface Reply {
  status: number;
  body: unknown;
  contentType?: string;
}

export interface HandlerRequest {
  params: Record<string, string>;
  body: unknown;
  query: URLSearchParams;
  /** Who made the call, from the credential: "admin-token" or "loopback-anonymous"; never from the body. */
  actor: string;
}

export type Handler = (req: HandlerRequest) => Promise<Reply> | Reply;

export interface Route {
  method: 'GET' | 'POST';
  path: string;
  mutates?: boolean;
  handler: Handler;
}

export interface AdminOptions {
  host: string;
  port: number;
  token?: string;
  routes: Route[];
  /** Bound on receiving a whole request (default 10 s); tests shorten it. */
  requestTimeoutMs?: number;
}

const MAX_BODY = 64 * 1024;
/**
 * A body over MAX_BODY is read to its end (up to this much) before the 413 goes out: closing a socket with
 * unread data makes the kernel send RST, and the client would then lose the answer instead of reading it.
 * Past MAX_DRAIN the 413 goes out at once and the socket is closed.
 */
const MAX_DRAIN = 1024 * 1024;
/** A whole request (headers and body) must arrive within this; slow senders get 408 (slowloris). */
const REQUEST_TIMEOUT_MS = 10_000;
const HEADERS_TIMEOUT_MS = 5_000;
/** Connections beyond this are closed on accept: the API is for operators and scrapers, not crowds. */
const MAX_CONNECTIONS = 256;

export const ACTOR_TOKEN = 'admin-token';
export const ACTOR_ANONYMOUS = 'loopback-anonymous';

function match(pattern: string, path: string): Record<string, string> | null {
  const a = pattern.split('/');
  const b = path.split('/');
  if (a.length !== b.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < a.length; i++) {
    if (a[i].startsWith(':')) {
      try {
        params[a[i].slice(1)] = decodeURIComponent(b[i]);
      } catch {
        params[a[i].slice(1)] = b[i]; // malformed percent-encoding: the handler rejects the raw text
      }
    } else if (a[i] !== b[i]) return null;
  }
  return params;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || host.startsWith('127.');
}

/** Compares digests, so neither the content nor the length of the configured token leaks through timing. */
export function tokenOk(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  const given = createHash('sha256').update(m ? m[1] : '').digest();
  const want = createHash('sha256').update(token).digest();
  return timingSafeEqual(given, want) && m !== null;
}

/** `hostname` or `host` (with a port unless default) of a Host header or an Origin URL; null when unparsable. */
function urlPart(v: string, isOrigin: boolean, part: 'hostname' | 'host'): string | null {
  try {
    return new URL(isOrigin ? v : `http://${v}`)[part].toLowerCase();
  } catch {
    return null;
  }
}

const IP_LITERAL = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i;

/**
 * Refuses cross-site and rebinding requests: an Origin (sent by browsers) must name the Host it was sent to,
 * host and port, and without a token the Host must be loopback or an IP literal (a rebinding attack uses its own DNS name).
 */
export function originProblem(headers: http.IncomingHttpHeaders, tokenSet: boolean, listenHost: string): string | null {
  const host = headers.host === undefined ? null : urlPart(headers.host, false, 'hostname');
  if (headers.host !== undefined && host === null) return 'unparsable Host header';
  if (!tokenSet && host !== null && !isLoopback(host) && !IP_LITERAL.test(host) && host !== listenHost.toLowerCase()) {
    return `Host ${JSON.stringify(headers.host)} is not this admin API (DNS rebinding?)`;
  }
  const origin = headers.origin;
  if (origin !== undefined && origin !== 'null') {
    const o = urlPart(origin, true, 'host');
    if (o === null || headers.host === undefined || o !== urlPart(headers.host, false, 'host')) return `cross-origin request from ${JSON.stringify(origin)} refused`;
  } else if (origin === 'null') return 'cross-origin request from an opaque origin refused';
  return null;
}

function send(res: http.ServerResponse, r: Reply, close = false): void {
  if (res.headersSent || res.destroyed || res.writableEnded) return;
  const text = r.contentType ? String(r.body) : JSON.stringify(r.body, null, 2) + '\n';
  res.writeHead(r.status, { 'content-type': r.contentType ?? 'application/json', ...(close ? { connection: 'close' } : {}) });
  res.end(text);
}

type Body = { ok: true; text: string } | { ok: false; reply: Reply; close: boolean };

/** Reads a body up to MAX_BODY; drains up to MAX_DRAIN of an oversized one so the 413 reaches the client. */
async function readBody(req: http.IncomingMessage): Promise<Body> {
  const chunks: Buffer[] = [];
  let size = 0;
  const tooLarge: Reply = { status: 413, body: { error: `body larger than ${MAX_BODY} bytes` } };
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_DRAIN) return { ok: false, reply: tooLarge, close: true };
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_DRAIN) return { ok: false, reply: tooLarge, close: true };
    if (size <= MAX_BODY) chunks.push(c as Buffer);
  }
  if (size > MAX_BODY) return { ok: false, reply: tooLarge, close: true };
  return { ok: true, text: Buffer.concat(chunks).toString('utf8') };
}

export async function startAdmin(opts: AdminOptions): Promise<{ server: http.Server; port: number; close(): Promise<void> }> {
  if (!isLoopback(opts.host) && !opts.token) {
    throw new Error(`--admin-token is required when the admin API listens on a non-loopback address (${opts.host})`);
  }
  const requestTimeout = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  // Node checks these timeouts on its own timer (connectionsCheckingInterval, 30 s by default): check often enough.
  const timeouts = { requestTimeout, headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeout), connectionsCheckingInterval: Math.max(50, Math.min(1000, requestTimeout / 4)) };
  const server = http.createServer(timeouts, (req, res) => {
    // The socket is captured now: after 'finish' the response has let go of it (req.socket reads null).
    const socket: Socket = req.socket;
    req.on('error', () => socket.destroy());
    void handle(req, res, socket).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || req.destroyed) return log.debug({ method: req.method, url: req.url }, 'admin API: client went away mid-request');
      log.error({ err, method: req.method, url: req.url }, 'admin API handler failed');
      send(res, { status: 500, body: { error: 'internal error' } });
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  // Malformed requests, over-long headers and timeouts: Node's own clientError default answers 400/431/408 and closes.
  async function handle(req: http.IncomingMessage, res: http.ServerResponse, socket: Socket): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    const foreign = originProblem(req.headers, opts.token !== undefined, opts.host);
    if (foreign) {
      log.warn({ method: req.method, path: url.pathname, origin: req.headers.origin, host: req.headers.host }, 'admin API: refused a cross-site request');
      return send(res, { status: 403, body: { error: foreign } }, true);
    }
    const allowed: string[] = [];
    for (const r of opts.routes) {
      const params = match(r.path, url.pathname);
      if (!params) continue;
      if (r.method !== req.method) {
        allowed.push(r.method);
        continue;
      }
      let actor = ACTOR_ANONYMOUS;
      if (opts.token) {
        const ok = tokenOk(req.headers.authorization, opts.token);
        if (r.mutates && !ok) return send(res, { status: 401, body: { error: 'missing or wrong bearer token' } });
        if (ok) actor = ACTOR_TOKEN;
      }
      let body: unknown = undefined;
      if (req.method === 'POST') {
        if (r.mutates && !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
          return send(res, { status: 415, body: { error: 'mutating calls need "content-type: application/json"' } }, true);
        }
        const read = await readBody(req);
        if (!read.ok) {
          if (read.close) res.once('finish', () => socket.destroy());
          return send(res, read.reply, read.close);
        }
        if (read.text.trim() !== '') {
          try {
            body = JSON.parse(read.text);
          } catch (e) {
            return send(res, { status: 400, body: { error: `invalid JSON body: ${(e as Error).message}` } });
          }
        }
        if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) {
          return send(res, { status: 400, body: { error: 'JSON body must be an object' } });
        }
      }
      return send(res, await r.handler({ params, body: body ?? {}, query: url.searchParams, actor }));
    }
    if (allowed.length > 0) return send(res, { status: 405, body: { error: `method ${req.method} not allowed; use ${allowed.join(', ')}` } });
    send(res, { status: 404, body: { error: `no such endpoint: ${req.method} ${url.pathname}` } });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  server.on('error', (err) => log.error({ err }, 'admin API server error'));
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
