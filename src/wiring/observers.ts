/**
 * What watches a running sidecar from the outside in: alerts (log, metric, webhook) on breaker changes and
 * rollbacks, the target-CPU scale hook, CloudWatch (CPUUtilization into the CPU breaker; the proxy's counters
 * and breaker states out as metrics), and the replication runtime (heartbeat lag probe and replication
 * monitor feeding the lag and replication-error breakers). Each part is optional and started from the config.
 */
import type { Registry } from 'prom-client';
import { log } from '../support/log.js';
import type { StartConfig } from '../config/load.js';
import type { Controller } from '../control/controller.js';
import type { BreakerTransition } from '../domain/breaker.js';
import { createAlertSink, type AlertSink } from '../control/alerts.js';
import { createScaleHook, type ScaleHook } from '../control/scale-hook.js';
import {
  breakerDatums, createCloudWatchPublisher, createCpuSource, proxyDatums, snapshotStats, startCpuWatch,
  type CloudWatchPublisher, type CpuWatch, type ProxyCounters,
} from '../metrics/cloudwatch.js';
import type { ProxyServer } from '../proxy/server.js';
import { backendUrl } from '../net/database-url.js';
import { STATE_POLICY } from '../domain/states.js';
import { DEFAULT_CONTROL_CONFIG, scaleControlConfig } from '../domain/control-config.js';
import { startReplicationRuntime, type ReplicationRuntime } from '../replication/runtime.js';
import { BackendProbe, type ProbeStatus } from '../control/backend-probe.js';
import { startSlotAdvancer, type SlotAdvancer } from '../replication/slot-advancer.js';
import type { Role } from '../domain/role.js';

export interface Observers {
  /** The controller's breaker listener. */
  onBreaker(tr: BreakerTransition): void;
  replication: ReplicationRuntime | null;
  /** Last probe answer per backend (for /healthz). */
  backends(): Record<Role, ProbeStatus>;
  /** Advances the forward slot while writes are on the target; null without a native subscription. */
  slotAdvancer: SlotAdvancer | null;
  /** Stops the replication runtime and the slot advancer (decommission: nothing may recreate what it drops). */
  stopReplication(): Promise<void>;
  stop(): Promise<void>;
}

/** Late-bound: the controller needs `onBreaker` before the observers (which need the controller) exist. */
export function breakerRelay(): { onBreaker(tr: BreakerTransition): void; bind(o: Observers): void } {
  let target: Observers | null = null;
  return { onBreaker: (tr) => target?.onBreaker(tr), bind: (o) => void (target = o) };
}

export async function startObservers(cfg: StartConfig, d: { controller: Controller; proxy: ProxyServer; registry: Registry }): Promise<Observers> {
  const ctl = d.controller;
  const alerts: AlertSink = createAlertSink({ webhookUrl: cfg.alertWebhook, sidecarId: cfg.sidecarId, registry: d.registry });
  const scale: ScaleHook | null = cfg.scaleCommand || cfg.scaleWebhook ? createScaleHook({ command: cfg.scaleCommand, webhookUrl: cfg.scaleWebhook }) : null;
  const target = `${cfg.target.host}:${cfg.target.port}`;

  ctl.onChange((s, prev) => {
    if (s.state === 'ROLLBACK') alerts.alert({ kind: 'rollback', severity: 'critical', message: `rollback from ${prev.state}: ${s.reason}`, detail: { from: prev.state, version: s.version }, at: Date.now() });
  });

  const probe = (name: Role) =>
    new BackendProbe({ name, url: backendUrl(cfg.control[name]), intervalMs: cfg.healthProbeMs, timeoutMs: Math.max(cfg.connectTimeoutMs, 1000) });
  const probes = { source: probe('source'), target: probe('target') };

  let cpu: CpuWatch | null = null;
  if (cfg.targetClusterId || cfg.targetInstanceId) {
    const source = createCpuSource({ aws: cfg.aws, dbClusterIdentifier: cfg.targetClusterId, dbInstanceIdentifier: cfg.targetInstanceId });
    cpu = startCpuWatch({ source, intervalMs: cfg.cloudwatchIntervalMs, onSample: (v) => ctl.breakers.observeCpu(v) });
  }

  let publisher: CloudWatchPublisher | null = null;
  if (cfg.cloudwatchNamespace) {
    let prev: ProxyCounters | null = null;
    publisher = createCloudWatchPublisher({
      aws: cfg.aws,
      namespace: cfg.cloudwatchNamespace,
      dimensions: [{ Name: 'Sidecar', Value: cfg.sidecarId }],
      intervalMs: cfg.cloudwatchIntervalMs,
      registry: d.registry,
      read: () => {
        const cur = snapshotStats(d.proxy.stats);
        const out = [...proxyDatums(cur, prev), ...breakerDatums(ctl.breakers.readings())];
        prev = cur;
        return out;
      },
    });
  }

  let replication: ReplicationRuntime | null = null;
  if (cfg.subscription || cfg.dmsTaskArn) {
    try {
      replication = await startReplicationRuntime({
        sourceUrl: backendUrl(cfg.control.source),
        targetUrl: backendUrl(cfg.control.target),
        ...(cfg.subscription ? { subscription: cfg.subscription } : {}),
        ...(cfg.dmsTaskArn ? { dms: { taskArn: cfg.dmsTaskArn, aws: cfg.aws } } : {}),
        heartbeat: cfg.lagProbe,
        // The caught-up window (lag < 10 s for 1 h) scales with --time-scale like every other control duration.
        config: scaleControlConfig(DEFAULT_CONTROL_CONFIG, cfg.timeScale).replication,
        writer: () => STATE_POLICY[ctl.snapshot().state].writesTo,
        onLag: (s) => ctl.breakers.observeLag(s),
        onReplicationError: (m) => ctl.breakers.observeReplicationError(m),
        onPaused: (p) => ctl.breakers.observeReplicationPaused(p),
      });
      replication.register(d.registry);
      ctl.onChange((s, prev) => {
        if (STATE_POLICY[s.state].writesTo !== STATE_POLICY[prev.state].writesTo) replication?.writerChanged();
      });
    } catch (e) {
      // Replication watching is an observer: the proxy runs without it, and says so.
      await replication?.stop();
      replication = null;
      log.error({ err: (e as Error).message }, 'replication monitor not started: lag and replication-error breakers get no input');
    }
  }

  // DESIGN.md "Write switchover": the disabled forward slot is advanced during the parallel run; retention alerts.
  let slotAdvancer: SlotAdvancer | null = null;
  if (replication && cfg.subscription) {
    const rt = replication;
    slotAdvancer = startSlotAdvancer({
      sourceUrl: backendUrl(cfg.control.source),
      targetUrl: backendUrl(cfg.control.target),
      names: { subscription: cfg.subscription },
      intervalMs: cfg.finish.slotAdvanceIntervalMs,
      writer: () => STATE_POLICY[ctl.snapshot().state].writesTo,
      retained: () => (rt.status().slotRetainedBytes as { source: number | null; target: number | null }),
      alertBytes: cfg.finish.slotRetentionAlertBytes,
      onAlert: (side, bytes, threshold, crossed) => alerts.alert({
        kind: 'slot-retention',
        severity: crossed === 'above' ? 'warning' : 'info',
        message: `replication slot on the ${side} holds ${bytes} B of WAL (${crossed} the ${threshold} B alert threshold)`,
        detail: { side, bytes, threshold },
        at: Date.now(),
      }),
    });
  }
  const stopReplication = async () => {
    const a = slotAdvancer;
    const r = replication;
    slotAdvancer = null;
    replication = null;
    await a?.stop();
    await r?.stop();
  };

  return {
    backends: () => ({ source: probes.source.status(), target: probes.target.status() }),
    get replication() {
      return replication;
    },
    get slotAdvancer() {
      return slotAdvancer;
    },
    stopReplication,
    onBreaker(tr) {
      const critical = tr.to === 'open' && tr.action === 'rollback';
      alerts.alert({
        kind: tr.to === 'open' ? 'breaker-open' : 'breaker-closed',
        severity: critical ? 'critical' : tr.to === 'open' ? 'warning' : 'info',
        breaker: tr.name,
        message: `${tr.name} breaker ${tr.to} (${tr.action}): ${tr.reading.detail}`,
        detail: { action: tr.action, value: tr.reading.value, threshold: tr.reading.threshold },
        at: tr.at,
      });
      if (tr.name === 'target-cpu' && tr.to === 'open' && scale !== null) {
        void scale.run(tr.reading, { sidecarId: cfg.sidecarId, target }).then((r) =>
          alerts.alert({ kind: 'scale-hook', severity: r.ok ? 'info' : 'warning', breaker: tr.name, message: `scale hook ${r.how}: ${r.ok ? 'ran' : 'failed'}`, detail: { how: r.how, detail: r.detail }, at: Date.now() }),
        );
      }
    },
    async stop() {
      await Promise.all([probes.source.close(), probes.target.close()]);
      cpu?.stop();
      await publisher?.stop();
      await stopReplication();
      await alerts.close();
    },
  };
}
