/**
 * The migration report as one self-contained HTML page (served at GET /report, written by `pg-cutover
 * report --out`): inline CSS, inline SVG charts, no script and no external reference, so it opens offline.
 */
import type { Chart } from './charts.js';
import type { ReportData } from './markdown.js';
import { esc } from './svg.js';

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
const td = (v: unknown, cls = '') => `<td${cls ? ` class="${cls}"` : ''}>${esc(String(v ?? '')).replace(/\n/g, '<br>')}</td>`;
const tr = (cells: string[]) => `<tr>${cells.join('')}</tr>`;
const table = (head: string[], rows: string[][]) =>
  `<table><thead>${tr(head.map((h) => `<th>${esc(h)}</th>`))}</thead><tbody>${rows.map(tr).join('')}</tbody></table>`;
const verdict = (ok: boolean) => td(ok ? 'PASS' : 'FAIL', ok ? 'pass' : 'fail');
const status = (s: string, good: 'met' | 'not-met') => td(s === 'unknown' ? 'unknown' : s === 'met' ? 'met' : 'not met', s === 'unknown' ? 'unknown' : s === good ? 'pass' : 'fail');

const CSS = `body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#1f2328}
h1{font-size:24px}h2{font-size:19px;border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f6f8fa}.pass{color:#1a7f37;font-weight:bold}.fail{color:#cf222e;font-weight:bold}.unknown{color:#57606a}
.badge{display:inline-block;padding:2px 8px;border-radius:10px;background:#ddf4ff;font-weight:bold}.chart{display:block;margin:12px 0;max-width:100%;height:auto}
.muted{color:#57606a}`;

export function renderHtml(d: ReportData, charts: readonly Chart[]): string {
  const v = d.view;
  const gates = Object.values(v.gates).filter((g) => g !== undefined);
  const parts: string[] = [];
  parts.push(`<h1>Migration report: PostgreSQL 14 → PostgreSQL 15 / Aurora</h1>`);
  parts.push(`<p>Generated ${esc(iso(d.generatedAt))} UTC by ${esc(d.sidecar)}. Cutover state <span class="badge" id="cutover-state">${esc(v.state)}</span>
    project state <span class="badge" id="project-phase">${esc(v.phase.phase)}</span> <span class="muted">${esc(v.phase.why)}</span></p>`);
  parts.push(`<h2>What this state guarantees</h2><ul>${v.meaning.guarantees.map((g) => `<li>${esc(g)}</li>`).join('')}</ul>
    <p><b>Left to do:</b></p><ul>${v.meaning.remaining.map((g) => `<li>${esc(g)}</li>`).join('')}</ul>`);
  parts.push('<h2>Charts</h2>', ...charts.map((c) => `<figure>${c.svg}</figure>`));
  parts.push('<h2>Execution log</h2>', v.log.phases.length === 0 ? '<p class="muted">No phase recorded yet.</p>' : table(
    ['Phase', 'Started', 'Gate attempted', 'Gate result', 'Notes'],
    v.log.phases.map((p) => [
      td(p.phase),
      td(iso(p.started)),
      td(p.gates.map((g) => `gate ${g.gate} (${iso(g.at)})`).join('\n') || '—'),
      td(p.gates.map((g) => `gate ${g.gate}: ${g.passed ? 'PASS' : 'FAIL'}`).join('\n') || '—'),
      td(p.notes.join('\n')),
    ]),
  ));
  parts.push('<h2>Gates</h2>');
  if (gates.length === 0) parts.push('<p class="muted">No gate run recorded yet.</p>');
  for (const g of gates) {
    parts.push(`<h3>Gate ${esc(String(g!.gate))}: <span class="${g!.passed ? 'pass' : 'fail'}">${g!.passed ? 'PASSED' : 'FAILED'}</span> <span class="muted">${esc(iso(g!.at))}, ${esc(g!.by)}</span></h3>`);
    parts.push(table(['Criterion', 'Measured', 'Threshold', 'Result', 'Detail'], g!.criteria.map((c) => [td(c.name), td(c.measured ?? '—'), td(c.threshold), verdict(c.passed), td(c.detail ?? '')])));
  }
  parts.push('<h2>Success conditions</h2>', table(['Condition', 'Status', 'Measured'], v.conditions.success.map((c) => [td(c.name), status(c.status, 'met'), td(c.measured)])));
  parts.push('<h2>Failure conditions</h2>', table(['Condition', 'Triggered', 'Measured'], v.conditions.failure.map((c) => [td(c.name), status(c.status, 'not-met'), td(c.measured)])));
  parts.push(`<p>Baseline error rate before the first read moved: ${v.baselineErrorRate === null ? 'not recorded yet' : `${(v.baselineErrorRate * 100).toFixed(3)}%`}.</p>`);
  parts.push('<h2>Deviations</h2>', v.log.deviations.length === 0 ? '<p class="muted">None: no guard was skipped.</p>' : table(['When', 'Who', 'What', 'Reason'], v.log.deviations.map((x) => [td(iso(x.at)), td(x.by), td(x.what), td(x.reason)])));
  parts.push('<h2>Rollbacks</h2>', v.log.rollbacks.length === 0 ? '<p class="muted">None.</p>' : table(['When', 'Who', 'From', 'Cause'], v.log.rollbacks.map((x) => [td(iso(x.at)), td(x.by), td(x.from), td(x.cause)])));
  parts.push('<h2>Lessons learned</h2>', v.log.lessons.length === 0 ? '<p class="muted">None recorded.</p>' : `<ul>${v.log.lessons.map((l) => `<li>${esc(iso(l.at))} (${esc(l.by)}): ${esc(l.text)}</li>`).join('')}</ul>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pg-cutover migration report</title><style>${CSS}</style></head>
<body>${parts.join('\n')}</body></html>
`;
}
