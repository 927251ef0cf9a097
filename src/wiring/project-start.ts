/**
 * Starts the project layer of a sidecar (composition, called from src/sidecar.ts): the history store (Redis
 * when the cutover state is in Redis), the recorder and phase tracking on one timer, the Phase 4 operations
 * and their admin routes.
 */
import { log } from '../support/log.js';
import type { StartConfig } from '../config/load.js';
import type { ControlConfig } from '../domain/control-config.js';
import type { Controller } from '../control/controller.js';
import type { Route } from '../control/admin-api.js';
import type { StateStore } from '../control/store.js';
import type { ProxyServer } from '../proxy/server.js';
import type { Shadower } from '../shadow/shadower.js';
import type { Observers } from './observers.js';
import { MemoryHistory, RedisHistory, type HistoryStore } from '../project/history.js';
import { HistoryRecorder } from '../project/recorder.js';
import { ProjectService } from '../project/service.js';
import { createOperations } from '../project/operations.js';
import { projectRoutes } from '../project/routes.js';

export interface ProjectLayer {
  readonly service: ProjectService;
  readonly routes: Route[];
  /** One recorder and phase round now (tests; the timer does it every --history-interval-ms). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export async function startProject(cfg: StartConfig, d: { controller: Controller; proxy: ProxyServer; store: StateStore; shadower(): Shadower | null; observers: Observers; control: ControlConfig }): Promise<ProjectLayer> {
  let history: HistoryStore;
  try {
    history = cfg.redis ? await RedisHistory.open(cfg.redis, cfg.redisPrefix) : new MemoryHistory();
  } catch (e) {
    // History is for the report: without Redis for it, keep it in this process and say so.
    log.warn({ err: (e as Error).message }, 'history store: Redis not reachable, recording in this process only');
    history = new MemoryHistory();
  }
  const ctl = d.controller;
  const st = d.proxy.stats;
  const recorder = new HistoryRecorder({
    state: () => ctl.snapshot().state,
    readPercent: () => ctl.policy().readPercent,
    latency: st.latency,
    counters: () => ({
      statements: st.statements.source + st.statements.target,
      faults: st.backendFaults.source + st.backendFaults.target + st.connectFailures.source + st.connectFailures.target,
    }),
    lagSeconds: () => d.observers.replication?.lagSeconds() ?? null,
    shadow: () => {
      const s = d.shadower()?.stats;
      if (!s) return null;
      return { compared: s.compared, mismatched: Object.values(s.mismatched).reduce((a, b) => a + b, 0) };
    },
    slots: () => {
      const r = d.observers.replication?.status().slotRetainedBytes as { source: number | null; target: number | null } | undefined;
      return r ?? { source: null, target: null };
    },
  }, history, 24 * 3600_000 * cfg.timeScale);
  const service = new ProjectService({
    store: d.store,
    history,
    recorder,
    sidecarId: cfg.sidecarId,
    state: () => ctl.snapshot().state,
    gates: () => ctl.gates,
    replicationState: () => d.observers.replication?.state() ?? null,
    breakers: () => ctl.breakers.readings(),
    sourceCounters: () => ({ statements: st.statements.source, faults: st.backendFaults.source + st.connectFailures.source }),
    errorDelta: d.control.breakers.errorRate.baselineDelta,
  });
  let round: Promise<void> | null = null;
  const tick = (): Promise<void> => (round ??= service.tick().finally(() => (round = null)));
  const ops = createOperations({ cfg, store: d.store, state: () => ctl.snapshot().state, stopReplicationWatch: () => d.observers.stopReplication() });
  const routes = projectRoutes({
    project: service,
    ops,
    sidecarId: cfg.sidecarId,
    breakers: d.control.breakers,
    slotAlertBytes: cfg.finish.slotRetentionAlertBytes,
    appendLesson: (e) => d.store.appendAudit(e),
    refresh: () => tick(),
  });
  const timer = setInterval(() => void tick(), cfg.finish.historyIntervalMs);
  timer.unref();
  ctl.onChange(() => void tick()); // a state change is a point on the timeline and may change the phase
  void tick();
  return {
    service,
    routes,
    tick,
    async stop() {
      clearInterval(timer);
      await round;
      await history.close();
    },
  };
}
