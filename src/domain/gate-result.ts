/**
 * Gate results (DESIGN.md "Gates"), the one type every gate returns, the admin API sends and the CLI prints:
 * every criterion with its measured value, threshold and verdict, and a plain-text table. Pure.
 */

export interface Criterion {
  readonly name: string;
  readonly measured: string | number | boolean | null;
  readonly threshold: string | number;
  readonly passed: boolean;
  readonly detail?: string;
  /** false: this run could not judge it (no evidence here); it does not fail the gate and is shown as NOT JUDGED, never PASS. */
  readonly judged?: false;
}

export interface GateResult {
  /** 1, 2, 3, or 'final' (Phase 4). */
  readonly gate: number | 'final';
  readonly passed: boolean;
  readonly criteria: readonly Criterion[];
  /** When the gate ran (ms since the epoch) and how long it took. */
  readonly at: number;
  readonly ms: number;
}

/**
 * A gate run as the admin API sends it (POST/GET /gates/:n) and the transition guards keep it: `at` is when the
 * gate ENDED (its evidence holds from then; the freshness guard measures from it).
 */
export interface GateReport {
  readonly gate: 1 | 2 | 3;
  readonly passed: boolean;
  readonly at: number;
  readonly ms: number;
  readonly criteria: readonly Criterion[];
}

export function gateReport(g: GateResult & { gate: 1 | 2 | 3 }): GateReport {
  return { gate: g.gate, passed: g.passed, at: g.at + g.ms, ms: g.ms, criteria: g.criteria };
}

export function criterion(name: string, measured: Criterion['measured'], threshold: Criterion['threshold'], passed: boolean, detail?: string): Criterion {
  return detail ? { name, measured, threshold, passed, detail } : { name, measured, threshold, passed };
}

/** A criterion this run could not judge, and why. */
export function notJudged(name: string, measured: Criterion['measured'], threshold: Criterion['threshold'], why: string): Criterion {
  return { name, measured, threshold, passed: true, judged: false, detail: why };
}

export function gateResult(gate: number | 'final', criteria: readonly Criterion[], startedAt: number, now = Date.now()): GateResult {
  return { gate, passed: criteria.length > 0 && criteria.every((c) => c.passed), criteria, at: startedAt, ms: now - startedAt };
}

function cell(v: Criterion['measured']): string {
  if (v === null) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(3).replace(/\.?0+$/, '');
  return String(v);
}

/** A fixed-width table: criterion, measured, threshold, PASS/FAIL, then details indented below. */
export function formatGate(g: Pick<GateResult, 'gate' | 'passed' | 'criteria' | 'ms'>, opts: { maxDetail?: number } = {}): string {
  const rows = g.criteria.map((c) => [c.name, cell(c.measured), cell(c.threshold), c.judged === false ? 'NOT JUDGED' : c.passed ? 'PASS' : 'FAIL']);
  const unjudged = g.criteria.filter((c) => c.judged === false).length;
  const head = ['criterion', 'measured', 'threshold', 'result'];
  const width = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const line = (r: string[]) => r.map((x, i) => (i === r.length - 1 ? x : x.padEnd(width[i]!))).join('  ');
  const judged = g.criteria.filter((c) => c.passed && c.judged !== false).length;
  const out = [`Gate ${g.gate}: ${g.passed ? 'PASSED' : 'FAILED'} (${judged}/${g.criteria.length - unjudged} criteria${unjudged ? `, ${unjudged} not judged` : ''}, ${(g.ms / 1000).toFixed(1)} s)`, line(head), line(width.map((w) => '-'.repeat(w)))];
  const max = opts.maxDetail ?? 400;
  g.criteria.forEach((c, i) => {
    out.push(line(rows[i]!));
    if (c.detail && (!c.passed || c.judged === false || c.detail.length < 120)) {
      const d = c.detail.length > max ? `${c.detail.slice(0, max)}…` : c.detail;
      out.push(`    ${d.replace(/\n/g, '\n    ')}`);
    }
  });
  return out.join('\n');
}
