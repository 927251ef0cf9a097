/**
 * The report's charts from recorded history (src/project/history.ts): state timeline, read split, p99 per
 * backend against 30/20 ms, error rate against the breaker thresholds, replication lag against 10/60 s, shadow
 * match rate, slot retention against its alert threshold.
 */
import type { HistorySample } from '../history.js';
import { lineChart, segments, timelineChart, type LineChart } from './svg.js';

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
  const line = (id: string, title: string, o: Omit<LineChart, 'id' | 'title'>) => c.push({ id, title, svg: lineChart({ id, title, ...o }) });
  /** p99 of reads or writes per backend, against its gate 3 bound. */
  const p99 = (kind: 'read' | 'write', title: string, boundMs: number, targetColor: string) =>
    line(`p99-${kind}`, title, {
      unit: 'ms',
      series: [
        { name: 'source', color: '#8c959f', points: pts(samples, (s) => s.p99.source[kind]) },
        { name: 'target', color: targetColor, points: pts(samples, (s) => s.p99.target[kind]) },
      ],
      thresholds: [{ value: boundMs, label: `${kind} bound ${boundMs} ms`, color: '#bf8700' }],
    });
  c.push({ id: 'state-timeline', title: 'Cutover state timeline', svg: timelineChart('state-timeline', 'Cutover state timeline', segments(samples)) });
  line('read-split', 'Reads sent to the target (%)', {
    unit: '%', yMax: 100,
    series: [{ name: 'target share', color: '#0969da', points: pts(samples, (s) => s.readPercent) }],
  });
  p99('read', 'Read p99 per backend (ms)', 30, '#0969da');
  p99('write', 'Write p99 per backend (ms)', 20, '#1a7f37');
  const errTh = [{ value: th.errorRate * 100, label: `breaker ${(th.errorRate * 100).toFixed(0)}%`, color: '#cf222e' }];
  if (th.baselineErrorRate !== null) errTh.push({ value: (th.baselineErrorRate + th.baselineDelta) * 100, label: 'baseline + 5%', color: '#bf8700' });
  line('error-rate', 'Application error rate through the proxy (%)', {
    unit: '%',
    series: [{ name: 'errors', color: '#cf222e', points: pts(samples, (s) => (s.errorRate === null ? null : s.errorRate * 100)) }],
    thresholds: errTh,
  });
  line('replication-lag', 'Replication lag (s)', {
    unit: 's',
    series: [{ name: 'lag', color: '#8250df', points: pts(samples, (s) => s.lagSeconds) }],
    thresholds: [{ value: 10, label: 'caught up < 10 s', color: '#bf8700' }, { value: 60, label: 'breaker 60 s', color: '#cf222e' }],
  });
  line('shadow-match', 'Shadow match rate (%)', {
    unit: '%', yMax: 100,
    series: [{ name: 'matched', color: '#1a7f37', points: pts(samples, (s) => (s.shadowMatchRate === null ? null : s.shadowMatchRate * 100)) }],
  });
  line('slot-retention', 'Replication slot retention (MB)', {
    unit: 'MB',
    series: [
      { name: 'source (forward slot)', color: '#8c959f', points: pts(samples, (s) => (s.slotRetainedBytes.source === null ? null : s.slotRetainedBytes.source / MB)) },
      { name: 'target (reverse slot)', color: '#0969da', points: pts(samples, (s) => (s.slotRetainedBytes.target === null ? null : s.slotRetainedBytes.target / MB)) },
    ],
    // The alert line only when retention comes near it: a 1 GiB line would flatten a few MB to nothing.
    thresholds: maxRetained(samples) >= th.slotAlertBytes / 4 ? [{ value: th.slotAlertBytes / MB, label: 'alert', color: '#cf222e' }] : [],
  });
  return c;
}

function maxRetained(samples: readonly HistorySample[]): number {
  let m = 0;
  for (const s of samples) m = Math.max(m, s.slotRetainedBytes.source ?? 0, s.slotRetainedBytes.target ?? 0);
  return m;
}
