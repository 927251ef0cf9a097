/**
 * A small Unleash server for tests: enough of the client API for the real `unleash-client`
 * (v6, client spec 5.x) to poll it.
 *   GET  /api/client/features  → { version: 2, features: [...] } with an ETag; 304 on If-None-Match
 *   POST /api/client/register  → 202
 *   POST /api/client/metrics   → 202
 * Flags change through methods; stop() closes the port (connections refused) and start() reopens
 * the same port, as an Unleash outage and recovery would look to the client.
 */
import http from 'node:http';

export interface StrategyDef {
  name: string;
  parameters?: Record<string, string>;
  constraints?: unknown[];
  variants?: VariantDef[];
}

export interface VariantDef {
  name: string;
  weight: number;
  stickiness?: string;
  payload?: { type: 'string' | 'number' | 'json' | 'csv'; value: string };
}

export interface FeatureDef {
  name: string;
  enabled: boolean;
  type?: string;
  project?: string;
  strategies: StrategyDef[];
  variants?: VariantDef[];
}

export interface UnleashTestServer {
  /** `http://127.0.0.1:<port>/api`: what the client's `url` option takes. */
  readonly url: string;
  readonly port: number;
  /** Counters of requests answered (200/304 for features). */
  readonly stats: { features: number; notModified: number; register: number; metrics: number; unauthorized: number };
  /** Authorization header values seen on feature requests. */
  readonly authSeen: string[];
  /** Replaces (or adds) a feature definition. */
  setFeature(def: FeatureDef): void;
  /** A plain on/off flag (the `default` strategy). */
  setBoolean(name: string, enabled: boolean): void;
  /** A flag with a flexibleRollout strategy at `pct`. */
  setRollout(name: string, pct: number, enabled?: boolean): void;
  /** A flag with one variant carrying `pct` as a number payload. */
  setVariantPercent(name: string, pct: number | string, enabled?: boolean): void;
  removeFeature(name: string): void;
  /** Resolves after the next features request has been answered. */
  nextFetch(): Promise<void>;
  /** Stops listening and drops open connections; the port stays reserved for start(). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export interface UnleashServerOptions {
  /** Required `Authorization` header value; requests without it get 401. */
  token?: string;
}

export async function startUnleashServer(opts: UnleashServerOptions = {}): Promise<UnleashTestServer> {
  const features = new Map<string, FeatureDef>();
  let revision = 1;
  const stats = { features: 0, notModified: 0, register: 0, metrics: 0, unauthorized: 0 };
  const authSeen: string[] = [];
  let waiters: (() => void)[] = [];
  const changed = () => {
    revision++;
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://unleash');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (opts.token !== undefined && req.headers.authorization !== opts.token) {
        stats.unauthorized++;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"unauthorized"}');
        return;
      }
      if (req.method === 'GET' && url.pathname === '/api/client/features') {
        if (req.headers.authorization) authSeen.push(req.headers.authorization);
        const etag = `"rev-${revision}"`;
        if (req.headers['if-none-match'] === etag) {
          stats.notModified++;
          res.writeHead(304, { etag }).end();
        } else {
          stats.features++;
          const body = JSON.stringify({ version: 2, features: [...features.values()], query: {} });
          res.writeHead(200, { 'content-type': 'application/json', etag }).end(body);
        }
        const w = waiters;
        waiters = [];
        for (const f of w) f();
        return;
      }
      if (req.method === 'POST' && url.pathname === '/api/client/register') {
        stats.register++;
        res.writeHead(202).end();
        return;
      }
      if (req.method === 'POST' && url.pathname === '/api/client/metrics') {
        stats.metrics++;
        res.writeHead(202).end();
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not found"}');
    });
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve((server.address() as { port: number }).port);
      });
    });
  const port = await listen(0);
  let listening = true;

  const stop = () =>
    new Promise<void>((resolve) => {
      if (!listening) return resolve();
      listening = false;
      server.closeAllConnections();
      server.close(() => resolve());
    });

  return {
    url: `http://127.0.0.1:${port}/api`,
    port,
    stats,
    authSeen,
    setFeature(def) {
      features.set(def.name, def);
      changed();
    },
    setBoolean(name, enabled) {
      features.set(name, { name, enabled, strategies: [{ name: 'default', parameters: {}, constraints: [] }] });
      changed();
    },
    setRollout(name, pct, enabled = true) {
      features.set(name, {
        name,
        enabled,
        strategies: [{ name: 'flexibleRollout', parameters: { rollout: String(pct), stickiness: 'default', groupId: name }, constraints: [] }],
      });
      changed();
    },
    setVariantPercent(name, pct, enabled = true) {
      features.set(name, {
        name,
        enabled,
        strategies: [{ name: 'default', parameters: {}, constraints: [] }],
        variants: [{ name: `pct-${pct}`, weight: 1000, stickiness: 'default', payload: { type: 'number', value: String(pct) } }],
      });
      changed();
    },
    removeFeature(name) {
      features.delete(name);
      changed();
    },
    nextFetch() {
      return new Promise<void>((r) => waiters.push(r));
    },
    stop,
    async start() {
      if (listening) return;
      await listen(port);
      listening = true;
    },
    close: stop,
  };
}
