/**
 * The report's charts from recorded history (src/project/history.ts): state timeline, read split, p99 per
 * backend against 30/20 ms, error rate against the breaker thresholds, replication lag against 10/60 s, shadow
 * match rate, slot retention against its alert threshold.
 */
import type { HistorySample } from '../history.js';
import { lineChart, segments, timelineChart } from './svg.js';

export interface ChartThresholds {
  /** Error-rate breaker: absolute threshold and delta over the baseline (fractions). */
  readonly errorRate: number;
  readonly baselineDelta: number;
  readonly baselineErrorRate: number | null;
  readonly slotAlertBytes: number;
}

export interface Chart {
  readonly id: string;
  readonly title: string;
  readonly svg: string;
}

const pts = (samples: readonly HistorySample[], f: (s: HistorySample) => number | null) => samples.map((s) => [s.at, f(s)] as const);
const MB = 1024 * 1024;

export function buildCharts(samples: readonly HistorySample[], th: ChartThresholds): Chart[] {
  const c: Chart[] = [];
  const add = (id: string, title: string, svg: string) => c.push({ id, title, svg });
  add('state-timeline', 'Cutover state timeline', timelineChart('state-timeline', 'Cutover state timeline', segments(samples)));
  add('read-split', 'Reads sent to the target (%)', lineChart({
    id: 'read-split', title: 'Reads sent to the target (%)', unit: '%', yMax: 100,
    series: [{ name: 'target share', color: '#0969da', points: pts(samples, (s) => s.readPercent) }],
  }));
  add('p99-read', 'Read p99 per backend (ms)', lineChart({
    id: 'p99-read', title: 'Read p99 per backend (ms)', unit: 'ms',
    series: [
      { name: 'source', color: '#8c959f', points: pts(samples, (s) => s.p99.source.read) },
      { name: 'target', color: '#0969da', points: pts(samples, (s) => s.p99.target.read) },
    ],
    thresholds: [{ value: 30, label: 'read bound 30 ms', color: '#bf8700' }],
  }));
  add('p99-write', 'Write p99 per backend (ms)', lineChart({
    id: 'p99-write', title: 'Write p99 per backend (ms)', unit: 'ms',
    series: [
      { name: 'source', color: '#8c959f', points: pts(samples, (s) => s.p99.source.write) },
      { name: 'target', color: '#1a7f37', points: pts(samples, (s) => s.p99.target.write) },
    ],
    thresholds: [{ value: 20, label: 'write bound 20 ms', color: '#bf8700' }],
  }));
  const errTh = [{ value: th.errorRate * 100, label: `breaker ${(th.errorRate * 100).toFixed(0)}%`, color: '#cf222e' }];
  if (th.baselineErrorRate !== null) errTh.push({ value: (th.baselineErrorRate + th.baselineDelta) * 100, label: 'baseline + 5%', color: '#bf8700' });
  add('error-rate', 'Application error rate through the proxy (%)', lineChart({
    id: 'error-rate', title: 'Application error rate through the proxy (%)', unit: '%',
    series: [{ name: 'errors', color: '#cf222e', points: pts(samples, (s) => (s.errorRate === null ? null : s.errorRate * 100)) }],
    thresholds: errTh,
  }));
  add('replication-lag', 'Replication lag (s)', lineChart({
    id: 'replication-lag', title: 'Replication lag (s)', unit: 's',
    series: [{ name: 'lag', color: '#8250df', points: pts(samples, (s) => s.lagSeconds) }],
    thresholds: [{ value: 10, label: 'caught up < 10 s', color: '#bf8700' }, { value: 60, label: 'breaker 60 s', color: '#cf222e' }],
  }));
  add('shadow-match', 'Shadow match rate (%)', lineChart({
    id: 'shadow-match', title: 'Shadow match rate (%)', unit: '%', yMax: 100,
    series: [{ name: 'matched', color: '#1a7f37', points: pts(samples, (s) => (s.shadowMatchRate === null ? null : s.shadowMatchRate * 100)) }],
  }));
  add('slot-retention', 'Replication slot retention (MB)', lineChart({
    id: 'slot-retention', title: 'Replication slot retention (MB)', unit: 'MB',
    series: [
      { name: 'source (forward slot)', color: '#8c959f', points: pts(samples, (s) => (s.slotRetainedBytes.source === null ? null : s.slotRetainedBytes.source / MB)) },
      { name: 'target (reverse slot)', color: '#0969da', points: pts(samples, (s) => (s.slotRetainedBytes.target === null ? null : s.slotRetainedBytes.target / MB)) },
    ],
    // The alert line only when retention comes near it: a 1 GiB line would flatten a few MB to nothing.
    thresholds: maxRetained(samples) >= th.slotAlertBytes / 4 ? [{ value: th.slotAlertBytes / MB, label: 'alert', color: '#cf222e' }] : [],
  }));
  return c;
}

function maxRetained(samples: readonly HistorySample[]): number {
  let m = 0;
  for (const s of samples) m = Math.max(m, s.slotRetainedBytes.source ?? 0, s.slotRetainedBytes.target ?? 0);
  return m;
}
