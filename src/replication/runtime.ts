/**
 * The sidecar's replication runtime: the end-to-end heartbeat lag probe, the replication monitor
 * (native logical replication or AWS DMS) with its state machine, slot retention, and their
 * metrics, started and stopped as one unit (DESIGN.md "Replication state machine", "Circuit
 * breakers"). The heartbeat and the watched direction follow the writer ("Write switchover", last
 * paragraph): written on the side that takes writes, read on the other; the forward subscription
 * on the target is watched while the source writes, the reverse one on the source after the switch.
 *
 * Every database session here is a ControlSession (control-session.ts): it writes on a fenced
 * side, and a database that goes down makes probes fail and report, never throw at the process.
 */
import { Gauge, type Registry } from 'prom-client';
import { log } from '../support/log.js';
import type { ReplicationConfig } from '../domain/control-config.js';
import type { ReplicationState } from '../domain/replication-machine.js';
import { controlSession, type ControlSession, type ControlSessionOptions } from './control-session.js';
import { dmsMonitor, type AwsClientSettings } from './dms-monitor.js';
import { ensureHeartbeatTable, startHeartbeat, type HeartbeatProbe } from './heartbeat.js';
import { registerReplicationMetrics } from './metrics.js';
import { watchReplication, type Observation, type ReplicationMonitor, type ReplicationWatch } from './monitor.js';
import { nativeMonitor } from './native-monitor.js';
import { directionNames, type DirectionNames } from './reverse.js';
import {
  directionFor, reportedLag, reportedReplicationError, type WatchedDirection,
} from './runtime-plan.js';
import { slotInfo } from './subscription.js';
import { errorText } from './control-conn.js';
import { ROLES, otherRole, type Role } from '../domain/role.js';

export interface ReplicationRuntimeOptions {
  /** Privileged control URL of the source (as backendUrl(cfg.control.source) gives). */
  sourceUrl: string;
  targetUrl: string;
  /** Native subscription on the target (forward); when set, native replication is watched. */
  subscription?: string;
  /** Watch this AWS DMS task instead (the native options are then ignored). */
  dms?: { taskArn: string; aws?: AwsClientSettings };
  /** Other native names: forward publication (default `pgcutover`), reverse publication and subscription (default `pgcutover_reverse`). */
  names?: DirectionNames;
  /** Run the heartbeat lag probe. Default true. */
  heartbeat?: boolean;
  /** Default 1000 ms. */
  heartbeatIntervalMs?: number;
  /** Monitor poll and breaker feed interval. Default 1000 ms. */
  pollMs?: number;
  /** Caught-up window and lag thresholds of the replication state machine. Default DEFAULT_REPLICATION_CONFIG. */
  config?: ReplicationConfig;
  /** Failed observations in a row that make a replication error. Default 3 (monitor.ts). */
  failuresBeforeError?: number;
  /** Starting state (e.g. restored from the shared store). Default NOT_STARTED. */
  initialState?: ReplicationState;
  /** Session tuning (control-session.ts defaults: connect 5 s, query 10 s, backoff 0.5–15 s). */
  session?: { connectTimeoutMs?: number; queryTimeoutMs?: number; minBackoffMs?: number; maxBackoffMs?: number };
  /** Who takes writes now (from the cutover state). */
  writer(): Role;
  /** Every poll: the lag for BreakerSet.observeLag (null: unknown now). */
  onLag?(seconds: number | null): void;
  /** Every poll: the replication error for BreakerSet.observeReplicationError (null: none). */
  onReplicationError?(message: string | null): void;
  /** Every poll: replication PAUSED (since when, why) for BreakerSet.observeReplicationPaused, or null. */
  onPaused?(paused: { since: number; why: string } | null): void;
  now?: () => number;
}

export interface ReplicationRuntime {
  lagSeconds(): number | null;
  lagBytes(): number | null;
  state(): ReplicationState;
  last(): Observation | null;
  /** WAL held by the watched subscription's slot on its publisher (bytes); null when unknown. */
  slotRetainedBytes(): number | null;
  /**
   * Re-read writer() now (the cutover state changed): the heartbeat is written on the new writer
   * and read on the other side, and the monitor watches the direction that carries the writer's
   * changes. The poll loop also re-reads writer() on every round; this makes it immediate.
   */
  writerChanged(): void;
  /** Registers the replication gauges (metrics.ts) and slot retention per side. */
  register(reg: Registry): void;
  /** For GET /healthz or /replication. */
  status(): Record<string, unknown>;
  /** One heartbeat tick and one poll round now (the timers do this too). */
  poll(): Promise<void>;
  stop(): Promise<void>;
}

type PerSide<T> = Record<Role, T>;

export async function startReplicationRuntime(o: ReplicationRuntimeOptions): Promise<ReplicationRuntime> {
  const now = o.now ?? Date.now;
  const names = directionNames({ ...o.names, ...(o.subscription ? { subscription: o.subscription } : {}) });
  const mode: 'native' | 'dms' | 'none' = o.dms ? 'dms' : o.subscription ? 'native' : 'none';
  const urls: PerSide<string> = { source: o.sourceUrl, target: o.targetUrl };
  const session = (side: Role, purpose: string, onConnect?: ControlSessionOptions['onConnect']) =>
    controlSession({ login: urls[side], purpose, label: side, now, ...o.session, ...(onConnect ? { onConnect } : {}) });

  let writer: Role = o.writer();
  let direction: WatchedDirection = directionFor(writer, names);

  // The probe's own sessions: each tick writes then reads, and must not queue behind the monitor.
  // DDL is not replicated, so creating the table on a subscriber is fine (it must exist there to be applied to).
  const hbSessions: PerSide<ControlSession> | null = (o.heartbeat ?? true)
    ? { source: session('source', 'heartbeat', ensureHeartbeatTable), target: session('target', 'heartbeat', ensureHeartbeatTable) }
    : null;
  const hb: HeartbeatProbe | null = hbSessions
    ? startHeartbeat({ primary: hbSessions[writer].db, replica: hbSessions[otherRole(writer)].db, intervalMs: o.heartbeatIntervalMs ?? 1000, now })
    : null;
  const heartbeatLag = () => (hb && hb.lastError() === null ? hb.lagSeconds() : null);

  const monSessions: PerSide<ControlSession> | null = mode === 'native'
    ? { source: session('source', 'monitor'), target: session('target', 'monitor') }
    : null;
  const monitor = buildMonitor();
  const watch: ReplicationWatch | null = monitor
    ? watchReplication(monitor, {
      intervalMs: o.pollMs ?? 1000,
      ...(o.config ? { config: o.config } : {}),
      ...(o.initialState ? { initial: o.initialState } : {}),
      ...(o.failuresBeforeError ? { failuresBeforeError: o.failuresBeforeError } : {}),
      now,
    })
    : null;
  // One loop drives polls, slot readings and the breaker feed in order; the watcher's own timer would poll a second time.
  watch?.stop();

  function buildMonitor(): ReplicationMonitor | null {
    switch (mode) {
      case 'dms':
        return dmsMonitor({ taskArn: o.dms!.taskArn, ...(o.dms!.aws ? { aws: o.dms!.aws } : {}), now });
      case 'native': {
        const m = monSessions!;
        const forward = directionFor('source', names);
        const reverse = directionFor('target', names);
        const make = (d: WatchedDirection) =>
          nativeMonitor(m[d.publisher].db, m[d.subscriber].db, { subscription: d.subscription, publication: d.publication, lagSeconds: heartbeatLag, now });
        const byName = { forward: make(forward), reverse: make(reverse) };
        return { kind: 'native', observe: () => byName[direction.name].observe() };
      }
      case 'none':
        return null;
      default: {
        const never: never = mode;
        throw new Error(`unknown replication mode ${String(never)}`);
      }
    }
  }

  // Slot retention per side: the forward subscription's slot lives on the source, the reverse
  // one's on the target. Our subscriptions never set slot_name, so a slot has its subscription's name.
  const slots: PerSide<number | null> = { source: null, target: null };
  const slotOn: PerSide<string> = { source: names.subscription, target: names.reverseSubscription };
  const readSlots = async () => {
    if (!monSessions) return;
    await Promise.all(ROLES.map(async (side) => {
      try {
        slots[side] = (await slotInfo(monSessions[side].db, slotOn[side]))?.retainedBytes ?? null;
      } catch {
        slots[side] = null; // the session's lastError says why
      }
    }));
  };

  const syncWriter = () => {
    let w: Role;
    try {
      w = o.writer();
    } catch (err) {
      log.warn({ err: errorText(err) }, 'replication runtime: writer() failed; keeping the last writer');
      return;
    }
    if (w === writer) return;
    log.info({ from: writer, to: w }, 'replication runtime: writer changed; heartbeat and monitor follow');
    writer = w;
    direction = directionFor(w, names);
    if (hb && hbSessions) hb.setPrimary(hbSessions[w].db, hbSessions[otherRole(w)].db);
  };

  // A paused subscription is not lag: its backlog grows by design until `replicate resume`.
  const paused = () => (watch?.state() === 'PAUSED' ? { since: watch.since()?.at ?? Date.now(), why: watch.since()?.reason ?? 'subscription disabled' } : null);
  const lagSeconds = () => paused() !== null ? null : reportedLag({
    heartbeat: hb !== null,
    heartbeatLag: hb ? hb.lagSeconds() : null,
    heartbeatError: hb ? hb.lastError() : null,
    observed: watch?.last()?.lagSeconds ?? null,
  });
  const replicationError = () => reportedReplicationError(watch?.last() ?? null);

  const feed = () => {
    const calls: [string, () => void][] = [
      ['onLag', () => o.onLag?.(lagSeconds())],
      ['onReplicationError', () => o.onReplicationError?.(replicationError())],
      ['onPaused', () => o.onPaused?.(paused())],
    ];
    for (const [name, call] of calls) {
      try {
        call();
      } catch (err) {
        log.warn({ err: errorText(err), callback: name }, 'replication runtime callback threw');
      }
    }
  };

  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let round: Promise<void> | null = null;
  /** A round is wanted as soon as the one in flight ends (the writer changed while it read the old direction). */
  let again = false;
  const pollRound = (): Promise<void> => {
    if (round) {
      again = true;
      return round;
    }
    round = (async () => {
      try {
        syncWriter();
        const watched = direction;
        await Promise.all([watch?.poll(), readSlots()]);
        // The writer changed while this round read the old direction: what it saw is replication no longer
        // watched (e.g. the forward subscription the switchover just disabled, PAUSED). Not fed to the breakers:
        // a round of the new direction follows at once.
        if (direction === watched) feed();
        else again = true;
      } catch (err) {
        log.warn({ err: errorText(err) }, 'replication runtime poll failed');
      }
    })().finally(() => {
      round = null;
      if (again && !stopped) {
        again = false;
        void pollRound();
      }
    });
    return round;
  };
  /**
   * The cutover state moved the writer: follow it now and read the new direction at once, so the breakers do not
   * hold the old direction's reading (a PAUSED forward subscription after a switchover) until the next poll.
   */
  const writerChanged = () => {
    syncWriter();
    if (!stopped) void pollRound();
  };
  const loop = () => {
    void pollRound().then(() => {
      if (stopped) return;
      timer = setTimeout(loop, o.pollMs ?? 1000);
      timer.unref();
    });
  };
  void hb?.tick();
  loop();

  const sessionsStatus = (s: PerSide<ControlSession> | null) =>
    s && { source: { connected: s.source.connected(), lastError: s.source.lastError() }, target: { connected: s.target.connected(), lastError: s.target.lastError() } };

  return {
    lagSeconds,
    lagBytes: () => watch?.last()?.lagBytes ?? null,
    state: () => watch?.state() ?? o.initialState ?? 'NOT_STARTED',
    last: () => watch?.last() ?? null,
    slotRetainedBytes: () => (mode === 'native' ? slots[direction.publisher] : null),
    writerChanged,
    register(reg) {
      registerReplicationMetrics(reg, {
        lagSeconds,
        lagBytes: () => watch?.last()?.lagBytes ?? null,
        state: () => watch?.state() ?? o.initialState ?? 'NOT_STARTED',
        slotRetainedBytes: () => (mode === 'native' ? slots[direction.publisher] : null),
      });
      if (mode !== 'native') return;
      // DESIGN.md "Write switchover": the disabled forward slot keeps source WAL for the whole
      // parallel run, so both sides' retention is a metric, not only the watched direction's.
      new Gauge({
        name: 'pgcutover_replication_slot_retained_bytes_by_side',
        help: 'WAL held by pg-cutover replication slots on each database (bytes; NaN when unknown)',
        labelNames: ['side'],
        registers: [reg],
        collect() {
          for (const side of ROLES) this.set({ side }, slots[side] ?? Number.NaN);
        },
      });
    },
    status() {
      const last = watch?.last() ?? null;
      return {
        mode,
        writer,
        direction: mode === 'native' ? direction : null,
        state: watch?.state() ?? o.initialState ?? 'NOT_STARTED',
        since: watch?.since() ? { at: new Date(watch.since()!.at).toISOString(), why: watch.since()!.reason } : null,
        paused: paused() !== null,
        lagSeconds: lagSeconds(),
        lagBytes: last?.lagBytes ?? null,
        replicationError: replicationError(),
        last: last && { phase: last.phase, detail: last.detail, error: last.error ?? null, at: new Date(last.now).toISOString() },
        slotRetainedBytes: { ...slots },
        heartbeat: hb && { lagSeconds: hb.lagSeconds(), lastError: hb.lastError(), writtenOn: writer, readOn: otherRole(writer) },
        sessions: { heartbeat: sessionsStatus(hbSessions), monitor: sessionsStatus(monSessions) },
      };
    },
    async poll() {
      await Promise.all([hb?.tick(), pollRound()]);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      hb?.stop();
      await round;
      const all = [...Object.values(hbSessions ?? {}), ...Object.values(monSessions ?? {})];
      await Promise.all(all.map((s) => s.close()));
    },
  };
}
