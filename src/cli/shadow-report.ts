/** `pg-cutover shadow report`: GET /shadow/mismatches grouped by statement shape, and its table. Pure. */
import type { MismatchPage, MismatchRecord } from '../control/admin-dto.js';
import type { StatementResult } from '../shadow/results.js';
import { fmtTime, table, toMs } from './render.js';
import { oneLine } from './sanitize.js';

export interface ShadowGroup {
  readonly fingerprint: string;
  readonly count: number;
  /** Mismatches not explained by replication lag, a shadow lock timeout or abandonment: they count against gate 3. */
  readonly unexplained: number;
  readonly classes: Readonly<Record<string, number>>;
  readonly firstAt: string | null;
  readonly lastAt: string | null;
  /** The newest record of the group, as the server sent it. */
  readonly example: MismatchRecord;
}

export interface ShadowReport {
  /** Records the server holds (its `total`), which may exceed those fetched. */
  readonly total: number;
  readonly fetched: number;
  readonly unexplained: number;
  readonly groups: readonly ShadowGroup[];
}

/** Groups `GET /shadow/mismatches` records by fingerprint, largest first. */
export function groupMismatches(page: MismatchPage): ShadowReport {
  const items = page.items;
  const by = new Map<string, { count: number; unexplained: number; classes: Record<string, number>; first: number | null; last: number | null; example: MismatchRecord; exampleAt: number | null }>();
  for (const m of items) {
    const fp = m.fingerprint;
    const at = toMs(m.at);
    const cls = m.cls;
    let g = by.get(fp);
    if (!g) by.set(fp, (g = { count: 0, unexplained: 0, classes: {}, first: at, last: at, example: m, exampleAt: at }));
    g.count++;
    if (m.explained !== true) g.unexplained++;
    g.classes[cls] = (g.classes[cls] ?? 0) + 1;
    if (at !== null) {
      if (g.first === null || at < g.first) g.first = at;
      if (g.last === null || at > g.last) g.last = at;
      if (g.exampleAt === null || at > g.exampleAt) [g.example, g.exampleAt] = [m, at];
    }
  }
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const groups = [...by.entries()]
    .map(([fingerprint, g]) => ({ fingerprint, count: g.count, unexplained: g.unexplained, classes: g.classes, firstAt: iso(g.first), lastAt: iso(g.last), example: g.example }))
    .sort((a, b) => b.count - a.count || b.unexplained - a.unexplained || a.fingerprint.localeCompare(b.fingerprint));
  const total = page.total;
  return { total, fetched: items.length, unexplained: groups.reduce((n, g) => n + g.unexplained, 0), groups };
}

function sideSummary(r: StatementResult | null): string {
  if (r === null) return 'no result';
  if (!r.ok) return `ERROR ${r.sqlstate ?? '?'}`;
  return [r.tag || 'OK', `${r.rows} row${r.rows === 1 ? '' : 's'}`, r.hash ? `hash ${r.hash}` : ''].filter(Boolean).join(' ');
}

function exampleLine(e: MismatchRecord): string {
  return `${e.cls} at statement ${e.statement}: source ${sideSummary(e.source)}; target ${sideSummary(e.shadow)}`;
}

export function renderShadowReport(r: ShadowReport): string {
  if (r.groups.length === 0) return `no shadow mismatches recorded${r.total > 0 ? ` (server holds ${r.total}, none fetched)` : ''}\n`;
  const held = r.total !== r.fetched ? ` of ${r.total} held` : '';
  let out = `${r.fetched} mismatches${held}, ${r.unexplained} unexplained, ${r.groups.length} statement shape${r.groups.length === 1 ? '' : 's'}\n`;
  const cut = (s: string) => (s.length > 120 ? s.slice(0, 119) + '…' : s);
  const rows = r.groups.map((g) => [
    String(g.count),
    String(g.unexplained),
    Object.entries(g.classes).map(([c, n]) => `${c} ${n}`).join(', '),
    g.lastAt ? fmtTime(g.lastAt) : '',
    cut(g.fingerprint.replace(/\s+/g, ' ')),
  ]);
  const lines = table(['COUNT', 'UNEXPLAINED', 'CLASSES', 'LAST SEEN', 'STATEMENT SHAPE'], rows);
  out += lines[0] + '\n';
  r.groups.forEach((g, i) => {
    out += lines[i + 1] + '\n' + `    example: ${oneLine(exampleLine(g.example))}\n`;
  });
  return out;
}
