/** The markdown report of one benchmark run: medians, tps ratios, added latency, memory, and the issue's targets. */
import { addedLatencyUs, markdownTable, tpsRatio, type RunRecord, type SummaryRow, type Workload } from './pgbench.js';
import type { IdleMemoryResult } from './memory.js';
import type { Options } from './options.js';
import { TARGETS } from './targets.js';

const f = (x: number, d: number): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

export function report(
  rows: SummaryRow[], runs: RunRecord[], memory: Record<string, IdleMemoryResult>, unavailable: Record<string, string>,
  started: Date, machine: Record<string, string | number>, opts: Options,
): string {
  const out: string[] = [
    `## Proxy benchmark ${started.toISOString().slice(0, 10)}`, '',
    `${machine.cpus} × ${machine.cpu}, ${machine.memGB} GB, Linux ${machine.kernel}, Node ${machine.node}, PostgreSQL ${machine.postgres}, ${machine.pgbouncer}.`,
    `pgbench -T ${opts.duration}, ${opts.rounds} interleaved round(s), medians; scale ${opts.scale}. ` +
      `1-minute load average ${f(Number(machine.loadAvgStart), 1)} at start, ${f(Number(machine.loadAvgEnd), 1)} at end (${machine.cpus} CPUs).`, '',
    markdownTable(rows),
  ];
  const has = (t: string): boolean => rows.some((r) => r.target === t && r.ok > 0);
  const pairs: [string, string][] = [['pg-cutover', 'direct'], ['pg-cutover', 'pgbouncer'], ['pg-cutover', 'forwarder'], ['forwarder', 'pgbouncer'], ['pg-cutover-split', 'direct'], ['pg-cutover-split', 'pg-cutover'], ['pg-cutover', 'pg-cutover-old'], ['pg-cutover-split', 'pg-cutover-split-old'], ['pg-cutover-split-old', 'pg-cutover-old'], ['direct-split', 'direct'], ['forwarder-split', 'forwarder'], ['pg-cutover-split', 'forwarder-split']];
  const shown = pairs.filter(([a, b]) => has(a) && has(b));
  if (shown.length > 0) {
    out.push('### tps ratios', '', `| workload | clients | ${shown.map(([a, b]) => `${a} / ${b}`).join(' | ')} |`,
      `|---|---:|${shown.map(() => '---:').join('|')}|`);
    for (const w of opts.workloads) for (const c of opts.clients) {
      out.push(`| ${w} | ${c} | ${shown.map(([a, b]) => f(tpsRatio(runs, w, c, a, b), 2)).join(' | ')} |`);
    }
    out.push('');
  }
  const others = TARGETS.filter((t) => t !== 'direct' && has(t));
  if (opts.clients.includes(1) && has('direct') && others.length > 0) {
    out.push('### Added latency over direct at 1 client (µs, mean of per-transaction latencies)', '',
      `| workload | ${others.map((t) => `${t} per tx | per statement`).join(' | ')} |`, `|---|${others.map(() => '---:|---:').join('|')}|`);
    for (const w of opts.workloads) {
      out.push(`| ${w} | ${others.map((t) => { const a = addedLatencyUs(runs, w, t); return `${f(a.perTx, 1)} | ${f(a.perStatement, 1)}`; }).join(' | ')} |`);
    }
    out.push('');
  }
  out.push(...cpuTable(runs, opts, others));
  if (Object.keys(memory).length > 0) {
    out.push('### Memory per idle client connection', '', '| target | connections | RSS before MB | RSS after MB | KB per connection |', '|---|---:|---:|---:|---:|');
    for (const [t, m] of Object.entries(memory)) {
      out.push(`| ${t} | ${m.opened}${m.failed ? ` (${m.failed} failed)` : ''} | ${f(m.rssBeforeKB / 1024, 1)} | ${f(m.rssAfterKB / 1024, 1)} | ${f(m.perConnKB, 1)} |`);
    }
    out.push('');
  }
  out.push(...targetChecks(runs, memory, opts));
  for (const [t, why] of Object.entries(unavailable)) out.push(`- ${t} was not measured: ${why.split('\n')[0]}`);
  return out.join('\n') + '\n';
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * The proxy process's own CPU per transaction (µs, /proc utime + stime ÷ transactions, median over rounds): on a
 * shared machine it moves far less with other load than tps does, so before/after compares on it too.
 */
function cpuTable(runs: RunRecord[], opts: Options, targets: readonly string[]): string[] {
  const cpu = (w: Workload, c: number, t: string): number =>
    median(runs.flatMap((r) => (r.workload === w && r.clients === c && r.target === t && 'proxyCpuUsPerTx' in r && r.proxyCpuUsPerTx !== undefined ? [r.proxyCpuUsPerTx] : [])));
  const shown = targets.filter((t) => opts.workloads.some((w) => opts.clients.some((c) => Number.isFinite(cpu(w, c, t)))));
  if (shown.length === 0) return [];
  const ratios: [string, string][] = [['pg-cutover', 'pg-cutover-old'], ['pg-cutover-split', 'pg-cutover-split-old'], ['pg-cutover', 'forwarder'], ['pg-cutover-split', 'pg-cutover']];
  const rs = ratios.filter(([a, b]) => shown.includes(a) && shown.includes(b));
  const out = ['### Proxy CPU per transaction (µs, median over rounds)', '',
    `| workload | clients | ${shown.join(' | ')}${rs.map(([a, b]) => ` | ${a} / ${b}`).join('')} |`, `|---|---:|${[...shown, ...rs].map(() => '---:').join('|')}|`];
  for (const w of opts.workloads) for (const c of opts.clients) {
    out.push(`| ${w} | ${c} | ${shown.map((t) => f(cpu(w, c, t), 1)).join(' | ')}${rs.map(([a, b]) => ` | ${f(cpu(w, c, a) / cpu(w, c, b), 2)}`).join('')} |`);
  }
  return [...out, ''];
}

/** The issue's targets for pg-cutover, where this run measured them. */
function targetChecks(runs: RunRecord[], memory: Record<string, IdleMemoryResult>, opts: Options): string[] {
  const out: string[] = [];
  const check = (ok: boolean, text: string, verdict = ok ? 'PASS' : 'FAIL'): void => { out.push(`- ${verdict} ${text}`); };
  const w: Workload = opts.workloads.includes('select-simple') ? 'select-simple' : opts.workloads[0]!;
  if (opts.clients.includes(16)) {
    const vd = tpsRatio(runs, w, 16, 'pg-cutover', 'direct');
    const vb = tpsRatio(runs, w, 16, 'pg-cutover', 'pgbouncer');
    if (Number.isFinite(vd)) check(vd >= 0.85, `${w} at 16 clients: pg-cutover ${f(vd, 2)}× direct (target ≥ 0.85)`);
    if (Number.isFinite(vb)) check(vb >= 1.0, `${w} at 16 clients: pg-cutover ${f(vb, 2)}× PgBouncer (target ≥ 1.0)`);
  }
  const added = addedLatencyUs(runs, 'select-simple', 'pg-cutover').perStatement;
  if (Number.isFinite(added)) {
    // Below zero the noise is larger than the cost being measured.
    check(added <= 50, `added latency per simple query at 1 client: ${f(added, 1)} µs (target ≤ 50)`, added < 0 ? 'NOISY' : undefined);
  }
  const m = memory['pg-cutover'];
  if (m && Number.isFinite(m.perConnKB)) {
    const at = m.opened < 1000 ? ` (measured at ${m.opened}; the target is stated at 1,000)` : '';
    check(m.perConnKB <= 100, `RSS per idle connection at ${m.opened}: ${f(m.perConnKB, 1)} KB (target ≤ 100)${at}`);
  }
  return out.length > 0 ? ['### Targets (issue 3)', '', ...out, ''] : [];
}
