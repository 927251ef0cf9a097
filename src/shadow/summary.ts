/** The shadow's counters as GET /shadow/mismatches shows them (and `pg-cutover shadow`). */
import type { Shadower } from './shadower.js';
import { percentile } from '../domain/percentile.js';

const p99 = (xs: readonly number[]): number | null => percentile(xs, 99);

export type ShadowSummary = ReturnType<typeof shadowSummary>;

export function shadowSummary(sh: Shadower) {
  const st = sh.stats;
  const dr = st.darkReads;
  return {
    mode: sh.mode,
    writes: sh.writes,
    rate: sh.rate,
    sampled: st.sampled,
    shadowed: st.shadowed,
    compared: st.compared,
    matched: st.matched,
    mismatched: { ...st.mismatched },
    unexplained: st.unexplained,
    abandoned: st.abandoned,
    roleRefused: st.roleRefused,
    notShadowed: { ...st.notShadowed },
    targetErrors: st.targetErrors,
    latencyP99Ms: p99(st.latencyMs),
    lagBytes: sh.lagBytes,
    poolInUse: sh.poolInUse(),
    apply: sh.mode === 'apply' ? { committed: st.apply.committed, partial: st.apply.partial, rolledBack: st.apply['rolled-back'], lost: st.apply.lost } : null,
    darkReads: {
      rate: sh.darkReadRate,
      sampled: dr.sampled,
      shadowed: dr.shadowed,
      compared: dr.compared,
      matched: dr.matched,
      mismatched: { ...dr.mismatched },
      unexplained: dr.unexplained,
      abandoned: dr.abandoned,
      roleRefused: dr.roleRefused,
      notShadowed: { ...dr.notShadowed },
    },
  };
}
