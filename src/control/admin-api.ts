/**
 * The admin HTTP API. Routes are a table; handlers get parsed JSON and return values, never throw to the
 * socket. Mutating routes need the bearer token when one is configured (required off loopback).
 */
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { log } from '../log.js';

export interface Reply {
  status: number;
  body: unknown;
  contentType?: string;
}

export type Handler = (req: { params: Record<string, string>; body: unknown; query: URLSearchParams }) => Promise<Reply> | Reply;

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
}

const MAX_BODY = 64 * 1024;
/**
 * A body over MAX_BODY is read to its end (up to this much) before the 413 goes out: closing a socket with
 * unread data makes the kernel send RST, and the client would then lose the answer instead of reading it.
 */
const MAX_DRAIN = 1024 * 1024;

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
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function tokenOk(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function send(res: http.ServerResponse, r: Reply, close = false): void {
  const text = r.contentType ? String(r.body) : JSON.stringify(r.body, null, 2) + '\n';
  res.writeHead(r.status, { 'content-type': r.contentType ?? 'application/json', ...(close ? { connection: 'close' } : {}) });
  res.end(text);
}

export async function startAdmin(opts: AdminOptions): Promise<{ server: http.Server; port: number; close(): Promise<void> }> {
  if (!isLoopback(opts.host) && !opts.token) {
    throw new Error(`--admin-token is required when the admin API listens on a non-loopback address (${opts.host})`);
  }
  const server = http.createServer((req, res) => {
    void handle(req, res).catch((err) => {
      log.error({ err }, 'admin API handler failed');
      send(res, { status: 500, body: { error: 'internal error' } });
    });
  });
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    let allowed: string[] = [];
    for (const r of opts.routes) {
      const params = match(r.path, url.pathname);
      if (!params) continue;
      if (r.method !== req.method) {
        allowed.push(r.method);
        continue;
      }
      if (r.mutates && opts.token && !tokenOk(req.headers.authorization, opts.token)) {
        return send(res, { status: 401, body: { error: 'missing or wrong bearer token' } });
      }
      let body: unknown = undefined;
      if (req.method === 'POST') {
        const chunks: Buffer[] = [];
        let size = 0;
        const tooLarge = { status: 413, body: { error: `body larger than ${MAX_BODY} bytes` } };
        for await (const c of req) {
          size += (c as Buffer).length;
          if (size > MAX_DRAIN) {
            res.once('finish', () => req.socket.destroy());
            return send(res, tooLarge, true);
          }
          if (size <= MAX_BODY) chunks.push(c as Buffer);
        }
        if (size > MAX_BODY) return send(res, tooLarge, true);
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch (e) {
            return send(res, { status: 400, body: { error: `invalid JSON body: ${(e as Error).message}` } });
          }
        }
        if (body !== undefined && (typeof body !== 'object' || body === null || Array.isArray(body))) {
          return send(res, { status: 400, body: { error: 'JSON body must be an object' } });
        }
      }
      return send(res, await r.handler({ params, body: body ?? {}, query: url.searchParams }));
    }
    if (allowed.length > 0) return send(res, { status: 405, body: { error: `method ${req.method} not allowed; use ${allowed.join(', ')}` } });
    send(res, { status: 404, body: { error: `no such endpoint: ${req.method} ${url.pathname}` } });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    server,
    port,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}
