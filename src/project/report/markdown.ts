/**
 * The migration report as Markdown: the execution log in the seed's table form (phase, started, gate
 * attempted, gate result, notes), every gate's last run with its criteria, success and failure conditions,
 * deviations, rollbacks and lessons. Charts are referenced as SVG files when written with `--out`.
 */
import type { ProjectView } from '../service.js';
import type { Chart } from './charts.js';

export interface ReportData {
  readonly generatedAt: number;
  readonly sidecar: string;
  readonly view: ProjectView;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
/** A table cell: one line, pipes escaped. */
export const cell = (v: unknown) => String(v ?? '').replace(/\|/g, '\\|').replace(/\s*\n\s*/g, '; ');
const row = (xs: unknown[]) => `| ${xs.map(cell).join(' | ')} |`;
const table = (head: string[], rows: unknown[][]) => [row(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(row)].join('\n');
const mark = (s: string) => (s === 'met' ? '✅ met' : s === 'not-met' ? '❌ not met' : '… unknown');

export function renderMarkdown(d: ReportData, charts: readonly Chart[] = [], chartPath?: (c: Chart) => string): string {
  const v = d.view;
  const out: string[] = [];
  out.push(`# Migration report: PostgreSQL 14 → PostgreSQL 15 / Aurora`, '');
  out.push(`Generated ${iso(d.generatedAt)} UTC by ${d.sidecar}. Cutover state **${v.state}**, project state **${v.phase.phase}** (${v.phase.why}).`, '');
  out.push('## What this state guarantees', '', ...v.meaning.guarantees.map((g) => `- ${g}`), '', '**Left to do:**', '', ...v.meaning.remaining.map((g) => `- ${g}`), '');
  out.push('## Execution log', '');
  out.push(v.log.phases.length === 0
    ? '_No phase recorded yet._'
    : table(['Phase', 'Started', 'Gate attempted', 'Gate result', 'Notes'], v.log.phases.map((p) => [
      p.phase,
      iso(p.started),
      p.gates.map((g) => `gate ${g.gate} (${iso(g.at)})`).join(', ') || '—',
      p.gates.map((g) => `gate ${g.gate}: ${g.passed ? 'PASS' : 'FAIL'}`).join(', ') || '—',
      p.notes.join('; ') || '',
    ])));
  out.push('');
  out.push('## Gates', '');
  const gates = Object.values(v.gates).filter((g) => g !== undefined);
  if (gates.length === 0) out.push('_No gate run recorded yet._', '');
  for (const g of gates) {
    out.push(`### Gate ${g!.gate}: ${g!.passed ? 'PASSED' : 'FAILED'} (${iso(g!.at)}, ${g!.by})`, '');
    out.push(table(['Criterion', 'Measured', 'Threshold', 'Result', 'Detail'], g!.criteria.map((c) => [c.name, c.measured ?? '—', c.threshold, c.passed ? 'PASS' : 'FAIL', c.detail ?? ''])), '');
  }
  out.push('## Success conditions', '', table(['Condition', 'Status', 'Measured'], v.conditions.success.map((c) => [c.name, mark(c.status), c.measured])), '');
  out.push('## Failure conditions', '', table(['Condition', 'Triggered', 'Measured'], v.conditions.failure.map((c) => [c.name, c.status === 'met' ? '❌ yes' : c.status === 'unknown' ? '… unknown' : '✅ no', c.measured])), '');
  out.push(`Baseline error rate before the first read moved: ${v.baselineErrorRate === null ? 'not recorded yet' : `${(v.baselineErrorRate * 100).toFixed(3)}%`}.`, '');
  out.push('## Deviations', '', v.log.deviations.length === 0 ? '_None: no guard was skipped._' : table(['When', 'Who', 'What', 'Reason'], v.log.deviations.map((x) => [iso(x.at), x.by, x.what, x.reason])), '');
  out.push('## Rollbacks', '', v.log.rollbacks.length === 0 ? '_None._' : table(['When', 'Who', 'From', 'Cause'], v.log.rollbacks.map((x) => [iso(x.at), x.by, x.from, x.cause])), '');
  out.push('## Lessons learned', '', v.log.lessons.length === 0 ? '_None recorded (`pg-cutover log add "..."`)._' : v.log.lessons.map((l) => `- ${iso(l.at)} (${l.by}): ${l.text}`).join('\n'), '');
  if (charts.length > 0) {
    out.push('## Charts', '');
    for (const c of charts) out.push(chartPath ? `![${c.title}](${chartPath(c)})` : `- ${c.title} (in the HTML report)`);
    out.push('');
  }
  return out.join('\n');
}
