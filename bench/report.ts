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
  const pairs: [string, string][] = [['pg-cutover', 'direct'], ['pg-cutover', 'pgbouncer'], ['pg-cutover', 'forwarder'], ['forwarder', 'pgbouncer'], ['pg-cutover-split', 'direct'], ['pg-cutover-split', 'pg-cutover'], ['pg-cutover', 'pg-cutover-old'], ['pg-cutover-split', 'pg-cutover-split-old'], ['pg-cutover-split-old', 'pg-cutover-old'], ['direct-split', 'direct'], ['forwarder-split', 'forwarder'], ['pg-cutover-split', 'forwarder-split'], ['pg-cutover-split-hash', 'pg-cutover']];
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
  out.push(...splitChecks(runs, opts));
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
  const ratios: [string, string][] = [['pg-cutover', 'pg-cutover-old'], ['pg-cutover-split', 'pg-cutover-split-old'], ['pg-cutover', 'forwarder'], ['pg-cutover-split', 'pg-cutover'], ['pg-cutover-split-hash', 'pg-cutover']];
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

/** One finished run's figure, or NaN. */
function figure(runs: RunRecord[], w: Workload, c: number, t: string, round: number, k: 'tps' | 'logAvgMs'): number {
  const r = runs.find((x) => x.workload === w && x.clients === c && x.target === t && x.round === round);
  return r === undefined || 'error' in r ? NaN : r[k];
}

/** Median over rounds of g(round), rounds where it is finite. */
function overRounds(opts: Options, g: (round: number) => number): number {
  return median(Array.from({ length: opts.rounds }, (_, i) => g(i)).filter(Number.isFinite));
}

/**
 * Issue 13's bench targets: pg-cutover against the bare forwarder, and the split path against the single-backend
 * path, also judged against the machine's own bound for it (forwarder-split / forwarder, same rounds).
 */
function splitChecks(runs: RunRecord[], opts: Options): string[] {
  const out: string[] = [];
  const check = (ok: boolean, text: string): void => { out.push(`- ${ok ? 'PASS' : 'FAIL'} ${text}`); };
  for (const [w, min] of [['select-simple', 0.95], ['tpcb', 0.9]] as const) {
    if (!opts.workloads.includes(w)) continue;
    for (const c of opts.clients) {
      const r = tpsRatio(runs, w, c, 'pg-cutover', 'forwarder');
      if (Number.isFinite(r)) check(r >= min, `${w} at ${c} client(s): pg-cutover ${f(r, 2)}× the bare forwarder (target ≥ ${min})`);
    }
  }
  for (const w of opts.workloads) {
    if (opts.clients.includes(1)) {
      const lat = overRounds(opts, (i) => figure(runs, w, 1, 'pg-cutover-split', i, 'logAvgMs') / figure(runs, w, 1, 'pg-cutover', i, 'logAvgMs'));
      if (Number.isFinite(lat)) check(lat <= 1.2, `${w} at 1 client: split path latency ${f(lat, 2)}× the single-backend path (target ≤ 1.2)`);
    }
    if (!opts.clients.includes(16)) continue;
    const split = tpsRatio(runs, w, 16, 'pg-cutover-split', 'pg-cutover');
    if (Number.isFinite(split)) check(split >= 0.85, `${w} at 16 clients: split path ${f(split, 2)}× the single-backend path's tps (target ≥ 0.85)`);
    const tps = (t: string, i: number): number => figure(runs, w, 16, t, i, 'tps');
    const bound = overRounds(opts, (i) => tps('forwarder-split', i) / tps('forwarder', i));
    const judged = overRounds(opts, (i) => tps('pg-cutover-split', i) / tps('pg-cutover', i) / (tps('forwarder-split', i) / tps('forwarder', i)));
    if (Number.isFinite(bound)) {
      out.push(`- INFO ${w} at 16 clients: the machine's bound, a bare forwarder split over the two servers, is ${f(bound, 2)}× the forwarder on one; ` +
        `the split path's ratio is ${f(judged, 2)}× that bound (direct-split / direct ${f(tpsRatio(runs, w, 16, 'direct-split', 'direct'), 2)})`);
    }
  }
  return out.length > 0 ? ['### Targets (issue 13)', '', ...out, ''] : [];
}
