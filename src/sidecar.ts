/**
 * Composition root of one sidecar: proxy listener, router, control plane (shared state, guards, breakers,
 * rollback runner, Unleash), shadow service, admin API and metrics, wired from a validated StartConfig.
 */
import type { Registry } from 'prom-client';
import { log } from './support/log.js';
import type { StartConfig } from './config/load.js';
import { ProxyServer } from './proxy/server.js';
import type { UserDirectory } from './auth/user-directory.js';
import { openAuth } from './wiring/auth-setup.js';
import type { TlsHolder } from './proxy/tls-context.js';
import { backendUrl } from './net/database-url.js';
import { startAdmin, type Route } from './control/admin-api.js';
import { createRegistry } from './metrics/registry.js';
import { Router } from './proxy/router-glue.js';
import { FreshnessBook } from './router/freshness.js';
import { FreshnessSampler } from './replication/freshness-sampler.js';
import { WalSampler } from './replication/wal-sampler.js';
import { pgClientConfig } from './net/database-url.js';
import { createClassifier, initClassifier } from './router/classify.js';
import { parseState, STATE_POLICY, type CutoverState } from './domain/states.js';
import type { Shadower } from './shadow/shadower.js';
import { ShadowLifecycle } from './wiring/shadow-lifecycle.js';
import { checkApplyModeAllowed } from './shadow/apply-mode.js';
import { registerShadowMetrics } from './metrics/shadow.js';
import { Controller } from './control/controller.js';
import { DEFAULT_CONTROL_CONFIG, scaleControlConfig } from './domain/control-config.js';
import { MemoryStore } from './control/memory-store.js';
import { RedisStore } from './control/redis-store.js';
import type { StateStore } from './control/store.js';
import type { CutoverSnapshot } from './domain/cutover-machine.js';
import { startUnleashBinding, type UnleashBinding } from './control/unleash.js';
import { adminRoutes } from './control/admin-routes.js';
import { createGateRunner, gateWriteHold } from './wiring/gates.js';
import { createRollbackHooks, createSwitchover, createWriterAccess } from './wiring/rollback-hooks.js';
import { WriterSync } from './control/writer-sync.js';
import { writerRoutes } from './control/writer-routes.js';
import { registerControlMetrics } from './metrics/control.js';
import { WritePause } from './control/write-pause.js';
import { RedisPauseBus } from './control/redis-pause-bus.js';
import { MemoryLeaseStore, RedisLeaseStore, WriterLease } from './control/writer-lease.js';
import { breakerRelay, startObservers, type Observers } from './wiring/observers.js';
import { reloadAll, type ReloadReport } from './control/reload.js';
import { startProject, type ProjectLayer } from './wiring/project-start.js';
import { startTargetReaders } from './wiring/readers.js';

export interface Sidecar {
  proxy: ProxyServer;
  controller: Controller;
  registry: Registry;
  /** The cutover state this sidecar routes by. */
  state(): CutoverState;
  /** Sets the state without guards (tests and demos); see Controller.override. */
  setState(s: CutoverState, reason: string): Promise<boolean>;
  /** The shadow-write service while the state is SHADOW_WRITES. */
  shadower(): Shadower | null;
  /** What SIGHUP can reload: the users (file / PGCUTOVER_USERS) and the clients' TLS certificate; each `reload()` keeps the old on error. */
  auth: { users: UserDirectory; tls: TlsHolder | null };
  /** The project layer (phases, history, Phase 4 operations). */
  project(): ProjectLayer | null;
  listen: { host: string; port: number };
  admin: { host: string; port: number };
  stop(timeoutMs?: number): Promise<void>;
  /** SIGHUP: re-reads the users, the TLS certificate and the log level; never ends a connection. */
  reload(): Promise<ReloadReport[]>;
}

export type Started = { ok: true; value: Sidecar } | { ok: false; errors: string[] };

async function openStore(cfg: StartConfig, initial: CutoverSnapshot): Promise<StateStore> {
  if (!cfg.redis) return new MemoryStore({ initial });
  return RedisStore.open({ url: cfg.redis, prefix: cfg.redisPrefix, initial, by: cfg.sidecarId });
}

export async function startSidecar(cfg: StartConfig, env: NodeJS.ProcessEnv = process.env, extraRoutes: Route[] = []): Promise<Started> {
  const auth = openAuth(cfg, env);
  if (!auth.ok) return auth;
  const { users, tlsHolder, reloadable } = auth.value;
  const initial = parseState(cfg.state);
  if (!initial.ok) return { ok: false, errors: [`--state: ${initial.reason}`] };
  if (cfg.shadow.mode === 'apply') {
    // Apply mode commits shadows: on a replica that would write every sampled transaction twice.
    const ok = await checkApplyModeAllowed(cfg.control.target);
    if (!ok.ok) return { ok: false, errors: [`--shadow-mode apply: ${ok.reason}`] };
    log.warn('--shadow-mode apply: sampled write transactions are COMMITTED on the target too; only for a target that is not a replica');
  }
  await initClassifier();
  const classifier = createClassifier({ writeFunctions: cfg.writeFunctions });
  const now = Date.now();
  let store: StateStore;
  try {
    store = await openStore(cfg, { state: initial.state, version: 0, since: now, reason: 'initial state', readPercent: STATE_POLICY[initial.state].readPercent });
  } catch (e) {
    return { ok: false, errors: [`--redis: ${(e as Error).message}`] };
  }

  let controller: Controller | null = null;
  // Read-your-writes by LSN, the staleness bound and the target readers share one sampler of the writer's positions.
  const fresh = cfg.readYourWrites || cfg.maxReadStalenessMs > 0;
  const book = fresh || cfg.targetReaders.length > 0 ? new FreshnessBook() : null;
  const freshness = fresh && book !== null ? { book, maxStalenessMs: cfg.maxReadStalenessMs } : null;
  const router = new Router({
    policy: () => controller!.policy(),
    classifier,
    freshness,
    onRedirected: () => void proxy.stats.freshnessRedirects++,
    split: cfg.readSplit,
    onDiverted: () => void proxy.stats.targetDiverted++,
  });
  // One sampler of the writer's WAL positions feeds read-your-writes and the shadow's lag explanation; it polls
  // while either listens.
  const walControl = { source: pgClientConfig(cfg.control.source), target: pgClientConfig(cfg.control.target) };
  const wal = new WalSampler({ writer: () => controller!.policy().writesTo, control: walControl, everyMs: cfg.freshnessSampleMs, purpose: 'wal-sampler' });
  // The shadow service for the state in force (writes, dark reads or none), swapped as the state moves.
  const readers = startTargetReaders(cfg, router, freshness, () => proxy.stats);
  const shadows = new ShadowLifecycle(cfg, classifier, wal, () => void proxy.stats.shadowTargetFaults++);
  const proxy = new ProxyServer({
    router,
    shadower: () => shadows.current,
    listen: cfg.listen,
    backends: { source: cfg.source, target: cfg.target, readers: readers?.backends },
    readers: readers?.routing,
    users: users.value,
    tls: tlsHolder ?? cfg.tls,
    requireTls: cfg.requireTls,
    maxClients: cfg.maxClients,
    maxPendingLogins: cfg.auth.maxPendingLogins,
    loginTimeoutMs: cfg.auth.loginTimeoutMs,
    throttle: cfg.auth.throttle,
    backendLogin: cfg.auth.backendLogin,
    maxPreparedBytes: cfg.maxPreparedBytes,
    maxMessageBytes: cfg.maxMessageBytes,
    ignoreStartupParameters: cfg.ignoreStartupParameters,
  });
  let bus: RedisPauseBus | null = null;
  if (cfg.redis) {
    try {
      bus = await RedisPauseBus.open({ url: cfg.redis, prefix: cfg.redisPrefix, sidecarId: cfg.sidecarId });
    } catch (e) {
      await store.close();
      return { ok: false, errors: [`--redis: ${(e as Error).message}`] };
    }
  }
  const version = () => controller!.snapshot().version;
  const pauses = new WritePause({
    sidecarId: cfg.sidecarId,
    holder: proxy,
    bus,
    version,
    refresh: async () => (await store.get(), version()),
  });
  const relay = breakerRelay();
  // Read by the controller's breaker attribution; set once the writer sync exists (below).
  let writerSyncRef: WriterSync | null = null;
  // A writer change's Redis lease (beside the databases' writer lock): in this process without --redis.
  const lease = new WriterLease(cfg.redis ? new RedisLeaseStore(cfg.redis, cfg.redisPrefix) : new MemoryLeaseStore());
  const ctl = new Controller({
    store,
    config: scaleControlConfig(DEFAULT_CONTROL_CONFIG, cfg.timeScale),
    stats: proxy.stats,
    sidecarId: cfg.sidecarId,
    runGate: createGateRunner(cfg, proxy, () => shadows.current, (n) => controller!.gates[n],
      gateWriteHold(pauses, proxy, () => STATE_POLICY[controller!.snapshot().state].writesTo, version), (e) => store.appendAudit(e)),
    rollback: createRollbackHooks(cfg, proxy, pauses, version),
    switchover: createSwitchover(cfg, pauses, version),
    // Held writes are released by the rollback runner once the source is restored; a sidecar that only saw
    // another's rollback releases them when the state leaves ROLLBACK, or after a minute at the latest
    // (they then meet the fence: a clean 25006, never a write on the wrong side).
    holdWritesForRollback: () => proxy.holdWritesFor(60_000),
    releaseWrites: () => proxy.releaseWrites(),
    // A rollback blocked by an unreachable database retries its step 3 (2 s doubling to 30 s, time-scaled).
    // Open target transactions get 30 s (× --time-scale, at least 5 s) to end, then the rollback goes on.
    rollbackDrainMs: Math.max(5000, 30_000 * cfg.timeScale),
    targetFenced: () => writerSyncRef?.last?.record?.target.fenced === true,
    lease,
    rollbackRetry: { firstMs: Math.max(200, 2000 * cfg.timeScale), maxMs: Math.max(1000, 30_000 * cfg.timeScale) },
    onBreaker: relay.onBreaker,
  });
  controller = ctl;
  const sampler =
    book === null
      ? null
      : new FreshnessSampler({
          book,
          writer: () => ctl.policy().writesTo,
          control: walControl,
          everyMs: cfg.freshnessSampleMs,
          wal,
          afterSample: readers?.afterSample,
          onSample: (ms) => {
            proxy.stats.readerStalenessMs = ms ?? Number.NaN;
            if (ms !== null && ms > proxy.stats.readerStalenessMaxMs) proxy.stats.readerStalenessMaxMs = ms;
          },
        });
  // The databases' writer record outranks the store (DESIGN.md "Fencing" 3): checked before the first client,
  // then on every store reconnect and periodically.
  const writerDb = createWriterAccess(cfg);
  const controlCfg = scaleControlConfig(DEFAULT_CONTROL_CONFIG, cfg.timeScale);
  const writerSync = new WriterSync({
    store,
    read: writerDb.read,
    snapshot: () => ctl.snapshot(),
    override: (s, reason, by) => ctl.override(s, reason, by),
    rampMs: controlCfg.cutover.rollbackReadRampMs,
    rollbackGraceMs: Math.max(5000, 120_000 * cfg.timeScale),
  });
  writerSyncRef = writerSync;
  await writerSync.check('start');
  writerSync.start();
  sampler?.start();

  shadows.follow(ctl.snapshot().state);
  ctl.onChange((s) => shadows.follow(s.state));
  // Gate 3's latency criteria judge the current stage only.
  ctl.onChange(() => proxy.stats.latency.reset());
  // Target links open on a transition into a state that splits reads, not with the first read (issue 15).
  ctl.onChange(() => proxy.prewarmLinks());

  let unleash: UnleashBinding | null = null;
  let observers: Observers | null = null;
  let admin: Awaited<ReturnType<typeof startAdmin>> | null = null;
  let project: ProjectLayer | null = null;
  /** Closes whatever has been started, in one order for a failed start and for stop(); `proxyMs` null: not listening. */
  const teardown = async (proxyMs: number | null): Promise<void> => {
    if (proxyMs !== null) await proxy.shutdown(proxyMs);
    await sampler?.stop();
    await readers?.stop();
    await shadows.close();
    await wal.stop();
    await project?.stop();
    await observers?.stop();
    await unleash?.close();
    writerSync.stop();
    await ctl.close();
    pauses.close();
    await bus?.close();
    await lease.close();
    await admin?.close();
    await users.value.close();
  };
  if (cfg.unleashUrl) {
    try {
      unleash = await startUnleashBinding({
        url: cfg.unleashUrl,
        appName: 'pg-cutover',
        instanceId: cfg.sidecarId,
        apiToken: cfg.unleashToken,
        onRequest: (req) => {
          void ctl.transition({ to: req.to, reason: `unleash: ${req.reason}`, by: 'unleash' }).then((o) => {
            if (!o.ok && o.code !== 'already-in-state') log.warn({ to: req.to, code: o.code, reason: o.reason }, 'unleash request refused');
          });
        },
      });
    } catch (e) {
      await teardown(null);
      return { ok: false, errors: [`--unleash-url: ${(e as Error).message}`] };
    }
  }

  const registry = createRegistry(proxy.stats, (reg) => {
    registerShadowMetrics(reg, () => shadows.current);
    registerControlMetrics(reg, ctl, () => unleash);
    readers?.metrics.register(reg, proxy.stats);
  });
  const started: Observers = await startObservers(cfg, { controller: ctl, proxy, registry });
  observers = started;
  relay.bind(started);
  let listen: { host: string; port: number };
  try {
    listen = await proxy.listen();
  } catch (e) {
    await teardown(null);
    return { ok: false, errors: [`--listen ${cfg.listen.host}:${cfg.listen.port}: ${(e as Error).message}`] };
  }
  const controlConfig = scaleControlConfig(DEFAULT_CONTROL_CONFIG, cfg.timeScale);
  project = await startProject(cfg, { controller: ctl, proxy, store, shadower: () => shadows.current, observers: started, control: controlConfig });
  // The project's routes first: POST/GET /gates/final before the generic /gates/:n.
  const routes: Route[] = [...project.routes, ...adminRoutes({ controller: ctl, proxy, registry, shadower: () => shadows.current, lastWriteShadower: () => shadows.lastWrites, unleash: () => unleash, store, replication: () => started.replication?.status() ?? null, backends: () => started.backends(), meaning: () => project!.service.meaning() }), ...writerRoutes({ sync: writerSync, store, unlock: writerDb.unlock }), ...extraRoutes];
  let adminPort: number;
  try {
    admin = await startAdmin({ host: cfg.admin.host, port: cfg.admin.port, token: cfg.adminToken, routes });
    adminPort = admin.port;
  } catch (e) {
    await teardown(0);
    return { ok: false, errors: [`--admin ${cfg.admin.host}:${cfg.admin.port}: ${(e as Error).message}`] };
  }
  log.info(
    { listen, admin: adminPort, state: ctl.snapshot().state, store: cfg.redis ? 'redis' : 'memory', source: `${cfg.source.host}:${cfg.source.port}`, target: `${cfg.target.host}:${cfg.target.port}` },
    'pg-cutover sidecar started',
  );
  let stopped: Promise<void> | null = null;
  return {
    ok: true,
    value: {
      proxy,
      controller: ctl,
      registry,
      state: () => ctl.snapshot().state,
      setState: (s, reason) => ctl.override(s, reason),
      shadower: () => shadows.current,
      auth: { users: users.value, tls: tlsHolder },
      project: () => project,
      listen,
      admin: { host: cfg.admin.host, port: adminPort },
      reload: () => reloadAll(reloadable, log),
      stop(timeoutMs = cfg.shutdownTimeoutMs) {
        stopped ??= (async () => {
          await teardown(timeoutMs);
          log.info('pg-cutover sidecar stopped');
        })();
        return stopped;
      },
    },
  };
}
