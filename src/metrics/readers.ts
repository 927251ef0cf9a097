/**
 * Target reader metrics (issue 15 item 2, --target-readers): each reader's lag as a histogram (the seed's
 * "replica lag < 1 s p99" is read from it: histogram_quantile(0.99, …)), its current lag and health, and what
 * the proxy sent it. The lag is observed once per sample (--freshness-sample-ms) by the reader sampler.
 */
import { Gauge, Histogram, type Registry } from 'prom-client';
import type { ProxyStats } from '../proxy/stats.js';
import type { ReaderView } from '../router/readers.js';

/** Seconds; 1 s is a bucket edge so the p99 < 1 s objective is read exactly. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class ReaderMetrics {
  private readonly lag = new Histogram({
    name: 'pgcutover_target_reader_lag_seconds',
    help: 'Each target reader\'s staleness behind the writer at every sample (--freshness-sample-ms): writer time up to which it has applied everything, from sampled WAL positions',
    labelNames: ['reader'],
    buckets: LAG_BUCKETS,
    registers: [],
  });

  constructor(private readonly views: readonly ReaderView[]) {}

  /** A reader's staleness after a sample (ms; null unknown: not observed). */
  observe(reader: string, ms: number | null, stats: ProxyStats): void {
    stats.readerLagMs[reader] = ms ?? Number.NaN;
    if (ms !== null) this.lag.observe({ reader }, ms / 1000);
  }

  register(reg: Registry, stats: ProxyStats): void {
    reg.registerMetric(this.lag);
    const views = this.views;
    const g = (name: string, help: string, labelNames: string[], read: (g: Gauge) => void) =>
      new Gauge({ name, help, labelNames, registers: [reg], collect() { read(this); } });
    g('pgcutover_target_reader_lag_current_seconds', 'Each target reader\'s staleness at the last sample (NaN: unknown)', ['reader'], (m) => {
      for (const v of views) m.set({ reader: v.name }, (stats.readerLagMs[v.name] ?? Number.NaN) / 1000);
    });
    g('pgcutover_target_reader_up', 'Target reader answering its samples (1) or skipped (0)', ['reader'], (m) => {
      for (const v of views) m.set({ reader: v.name }, v.up ? 1 : 0);
    });
    g('pgcutover_target_reader_statements_total', 'Statements (Query, Sync, FunctionCall) sent to each target reader', ['reader'], (m) => {
      views.forEach((v, i) => m.set({ reader: v.name }, stats.readerStatements[i] ?? 0));
    });
    g('pgcutover_target_reader_faults_total', 'Target reader faults seen by sessions (lost connections, SQLSTATE 08/53/57/58/XX)', [], (m) => m.set(stats.readerFaults));
    g('pgcutover_target_reader_fallbacks_total', 'Reads a target reader failed or could not take (before any byte reached the client) that ran on the target primary', [], (m) => m.set(stats.readerFallbacks));
    g('pgcutover_target_reader_connect_failures_total', 'Failed logins to target readers', [], (m) => m.set(stats.readerConnectFailures));
  }
}
