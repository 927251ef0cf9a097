/**
 * Replication monitors: each maps what its replicator reports (native logical replication, AWS
 * DMS) to an observation for the pure reducer in control/replication-machine.ts, and a watcher
 * polls one and keeps the replication state.
 */
import { log } from '../support/log.js';
import { DEFAULT_REPLICATION_CONFIG, type ReplicationConfig } from '../domain/control-config.js';
import {
  INITIAL_REPLICATION_MEMORY, nextReplicationState,
  type ReplicationMemory, type ReplicationObservation, type ReplicationState, type ReplicationStep,
} from '../domain/replication-machine.js';
import { errorText } from './control-conn.js';

export interface Observation extends ReplicationObservation {
  /** Source WAL (native) not yet applied on the target; null when unknown or not applicable (DMS). */
  readonly lagBytes: number | null;
  /** One human line: what the replicator said. */
  readonly detail: string;
}

export interface ReplicationMonitor {
  /** Which replicator this watches, for logs and status (`native`, `dms`). */
  readonly kind: string;
  observe(): Promise<Observation>;
}

export interface WatchOptions {
  /** Default 1000 ms. */
  intervalMs?: number;
  config?: ReplicationConfig;
  /** Starting state (e.g. restored from the shared store). Default NOT_STARTED. */
  initial?: ReplicationState;
  /**
   * A monitor that cannot observe (its own connection failed) is not a replication error by
   * itself; this many failures in a row are. Default 3.
   */
  failuresBeforeError?: number;
  now?: () => number;
  /** Every observation with the step it caused (transition null when the state held). */
  onObservation?: (obs: Observation, step: ReplicationStep) => void;
}

export interface ReplicationWatch {
  state(): ReplicationState;
  /** When the current state was entered, and why (null before the first change). */
  since(): { at: number; reason: string } | null;
  last(): Observation | null;
  /** Observe once now (the timer calls this too); resolves with the new state. */
  poll(): Promise<ReplicationState>;
  stop(): void;
}

/** Polls `monitor` and runs the replication state machine over what it sees. */
export function watchReplication(monitor: ReplicationMonitor, opts: WatchOptions = {}): ReplicationWatch {
  const config = opts.config ?? DEFAULT_REPLICATION_CONFIG;
  const now = opts.now ?? Date.now;
  const maxFailures = opts.failuresBeforeError ?? 3;
  let state: ReplicationState = opts.initial ?? 'NOT_STARTED';
  let memory: ReplicationMemory = INITIAL_REPLICATION_MEMORY;
  let last: Observation | null = null;
  let since: { at: number; reason: string } | null = null;
  let failures = 0;
  let inFlight: Promise<ReplicationState> | null = null;

  const apply = (obs: Observation) => {
    const step = nextReplicationState(state, obs, memory, config);
    state = step.state;
    memory = step.memory;
    last = obs;
    if (step.transition) {
      const t = step.transition;
      since = { at: obs.now, reason: t.reason };
      (t.expected ? log.info.bind(log) : log.warn.bind(log))({ monitor: monitor.kind, ...t, detail: obs.detail }, 'replication state changed');
    }
    opts.onObservation?.(obs, step);
  };

  const pollOnce = async (): Promise<ReplicationState> => {
    try {
      const obs = await monitor.observe();
      failures = 0;
      apply(obs);
    } catch (err) {
      failures++;
      const msg = errorText(err);
      log.warn({ monitor: monitor.kind, err: msg, failures }, 'replication monitor could not observe');
      if (failures >= maxFailures) {
        apply({ phase: last?.phase ?? 'not-started', lagSeconds: null, lagBytes: null, error: `monitor failed ${failures} times: ${msg}`, now: now(), detail: msg });
      }
    }
    return state;
  };

  const timer = setInterval(() => void watch.poll(), opts.intervalMs ?? 1000);
  timer.unref();
  const watch: ReplicationWatch = {
    state: () => state,
    since: () => since,
    last: () => last,
    poll() {
      inFlight ??= pollOnce().finally(() => (inFlight = null));
      return inFlight;
    },
    stop: () => clearInterval(timer),
  };
  return watch;
}
