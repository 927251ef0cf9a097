/** Shadow-write and dark-read metrics, read from Shadower's counters at scrape time. */
import { Gauge, type Registry } from 'prom-client';
import { MISMATCH_CLASSES } from '../shadow/compare.js';
import type { Shadower } from '../shadow/shadower.js';
import { percentile } from '../domain/percentile.js';

const p99 = (xs: readonly number[]): number | null => percentile(xs, 99);

export function registerShadowMetrics(reg: Registry, get: () => Shadower | null): void {
  const g = (name: string, help: string, labelNames: string[], read: (g: Gauge, sh: Shadower) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [reg],
      collect() {
        const sh = get();
        if (sh) read(this, sh);
      },
    });
  g('pgcutover_shadow_sampling_rate', 'Current share of write transactions shadowed (after lag adaptation)', [], (m, sh) => m.set(sh.rate));
  g('pgcutover_shadow_transactions_total', 'Write transactions sampled / shadowed / abandoned because the target refused SET ROLE to the client\'s role', ['stage'], (m, sh) => {
    m.set({ stage: 'sampled' }, sh.stats.sampled);
    m.set({ stage: 'shadowed' }, sh.stats.shadowed);
    m.set({ stage: 'role_refused' }, sh.stats.roleRefused);
  });
  g('pgcutover_shadow_units_total', 'Compared units (statement groups) by outcome', ['outcome'], (m, sh) => {
    m.set({ outcome: 'matched' }, sh.stats.matched);
    m.set({ outcome: 'compared' }, sh.stats.compared);
  });
  g('pgcutover_shadow_mismatches_total', 'Shadow mismatches by class', ['class'], (m, sh) => {
    for (const c of MISMATCH_CLASSES) m.set({ class: c }, sh.stats.mismatched[c]);
  });
  g('pgcutover_shadow_not_shadowed_total', 'Write transactions not shadowed, by reason', ['reason'], (m, sh) => {
    for (const [k, v] of Object.entries(sh.stats.notShadowed)) m.set({ reason: k }, v);
  });
  g('pgcutover_shadow_latency_p99_seconds', 'Shadow reply latency p99 (recent units)', [], (m, sh) => m.set((p99(sh.stats.latencyMs) ?? 0) / 1000));
  g('pgcutover_shadow_pool_in_use', 'Shadow connections in use', [], (m, sh) => m.set(sh.poolInUse()));
  g('pgcutover_dark_read_rate', 'Share of reads sent to the source that also run on the target (dark reads)', [], (m, sh) => m.set(sh.darkReadRate));
  g('pgcutover_dark_reads_total', 'Dark reads (reads to the source also run on the target) by outcome; unexplained is part of mismatched', ['outcome'], (m, sh) => {
    const d = sh.stats.darkReads;
    let mismatched = 0;
    for (const c of MISMATCH_CLASSES) mismatched += d.mismatched[c];
    m.set({ outcome: 'sampled' }, d.sampled);
    m.set({ outcome: 'shadowed' }, d.shadowed);
    m.set({ outcome: 'compared' }, d.compared);
    m.set({ outcome: 'matched' }, d.matched);
    m.set({ outcome: 'mismatched' }, mismatched);
    m.set({ outcome: 'unexplained' }, d.unexplained);
    m.set({ outcome: 'abandoned' }, d.abandoned);
    for (const [k, v] of Object.entries(d.notShadowed)) m.set({ outcome: k }, v);
  });
  g('pgcutover_dark_read_mismatches_total', 'Dark-read mismatches by class', ['class'], (m, sh) => {
    for (const c of MISMATCH_CLASSES) m.set({ class: c }, sh.stats.darkReads.mismatched[c]);
  });
  g('pgcutover_shadow_apply_total', 'Apply mode: shadowed write transactions by what the target did (lost: source committed, shadow could not)', ['outcome'], (m, sh) => {
    if (sh.mode !== 'apply') return;
    const a = sh.stats.apply;
    m.set({ outcome: 'committed' }, a.committed);
    m.set({ outcome: 'partial' }, a.partial);
    m.set({ outcome: 'rolled_back' }, a['rolled-back']);
    m.set({ outcome: 'lost' }, a.lost);
  });
  g('pgcutover_shadow_lag_bytes', 'Source WAL not yet replayed by its subscribers, sampled every 20 ms for the shadow sampling budget (bytes)', [], (m, sh) => m.set(sh.lagBytes));
}
