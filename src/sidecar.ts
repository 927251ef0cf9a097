/**
 * Composition root of one sidecar: the proxy listener, the admin API and the metrics registry, wired from a
 * validated StartConfig. Returns a handle the CLI and the demo use to stop it.
 */
import type { Registry } from 'prom-client';
import { log } from './log.js';
import type { StartConfig } from './config/load.js';
import { loadUsersFile, parseUsersEnv, type UserEntry } from './proxy/auth/users.js';
import { warmScramSecrets } from './proxy/auth/scram-secrets.js';
import { ProxyServer } from './proxy/server.js';
import { startAdmin, type Route } from './control/admin-api.js';
import { createRegistry } from './metrics/registry.js';
import { Router } from './proxy/router-glue.js';
import { createClassifier, initClassifier } from './router/classify.js';
import { parseState, STATE_POLICY, type CutoverState } from './control/states.js';
import type { RoutePolicy } from './router/route.js';

export interface Sidecar {
  proxy: ProxyServer;
  registry: Registry;
  /** The cutover state this sidecar routes by. */
  state(): CutoverState;
  setState(s: CutoverState, reason: string): void;
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  stop(timeoutMs?: number): Promise<void>;
}

export type Started = { ok: true; value: Sidecar } | { ok: false; errors: string[] };

/** Client users: --users file, else PGCUTOVER_USERS, else the source URL's own user and password (SCRAM). */
export function resolveUsers(cfg: StartConfig, env: NodeJS.ProcessEnv): { ok: true; value: Map<string, UserEntry> } | { ok: false; errors: string[] } {
  if (cfg.usersFile) return loadUsersFile(cfg.usersFile);
  if (env.PGCUTOVER_USERS) return parseUsersEnv(env.PGCUTOVER_USERS);
  const u = cfg.source;
  if (u.password === undefined) {
    return { ok: true, value: new Map([[u.user, { name: u.user, method: 'trust' }]]) };
  }
  return { ok: true, value: new Map([[u.user, { name: u.user, method: 'scram-sha-256', password: u.password }]]) };
}

export async function startSidecar(cfg: StartConfig, env: NodeJS.ProcessEnv = process.env, extraRoutes: Route[] = []): Promise<Started> {
  const users = resolveUsers(cfg, env);
  if (!users.ok) return { ok: false, errors: users.errors.map((e) => `--users: ${e}`) };
  // Derive SCRAM keys now: a first login must cost the same for every user, known or not.
  warmScramSecrets(users.value.values());
  const initial = parseState(cfg.state);
  if (!initial.ok) return { ok: false, errors: [`--state: ${initial.reason}`] };
  let state: CutoverState = initial.state;
  let policy: RoutePolicy = STATE_POLICY[state];
  await initClassifier();
  const router = new Router({
    policy: () => policy,
    classifier: createClassifier(),
    readYourWritesMs: cfg.readYourWritesMs,
    split: cfg.readSplit,
  });
  const setState = (s: CutoverState, reason: string) => {
    log.info({ from: state, to: s, reason }, 'cutover state changed');
    state = s;
    policy = STATE_POLICY[s];
  };
  const proxy = new ProxyServer({
    router,
    listen: cfg.listen,
    backends: { source: cfg.source, target: cfg.target },
    users: users.value,
    tls: cfg.tls,
    maxClients: cfg.maxClients,
    maxMessageBytes: cfg.maxMessageBytes,
  });
  const registry = createRegistry(proxy.stats);
  let listen: { host: string; port: number };
  try {
    listen = await proxy.listen();
  } catch (e) {
    return { ok: false, errors: [`--listen ${cfg.listen.host}:${cfg.listen.port}: ${(e as Error).message}`] };
  }
  const routes: Route[] = [
    { method: 'GET', path: '/healthz', handler: () => ({ status: 200, body: { status: 'ok', clients: proxy.clientCount } }) },
    { method: 'GET', path: '/state', handler: () => ({ status: 200, body: { state, ...policy } }) },
    {
      method: 'POST',
      path: '/transition',
      mutates: true,
      handler: ({ body }) => {
        const b = body as { to?: unknown; reason?: unknown };
        const to = parseState(b.to);
        if (!to.ok) return { status: 400, body: { error: to.reason } };
        setState(to.state, typeof b.reason === 'string' ? b.reason : 'operator');
        return { status: 200, body: { state, ...policy } };
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async () => ({ status: 200, body: await registry.metrics(), contentType: registry.contentType }),
    },
    ...extraRoutes,
  ];
  let admin;
  try {
    admin = await startAdmin({ host: cfg.admin.host, port: cfg.admin.port, routes });
  } catch (e) {
    await proxy.shutdown(0);
    return { ok: false, errors: [`--admin ${cfg.admin.host}:${cfg.admin.port}: ${(e as Error).message}`] };
  }
  log.info({ listen, admin: admin.port, source: `${cfg.source.host}:${cfg.source.port}`, target: `${cfg.target.host}:${cfg.target.port}` }, 'pg-cutover sidecar started');
  let stopped: Promise<void> | null = null;
  return {
    ok: true,
    value: {
      proxy,
      registry,
      state: () => state,
      setState,
      listen,
      admin: { host: cfg.admin.host, port: admin.port },
      stop(timeoutMs = cfg.shutdownTimeoutMs) {
        stopped ??= (async () => {
          await proxy.shutdown(timeoutMs);
          await admin.close();
          log.info('pg-cutover sidecar stopped');
        })();
        return stopped;
      },
    },
  };
}
