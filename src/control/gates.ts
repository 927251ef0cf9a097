/**
 * Gate runners for GET /gates/:n and the transition guards (DESIGN.md, Gates). Gates 1 and 2 run real
 * queries against both databases (src/replication); gate 3 judges the shadow-write evidence and the
 * target's error rate this sidecar has seen.
 */
import type { StartConfig } from '../config/load.js';
import { backendUrl } from '../proxy/database-url.js';
import type { ProxyServer } from '../proxy/server.js';
import { runGate1 } from '../replication/gate1.js';
import { runGate2 } from '../replication/gate2.js';
import { criterion, gateResult, type GateResult } from '../replication/gates.js';
import type { Shadower } from '../shadow/shadower.js';
import { EXPLAINED } from '../shadow/compare.js';
import type { GateReport } from './controller.js';

function report(g: GateResult): GateReport {
  return {
    gate: g.gate as 1 | 2 | 3,
    passed: g.passed,
    at: g.at,
    criteria: g.criteria.map((c) => ({ name: c.name, measured: c.measured, threshold: c.threshold, passed: c.passed, ...(c.detail ? { detail: c.detail } : {}) })),
  };
}

/** Gate 3: shadow validation passed (enough shadowed transactions, no unexplained mismatch), target errors ≤ 0.1%. */
export function gate3(cfg: { minShadowed: number; maxExplainedShare: number }, proxy: ProxyServer, sh: Shadower | null, now = Date.now()): GateResult {
  const st = sh?.stats;
  const shadowed = st?.shadowed ?? 0;
  const compared = st?.compared ?? 0;
  let explained = 0;
  if (st) for (const [k, v] of Object.entries(st.mismatched)) if (EXPLAINED.has(k as never)) explained += v;
  const share = compared > 0 ? explained / compared : 0;
  const tStmts = proxy.stats.statements.target;
  const tFaults = proxy.stats.backendFaults.target + proxy.stats.connectFailures.target;
  const errRate = tStmts > 0 ? tFaults / tStmts : 0;
  return gateResult(
    3,
    [
      criterion('shadow writes active', sh !== null, 'SHADOW_WRITES', sh !== null, sh ? undefined : 'gate 3 is judged in SHADOW_WRITES'),
      criterion('shadowed write transactions', shadowed, `>= ${cfg.minShadowed}`, shadowed >= cfg.minShadowed),
      criterion('unexplained shadow mismatches', st?.unexplained ?? 0, 0, (st?.unexplained ?? 0) === 0),
      criterion('explained mismatch share', Number(share.toFixed(4)), `<= ${cfg.maxExplainedShare}`, share <= cfg.maxExplainedShare),
      criterion('target error rate', Number(errRate.toFixed(5)), '<= 0.001', errRate <= 0.001, `${tFaults} server-side failures in ${tStmts} statements`),
    ],
    now,
  );
}

export function createGateRunner(cfg: StartConfig, proxy: ProxyServer, shadower: () => Shadower | null): (n: 1 | 2 | 3) => Promise<GateReport> {
  const src = backendUrl(cfg.control.source);
  const tgt = backendUrl(cfg.control.target);
  return async (n) => {
    switch (n) {
      case 1:
        return report(await runGate1(src, tgt, { requireTls: cfg.source.tls === 'require' && cfg.target.tls === 'require' }));
      case 2:
        return report(await runGate2(src, tgt, { subscription: cfg.subscription ?? null }));
      case 3:
        return report(gate3({ minShadowed: cfg.gate3MinShadowed, maxExplainedShare: 0.05 }, proxy, shadower()));
      default: {
        const never: never = n;
        throw new Error(`no gate ${String(never)}`);
      }
    }
  };
}
