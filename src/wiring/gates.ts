/**
 * Gate runners for GET /gates/:n and the transition guards (DESIGN.md, Gates). Gates 1 and 2 run real
 * queries against both databases (src/replication); gate 3 judges the shadow-write evidence and the
 * target's error rate this sidecar has seen.
 */
import type { StartConfig } from '../config/load.js';
import { backendUrl } from '../net/database-url.js';
import type { ProxyServer } from '../proxy/server.js';
import { runGate1 } from '../replication/gate1.js';
import { runGate2Directed } from '../replication/gate2.js';
import { criterion, gateReport, gateResult, type GateReport, type GateResult } from '../domain/gate-result.js';
import { percentile } from '../domain/percentile.js';
import type { Shadower } from '../shadow/shadower.js';
import { EXPLAINED } from '../shadow/compare.js';
import type { WriteHold } from '../replication/consistent-point.js';
import type { WritePause } from '../control/write-pause.js';
import type { Role } from '../domain/role.js';
import { gateAuditEntry, type AuditEntry } from '../domain/audit.js';
import type { GateStatus } from '../domain/cutover-machine.js';

export interface Gate3Config {
  minShadowed: number;
  maxExplainedShare: number;
  /** DESIGN.md gate 3: read p99 < 30 ms, write p99 < 20 ms (on the target). */
  readP99Ms: number;
  writeP99Ms: number;
  /** Gate 2 (counts and checksums) must have passed within this long. */
  gate2MaxAgeMs: number;
}

export const DEFAULT_GATE3: Omit<Gate3Config, 'minShadowed'> = { maxExplainedShare: 0.05, readP99Ms: 30, writeP99Ms: 20, gate2MaxAgeMs: 24 * 3600_000 };

/**
 * Gate 3 (DESIGN.md): shadow validation passed (enough shadowed transactions, no unexplained mismatch, explained
 * ones under a share), target errors ≤ 0.1%, read p99 on the target (reads through the proxy in this stage),
 * write p99 on the target (the shadows' statement latency: what the target takes for these writes), and the
 * checksums of gate 2 equal recently.
 */
export function gate3(cfg: Gate3Config, proxy: ProxyServer, sh: Shadower | null, gate2: GateStatus | undefined, now = Date.now()): GateResult {
  const st = sh?.stats;
  const shadowed = st?.shadowed ?? 0;
  const compared = st?.compared ?? 0;
  let explained = 0;
  if (st) for (const [k, v] of Object.entries(st.mismatched)) if (EXPLAINED.has(k as never)) explained += v;
  const share = compared > 0 ? explained / compared : 0;
  const tStmts = proxy.stats.statements.target;
  const tFaults = proxy.stats.backendFaults.target + proxy.stats.connectFailures.target;
  const errRate = tStmts > 0 ? tFaults / tStmts : 0;
  const readP99 = proxy.stats.latency.target.read.quantile(0.99);
  const writeP99 = percentile(st?.latencyMs ?? [], 99);
  return gateResult(
    3,
    [
      criterion('shadow writes active', sh !== null && sh.writes, 'SHADOW_WRITES', sh !== null && sh.writes, sh?.writes ? undefined : 'gate 3 is judged in SHADOW_WRITES'),
      criterion('shadowed write transactions', shadowed, `>= ${cfg.minShadowed}`, shadowed >= cfg.minShadowed),
      criterion('unexplained shadow mismatches', st?.unexplained ?? 0, 0, (st?.unexplained ?? 0) === 0),
      criterion('explained mismatch share', Number(share.toFixed(4)), `<= ${cfg.maxExplainedShare}`, share <= cfg.maxExplainedShare),
      criterion('target error rate', Number(errRate.toFixed(5)), '<= 0.001', errRate <= 0.001, `${tFaults} server-side failures in ${tStmts} statements`),
      latencyCriterion('target read p99 (ms)', readP99, cfg.readP99Ms, `${proxy.stats.latency.target.read.count} reads through the proxy in this state`),
      latencyCriterion('target write p99 (ms)', writeP99, cfg.writeP99Ms, `${st?.latencyMs.length ?? 0} shadowed statements`),
      criterion(
        'gate 2 (counts, checksums) passed',
        gate2 ? new Date(gate2.at).toISOString() : 'never run',
        `passed within ${Math.round(cfg.gate2MaxAgeMs / 3600_000)}h`,
        gate2 !== undefined && gate2.passed && now - gate2.at <= cfg.gate2MaxAgeMs,
        gate2 && !gate2.passed ? 'the last gate 2 failed' : undefined,
      ),
    ],
    now,
  );
}

/** A p99 against its bound; unmeasured is a failure (no evidence), with the reason. */
function latencyCriterion(name: string, v: number | null, max: number, detail: string) {
  return criterion(name, v === null ? null : Number(v.toFixed(2)), `< ${max}`, v !== null && v < max, v === null ? `not measured: ${detail}` : detail);
}

/**
 * Gate 2's hold (src/replication/consistent-point.ts) through the coordinated write pause: every live sidecar
 * parks and drains writes on the current writer, holding at most the budget plus a second without a release.
 * Refused while writes are already held (a switchover or rollback owns them).
 */
export function gateWriteHold(pauses: WritePause, holder: { holding(): boolean }, writer: () => Role, version: () => number): WriteHold {
  return async (budgetMs) => {
    if (holder.holding()) throw new Error('writes are already held by another operation');
    const w = writer();
    const p = pauses.pause(w, budgetMs, budgetMs + 1000);
    try {
      await p.hold();
    } catch (e) {
      await p.release(w, version());
      throw e;
    }
    return () => p.release(w, version());
  };
}

export function createGateRunner(
  cfg: StartConfig,
  proxy: ProxyServer,
  shadower: () => Shadower | null,
  lastGate: (n: 2) => GateStatus | undefined,
  /** Gate 2's short coordinated write hold for chunks that keep changing (src/replication/consistent-point.ts). */
  hold?: WriteHold,
  /** Every run is recorded here (audit log, kind 'gate'). */
  audit?: (e: AuditEntry) => Promise<void>,
): (n: 1 | 2 | 3) => Promise<GateReport> {
  const run = gateRunner(cfg, proxy, shadower, lastGate, hold);
  return async (n) => {
    const started = Date.now();
    let g: GateResult;
    try {
      g = await run(n);
    } catch (e) {
      // A gate that could not run is evidence too: recorded as failed, with the error.
      const failed = { gate: n, passed: false, startedAt: started, endedAt: Date.now(), criteria: [{ name: 'gate ran', measured: (e as Error).message, threshold: 'completes', passed: false }] };
      await audit?.(gateAuditEntry(failed, cfg.sidecarId)).catch(() => undefined);
      throw e;
    }
    const r = gateReport({ ...g, gate: n });
    await audit?.(gateAuditEntry({ gate: g.gate, passed: g.passed, startedAt: g.at, endedAt: g.at + g.ms, criteria: r.criteria }, cfg.sidecarId)).catch(() => undefined);
    return r;
  };
}

function gateRunner(
  cfg: StartConfig,
  proxy: ProxyServer,
  shadower: () => Shadower | null,
  lastGate: (n: 2) => GateStatus | undefined,
  hold?: WriteHold,
): (n: 1 | 2 | 3) => Promise<GateResult> {
  const src = backendUrl(cfg.control.source);
  const tgt = backendUrl(cfg.control.target);
  return async (n) => {
    switch (n) {
      case 1:
        return (await runGate1(src, tgt, {
          requireTls: cfg.source.tls === 'require' && cfg.target.tls === 'require',
          appRoles: cfg.appRoles,
          // Clients log in as themselves with the source's secrets: the target must hold the same ones.
          sameSecrets: cfg.auth.lookup || cfg.auth.backendLogin === 'client',
        }));
      case 2:
        return (await runGate2Directed(src, tgt, {
          subscription: cfg.subscription ?? null,
          ...(hold ? { hold } : {}),
          holdBudgetMs: cfg.gate2HoldMs,
          exclude: cfg.gate2Exclude,
          accept: cfg.gate2Accept,
        }));
      case 3:
        return (gate3({ ...DEFAULT_GATE3, minShadowed: cfg.gate3MinShadowed, readP99Ms: cfg.gate3ReadP99Ms, writeP99Ms: cfg.gate3WriteP99Ms }, proxy, shadower(), lastGate(2)));
      default: {
        const never: never = n;
        throw new Error(`no gate ${String(never)}`);
      }
    }
  };
}
