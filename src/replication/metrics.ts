/**
 * Replication gauges for the Prometheus registry (src/metrics/registry.ts takes them through its
 * `extra` hook). Values are read at scrape time from the watcher and the heartbeat probe, so
 * nothing is pushed on their paths.
 */
import { Gauge, type Registry } from 'prom-client';
import { REPLICATION_STATES, type ReplicationState } from '../domain/replication-machine.js';

export interface ReplicationReadings {
  /** End-to-end lag from the heartbeat probe (seconds). */
  lagSeconds?: () => number | null;
  /** Publisher WAL not yet applied (bytes). */
  lagBytes?: () => number | null;
  state?: () => ReplicationState;
  /** WAL kept by the replication slot on the publisher (bytes). */
  slotRetainedBytes?: () => number | null;
}

export function registerReplicationMetrics(reg: Registry, r: ReplicationReadings): void {
  const gauge = (name: string, help: string, read: (() => number | null) | undefined) => {
    if (!read) return;
    new Gauge({
      name,
      help,
      registers: [reg],
      collect() {
        const v = read();
        // Unknown is NaN, which Prometheus keeps apart from 0 (0 would read as "no lag").
        this.set(v === null ? Number.NaN : v);
      },
    });
  };
  gauge('pgcutover_replication_lag_seconds', 'Replication lag measured end to end by the heartbeat row (seconds)', r.lagSeconds);
  gauge('pgcutover_replication_lag_bytes', 'Publisher WAL the subscriber has not applied yet (bytes)', r.lagBytes);
  gauge('pgcutover_replication_slot_retained_bytes', 'WAL held by the replication slot on the publisher (bytes)', r.slotRetainedBytes);
  const state = r.state;
  if (state) {
    new Gauge({
      name: 'pgcutover_replication_state',
      help: 'Replication state: 1 for the current state, 0 for the others',
      labelNames: ['state'],
      registers: [reg],
      collect() {
        const now = state();
        for (const s of REPLICATION_STATES) this.set({ state: s }, s === now ? 1 : 0);
      },
    });
  }
}
