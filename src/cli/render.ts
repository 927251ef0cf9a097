/** How the admin commands print the admin API's replies: plain aligned columns, pure (tested with tables). */
import { formatDuration } from '../domain/duration.js';
import type { CutoverSnapshot } from '../domain/cutover-machine.js';
import type { AuditEntry, GateReport, HealthReply, StateReply, TransitionReply } from '../control/admin-dto.js';
import { oneLine } from './sanitize.js';

/** Rows under a header, two spaces between columns; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [header, ...rows].map((r) => r.map((c) => oneLine(c ?? '')));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

export function keyValues(rows: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${oneLine(k).padEnd(w)}  ${oneLine(v)}\n`).join('');
}

export function toMs(at: unknown): number | null {
  if (typeof at === 'number' && Number.isFinite(at)) return at;
  if (typeof at === 'string') {
    const ms = Date.parse(at);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

/** `2025-06-01 12:00:00Z` (UTC, seconds). */
export function fmtTime(at: unknown): string {
  const ms = toMs(at);
  return ms === null ? String(at ?? '') : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}


export function renderHealth(h: HealthReply): string {
  const rows: [string, string][] = [];
  if (h.status === 'degraded') rows.push(['health', `DEGRADED: ${h.reasons.join('; ') || 'see /healthz'}`]);
  else if (h.status === 'ok') rows.push(['health', 'ok']);
  rows.push(['clients', String(h.clients)]);
  if (h.breakers.length > 0) rows.push(['breakers', h.breakers.map((x) => (x.status === 'open' ? `${x.name} OPEN (${x.value} > ${x.threshold})` : `${x.name} ${x.status}`)).join(', ')]);
  const r = h.replication;
  if (r) {
    const lag = typeof r.lagSeconds === 'number' ? `, lag ${r.lagSeconds.toFixed(1)} s` : '';
    rows.push(['replication', `${r.mode ?? '?'} ${r.state ?? '?'}${lag}${r.replicationError ? `, error: ${r.replicationError}` : ''}`]);
  }
  return keyValues(rows);
}

/** Shown in their own rows, or not at all (`effectiveReadPercent` only where it differs from the snapshot's). */
const STATE_KEYS = new Set(['state', 'version', 'since', 'reason', 'readPercent', 'effectiveReadPercent', 'writesTo', 'shadow', 'appliedAt', 'degraded', 'guarantees', 'remaining']);

/** GET /state, or an accepted transition's snapshot. */
export function renderState(s: CutoverSnapshot & Partial<StateReply> & Partial<TransitionReply>, now: number): string {
  const rows: [string, string][] = [['state', s.state]];
  rows.push(['version', String(s.version)]);
  rows.push(['since', `${fmtTime(s.since)} (${formatDuration(now - s.since)} ago)`]);
  if (s.reason) rows.push(['reason', s.reason]);
  rows.push(['reads', `${Math.round(s.readPercent * 10) / 10}% to target`]);
  if (s.effectiveReadPercent !== undefined && s.effectiveReadPercent !== s.readPercent) rows.push(['', `${Math.round(s.effectiveReadPercent * 10) / 10}% applied here now`]);
  if (s.writesTo) rows.push(['writes', `to ${s.writesTo}${s.shadow ? ', shadowed on the target' : ''}`]);
  if (typeof s.appliedAt === 'number') rows.push(['applied', `${fmtTime(s.appliedAt)} (by this sidecar)`]);
  if (s.degraded !== undefined) rows.push(['degraded', s.degraded ? 'YES' : 'no']);
  for (const k of ['guarantees', 'remaining'] as const) s[k]?.forEach((x, i) => rows.push([i === 0 ? k : '', x]));
  for (const [k, v] of Object.entries(s)) if (!STATE_KEYS.has(k)) rows.push([k, fmtValue(v)]);
  return keyValues(rows);
}

export function renderObject(o: Record<string, unknown>): string {
  return keyValues(Object.entries(o).map(([k, v]) => [k, fmtValue(v)]));
}

/** A gate run (POST /gates/:n): each criterion with its measured value, threshold and verdict. */
export function renderGate(g: GateReport): string {
  const head = `gate ${g.gate}: ${g.passed ? 'PASSED' : 'FAILED'}\n`;
  const rows = g.criteria.map((c) => [
    c.name,
    fmtValue(c.measured),
    fmtValue(c.threshold),
    c.judged === false ? 'NOT JUDGED' : c.passed ? 'ok' : 'FAIL',
    c.detail ?? '',
  ]);
  return head + table(['CRITERION', 'MEASURED', 'THRESHOLD', 'RESULT', 'DETAIL'], rows).map((l) => l + '\n').join('');
}

/** What a rollback step's record says (runner: `{started, ended, ok, error}`; a blocked step: `{attempt, retryInMs}`). */
function stepDetail(e: AuditEntry): string {
  const d = e.detail ?? {};
  const parts: string[] = [];
  if (d.ok === true) parts.push('ok');
  if (d.ok === false) parts.push(`FAIL${d.error !== undefined ? `: ${fmtValue(d.error)}` : ''}`);
  if (typeof d.started === 'number' && typeof d.ended === 'number') parts.push(`${d.ended - d.started}ms`);
  if (typeof d.retryInMs === 'number') parts.push(`attempt ${fmtValue(d.attempt)}, retry in ${d.retryInMs}ms`);
  return parts.join('  ');
}

/** Audit entries as a table; a rollback step's outcome and duration in the last column. */
export function renderAudit(entries: readonly AuditEntry[]): string {
  if (entries.length === 0) return '(no audit entries)\n';
  const rows = entries.map((e) => [
    fmtTime(e.at),
    e.by,
    e.kind,
    e.from && e.to ? `${e.from} → ${e.to}` : (e.to ?? ''),
    e.forced ? 'forced' : '',
    e.reason ?? '',
    e.kind === 'rollback-step' ? stepDetail(e) : '',
  ]);
  return table(['TIME', 'BY', 'KIND', 'CHANGE', 'FORCED', 'REASON', 'RESULT'], rows).map((l) => l + '\n').join('');
}
