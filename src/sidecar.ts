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
import { Shadower } from './shadow/shadower.js';
import { DEFAULT_MASK } from './shadow/results.js';
import { registerShadowMetrics, shadowSummary } from './metrics/shadow.js';

export interface Sidecar {
  proxy: ProxyServer;
  registry: Registry;
  /** The shadow-write service while the state is SHADOW_WRITES. */
  shadower(): Shadower | null;
  /** The cutover state this sidecar routes by. */
  state(): CutoverState;
  setState(s: CutoverState, reason: string): void;
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  stop(timeoutMs?: number): Promise<void>;
}

export type Started = { ok: true; value: Sidecar } | { ok: false; errors: string[] };

/**
 * Client users: --users file, else PGCUTOVER_USERS, else the source URL's own user and password (SCRAM).
 * PGCUTOVER_USERS is also --users' own variable (config schema), so it reaches us as `usersFile`: a value that
 * starts with '{' is the JSON list itself, anything else a path.
 */
export function resolveUsers(cfg: StartConfig, env: NodeJS.ProcessEnv): { ok: true; value: Map<string, UserEntry> } | { ok: false; errors: string[] } {
  if (cfg.usersFile?.trimStart().startsWith('{')) {
    return parseUsersEnv(cfg.usersFile, cfg.usersFile === env.PGCUTOVER_USERS ? 'PGCUTOVER_USERS' : '--users');
  }
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
  const classifier = createClassifier();
  const router = new Router({
    policy: () => policy,
    classifier,
    readYourWritesMs: cfg.readYourWritesMs,
    split: cfg.readSplit,
  });
  let shadower: Shadower | null = null;
  const setState = (s: CutoverState, reason: string) => {
    log.info({ from: state, to: s, reason }, 'cutover state changed');
    state = s;
    policy = STATE_POLICY[s];
    if (policy.shadow && shadower === null) {
      shadower = new Shadower({
        source: cfg.source,
        target: cfg.target,
        classifier,
        poolSize: cfg.shadow.poolSize,
        sampleRate: cfg.shadow.samplePct / 100,
        lagBudgetBytes: cfg.shadow.lagBudgetBytes,
        capMs: cfg.shadow.capMs,
        lockTimeoutMs: cfg.shadow.lockTimeoutMs,
        mask: { names: new Set(cfg.shadow.maskColumns), typeOids: DEFAULT_MASK.typeOids },
      });
    } else if (!policy.shadow && shadower !== null) {
      const old = shadower;
      shadower = null;
      void old.close();
    }
  };
  if (policy.shadow) setState(state, 'initial state');
  const proxy = new ProxyServer({
    router,
    shadower: () => shadower,
    listen: cfg.listen,
    backends: { source: cfg.source, target: cfg.target },
    users: users.value,
    tls: cfg.tls,
    maxClients: cfg.maxClients,
    maxMessageBytes: cfg.maxMessageBytes,
  });
  const registry = createRegistry(proxy.stats, (reg) => registerShadowMetrics(reg, () => shadower));
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
    {
      method: 'GET',
      path: '/shadow/mismatches',
      handler: ({ query }) => {
        const offset = Math.max(0, Number(query.get('offset') ?? 0) || 0);
        const limit = Math.min(1000, Math.max(1, Number(query.get('limit') ?? 100) || 100));
        const sh = shadower;
        if (sh === null) return { status: 200, body: { active: false, total: 0, offset, limit, items: [] } };
        return { status: 200, body: { active: true, stats: shadowSummary(sh), offset, limit, ...sh.mismatches(offset, limit) } };
      },
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
      shadower: () => shadower,
      setState,
      listen,
      admin: { host: cfg.admin.host, port: admin.port },
      stop(timeoutMs = cfg.shutdownTimeoutMs) {
        stopped ??= (async () => {
          await proxy.shutdown(timeoutMs);
          await shadower?.close();
          await admin.close();
          log.info('pg-cutover sidecar stopped');
        })();
        return stopped;
      },
    },
  };
}
