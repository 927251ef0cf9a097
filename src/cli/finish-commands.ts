/**
 * Phase 4 commands against a running sidecar: `gate final`, `snapshot`, `decommission [--dry-run]`,
 * `log add <text>` / `log show`, `project`, `report [--out DIR]`. Same exit codes as the other admin
 * commands: 0 done, 1 refused or failed gate, 2 usage error or unreachable sidecar.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { ADMIN_TOKEN_ENV, ADMIN_URL_ENV, DEFAULT_ADMIN_URL, createAdminClient, resolveAdminTarget, type AdminClient, type AdminResult } from './admin-client.js';
import { inertText } from './sanitize.js';
import { buildCharts } from '../project/report/charts.js';
import { renderHtml } from '../project/report/html.js';
import { renderMarkdown, type ReportData } from '../project/report/markdown.js';
import type { ChartThresholds } from '../project/report/charts.js';
import type { HistorySample } from '../project/history.js';

export interface FinishIO {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  setExitCode(code: number): void;
  exit(code: number): never;
  fetch?: typeof fetch;
}

interface Opts {
  admin?: string;
  adminToken?: string;
  json?: boolean;
  timeout?: string;
}

const EXIT = { ok: 0, refused: 1, usage: 2 } as const;

function problem(r: Exclude<AdminResult<unknown>, { ok: true }>, io: Pick<FinishIO, 'err'>, what: string): number {
  io.err(`pg-cutover: ${what}${r.kind === 'refused' ? ' refused' : ''}: ${r.message}\n`);
  return r.kind === 'refused' ? EXIT.refused : EXIT.usage;
}

type Criterion = { name: string; measured: unknown; threshold: unknown; passed: boolean; detail?: string };

export function renderCriteria(title: string, passed: boolean, criteria: readonly Criterion[]): string {
  const lines = [`${title}: ${passed ? 'PASSED' : 'FAILED'}`];
  for (const c of criteria) {
    lines.push(`  ${c.passed ? 'PASS' : 'FAIL'}  ${c.name}: ${String(c.measured ?? '-')} (threshold ${String(c.threshold)})`);
    if (c.detail && !c.passed) lines.push(...c.detail.split('\n').slice(0, 10).map((l) => `        ${l}`));
  }
  return lines.join('\n') + '\n';
}

/** `pg-cutover gate final`: runs the final gate (POST /gates/final); exit 1 when it fails. */
export async function runFinalGateCommand(c: AdminClient, o: Opts, io: Pick<FinishIO, 'out' | 'err'>): Promise<number> {
  const r = await c.request<{ passed: boolean; criteria: Criterion[] }>('POST', '/gates/final', {});
  if (!r.ok) return problem(r, io, 'gate final');
  if (o.json) io.out(JSON.stringify(r.body, null, 2) + '\n');
  else io.out(renderCriteria('final gate', r.body.passed, r.body.criteria));
  return r.body.passed ? EXIT.ok : EXIT.refused;
}

export function registerFinishCommands(program: Command, override: Partial<FinishIO> = {}): void {
  const base: FinishIO = {
    out: (s) => void process.stdout.write(s),
    err: (s) => void process.stderr.write(s),
    env: process.env,
    setExitCode: (c) => void (process.exitCode = c),
    exit: (c) => process.exit(c),
    ...override,
  };
  // Server-supplied strings (criteria details, step errors) reach the terminal: escape ANSI, CR and bidi controls.
  const io: FinishIO = { ...base, out: (s) => base.out(inertText(s)), err: (s) => base.err(inertText(s)) };
  const prepare = (cmd: Command) =>
    cmd
      .option('--admin <url>', `admin API URL or host:port (env ${ADMIN_URL_ENV}; default ${DEFAULT_ADMIN_URL})`)
      .option('--admin-token <token>', `bearer token for mutating calls (env ${ADMIN_TOKEN_ENV})`)
      .option('--timeout <ms>', 'per-request timeout', '600000')
      .option('--json', 'print JSON')
      .configureOutput({ writeOut: io.out, writeErr: io.err })
      .exitOverride((e) => io.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
  const run = (body: (c: AdminClient, o: Opts & Record<string, unknown>, args: string[]) => Promise<number>) =>
    async (...params: unknown[]) => {
      const cmd = params[params.length - 1] as Command;
      const o = cmd.opts<Opts & Record<string, unknown>>();
      const args = params.slice(0, -2).flatMap((x) => (Array.isArray(x) ? x.map(String) : [String(x)]));
      const target = resolveAdminTarget(o, io.env);
      const timeoutMs = Number(o.timeout);
      let code: number;
      if (!target.ok) code = (io.err(`pg-cutover: ${target.error}\n`), EXIT.usage);
      else if (!(timeoutMs > 0)) code = (io.err(`pg-cutover: --timeout must be a positive number of ms\n`), EXIT.usage);
      else code = await body(createAdminClient(target.value, { timeoutMs, ...(io.fetch ? { fetch: io.fetch } : {}) }), o, args);
      io.setExitCode(code);
    };
  const print = (o: Opts, v: unknown, text: string) => io.out(o.json ? JSON.stringify(v, null, 2) + '\n' : text);

  prepare(program.command('snapshot').description('Phase 4: archive the source with pg_dump -Fc to S3 (multipart) or a file, and verify it'))
    .option('--to <dest>', 's3://bucket/key or a file path (default: the sidecar\'s --snapshot-to)')
    .action(run(async (c, o) => {
      const r = await c.request<Record<string, unknown>>('POST', '/snapshot', o.to ? { to: o.to } : {});
      if (!r.ok) return problem(r, io, 'snapshot');
      print(o, r.body, `snapshot archived: ${String(r.body.location)} (${String(r.body.bytes)} B, sha256 ${String(r.body.sha256)}, ${String(r.body.tocEntries)} TOC entries, verified)\n`);
      return EXIT.ok;
    }));

  prepare(program.command('decommission').description('Phase 4: after the final gate passed, remove replication (DMS task or subscriptions, slots, publications, heartbeat) and revoke application logins on the source'))
    .option('--dry-run', 'print the plan, change nothing')
    .action(run(async (c, o) => {
      const dry = o.dryRun === true;
      const r = await c.request<{ refused?: string; plan?: { step: string; needed: boolean; action: string }[]; steps?: { step: string; ok: boolean; skipped: boolean; detail: string }[] }>('POST', '/decommission', { dryRun: dry });
      if (!r.ok) {
        const steps = ('body' in r ? (r.body as { result?: { steps?: { step: string; ok: boolean; detail: string }[] } } | undefined) : undefined)?.result?.steps;
        if (steps) io.err(steps.map((s) => `  ${s.ok ? 'ok  ' : 'FAIL'} ${s.step}: ${s.detail}\n`).join(''));
        return problem(r, io, 'decommission');
      }
      if (dry) {
        const lines = ['decommission plan (dry run, nothing changed):', ...(r.body.plan ?? []).map((p, i) => `  ${i + 1}. ${p.step}: ${p.needed ? p.action : `skip (${p.action})`}`)];
        if (r.body.refused) lines.push(`refused now: ${r.body.refused}`);
        print(o, r.body, lines.join('\n') + '\n');
        return EXIT.ok;
      }
      print(o, r.body, ['decommissioned:', ...(r.body.steps ?? []).map((s) => `  ${s.skipped ? 'skip' : 'done'} ${s.step}: ${s.detail}`)].join('\n') + '\n');
      return EXIT.ok;
    }));

  const logCmd = program.command('log').description('The migration\'s execution log: add a lesson learned, or show the log');
  prepare(logCmd.command('add').description('Record a lesson learned (free text) in the execution log'))
    .argument('<text...>', 'the lesson')
    .action(run(async (c, o, args) => {
      const text = args.join(' ').trim();
      if (!text) return (io.err('pg-cutover: log add needs a text\n'), EXIT.usage);
      const r = await c.request('POST', '/log', { text });
      if (!r.ok) return problem(r, io, 'log add');
      print(o, r.body, 'recorded\n');
      return EXIT.ok;
    }));
  prepare(logCmd.command('show').description('Print the execution log (phases, gates, deviations, rollbacks, lessons) as Markdown'))
    .action(run(async (c, o) => {
      const r = await c.request<{ generatedAt: number; sidecar: string; view: ReportData['view'] }>('GET', '/report?format=json');
      if (!r.ok) return problem(r, io, 'log show');
      print(o, r.body.view.log, renderMarkdown(r.body));
      return EXIT.ok;
    }));

  prepare(program.command('report').description('The migration report: Markdown on stdout, or with --out DIR report.md, report.html (self-contained, opens offline) and charts/*.svg'))
    .option('--out <dir>', 'write the report files into this directory')
    .action(run(async (c, o) => {
      const r = await c.request<ReportData & { samples: HistorySample[]; thresholds: ChartThresholds }>('GET', '/report?format=json');
      if (!r.ok) return problem(r, io, 'report');
      const charts = buildCharts(r.body.samples, r.body.thresholds);
      if (typeof o.out !== 'string') {
        print(o, r.body, renderMarkdown(r.body, charts));
        return EXIT.ok;
      }
      mkdirSync(join(o.out, 'charts'), { recursive: true });
      for (const ch of charts) writeFileSync(join(o.out, 'charts', `${ch.id}.svg`), ch.svg);
      writeFileSync(join(o.out, 'report.md'), renderMarkdown(r.body, charts, (ch) => `charts/${ch.id}.svg`));
      writeFileSync(join(o.out, 'report.html'), renderHtml(r.body, charts));
      io.out(`wrote ${join(o.out, 'report.md')}, ${join(o.out, 'report.html')} and ${charts.length} charts\n`);
      return EXIT.ok;
    }));

  prepare(program.command('project').description('The project state (derived phase), what the cutover state guarantees and what is left, success and failure conditions'))
    .action(run(async (c, o) => {
      const r = await c.request<{ state: string; phase: string; why: string; guarantees: string[]; remaining: string[]; conditions: { success: { name: string; status: string; measured: string }[]; failure: { name: string; status: string; measured: string }[] } }>('GET', '/project');
      if (!r.ok) return problem(r, io, 'project');
      const b = r.body;
      const lines = [`project state ${b.phase} (cutover ${b.state}): ${b.why}`, 'guarantees:', ...b.guarantees.map((g) => `  - ${g}`), 'left to do:', ...b.remaining.map((g) => `  - ${g}`),
        'success conditions:', ...b.conditions.success.map((x) => `  ${x.status.padEnd(8)} ${x.name}: ${x.measured}`),
        'failure conditions:', ...b.conditions.failure.map((x) => `  ${(x.status === 'met' ? 'TRIGGERED' : x.status).padEnd(9)} ${x.name}: ${x.measured}`)];
      print(o, b, lines.join('\n') + '\n');
      return EXIT.ok;
    }));
}
