/** Shadow-write metrics and the summary shown by GET /shadow/mismatches, read from Shadower's counters. */
import { Gauge, type Registry } from 'prom-client';
import { MISMATCH_CLASSES } from '../shadow/compare.js';
import type { Shadower } from '../shadow/shadower.js';

function p99(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

export function shadowSummary(sh: Shadower) {
  const st = sh.stats;
  return {
    rate: sh.rate,
    sampled: st.sampled,
    shadowed: st.shadowed,
    compared: st.compared,
    matched: st.matched,
    mismatched: { ...st.mismatched },
    unexplained: st.unexplained,
    abandoned: st.abandoned,
    notShadowed: { ...st.notShadowed },
    targetErrors: st.targetErrors,
    latencyP99Ms: p99(st.latencyMs),
    lagBytes: sh.lagBytes,
    poolInUse: sh.poolInUse(),
  };
}

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
  g('pgcutover_shadow_transactions_total', 'Write transactions sampled / shadowed', ['stage'], (m, sh) => {
    m.set({ stage: 'sampled' }, sh.stats.sampled);
    m.set({ stage: 'shadowed' }, sh.stats.shadowed);
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
  g('pgcutover_replication_lag_bytes', 'Source WAL not yet applied by subscribers (sampled by the shadow service)', [], (m, sh) => m.set(sh.lagBytes));
}
