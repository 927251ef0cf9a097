/**
 * Operator commands that talk to a running sidecar's admin API: `status [--watch]`, `transition`,
 * `rollback`, `gate`, `audit`, `shadow report`. Plain aligned tables by default, `--json` for
 * scripts. Exit codes: 0 done, 1 refused by the sidecar (HTTP 4xx, a refused transition, a failed
 * gate), 2 usage errors, unreachable sidecar or server errors.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { parseState } from '../domain/states.js';
import { formatDuration } from '../domain/duration.js';
import {
  ADMIN_TOKEN_ENV,
  ADMIN_URL_ENV,
  DEFAULT_ADMIN_URL,
  createAdminClient,
  resolveAdminTarget,
  type AdminClient,
  type AdminResult,
  type AuditRow,
  type StateBody,
} from './admin-client.js';
import { oneLine, safeJson } from './sanitize.js';
import { runFinalGateCommand } from './finish-commands.js';

export const EXIT = { ok: 0, refused: 1, usage: 2 } as const;

/** Where the commands read and write; the defaults are the process's. Tests pass their own. */
export interface AdminCliIO {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Records a finished command's exit code (default: process.exitCode). */
  setExitCode(code: number): void;
  /** Ends the process for commander's usage errors and --help; must not return (default: process.exit). */
  exit(code: number): never;
  /** Stops `status --watch` (default: SIGINT or SIGTERM). */
  watchStop?: AbortSignal;
  /** Clear the screen between `--watch` refreshes (default: stdout is a TTY). */
  isTTY?: boolean;
  now?: () => number;
  fetch?: typeof fetch;
}

const defaultIO = (): AdminCliIO => ({
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  env: process.env,
  setExitCode: (c) => {
    process.exitCode = c;
  },
  exit: (c) => process.exit(c),
  isTTY: process.stdout.isTTY === true,
});

interface CommonOpts {
  admin?: string;
  adminToken?: string;
  json?: boolean;
  timeout?: string;
}

export function registerAdminCommands(program: Command, ioOverride: Partial<AdminCliIO> = {}): void {
  const io: AdminCliIO = { ...defaultIO(), ...ioOverride };
  const now = io.now ?? Date.now;
  const fail = (message: string, code: number): number => {
    io.err(`pg-cutover: ${oneLine(message)}\n`);
    return code;
  };
  /** `timeoutMs`: the default fits what the command waits for (gate 2 checksums every table; a switchover drains). */
  const prepare = (cmd: Command, timeoutMs = 10_000): Command => {
    cmd
      .option('--admin <url>', `admin API URL or host:port (env ${ADMIN_URL_ENV}; default ${DEFAULT_ADMIN_URL})`)
      .option('--admin-token <token>', `bearer token for mutating calls (env ${ADMIN_TOKEN_ENV}, preferred: a flag shows in ps)`)
      .option('--timeout <ms>', 'per-request timeout', String(timeoutMs))
      .option('--json', 'print JSON for scripts instead of tables')
      .configureOutput({ writeOut: io.out, writeErr: io.err })
      .exitOverride((e) => io.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
    return cmd;
  };
  /** Runs an action with a client, maps its result to the exit code. */
  const run = (body: (c: AdminClient, o: CommonOpts, ...args: string[]) => Promise<number>) =>
    async (...params: unknown[]) => {
      const cmd = params[params.length - 1] as Command;
      const o = cmd.opts<CommonOpts>();
      const args = params.slice(0, -2).map(String);
      const target = resolveAdminTarget(o, io.env);
      const timeoutMs = Number(o.timeout);
      let code: number;
      if (!target.ok) code = fail(target.error, EXIT.usage);
      else if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) code = fail(`--timeout: ${o.timeout} is not a positive number of ms`, EXIT.usage);
      else code = await body(createAdminClient(target.value, { timeoutMs, fetch: io.fetch }), o, ...args);
      io.setExitCode(code);
    };
  const printJson = (v: unknown) => io.out(safeJson(v, 2) + '\n');
  /** Prints a failed call; returns its exit code. */
  const failed = (r: Exclude<AdminResult<unknown>, { ok: true }>, o: CommonOpts, what: string): number => {
    if (r.kind === 'unreachable') return fail(r.message, EXIT.usage);
    if (o.json) printJson({ status: r.status, ...(typeof r.body === 'object' && r.body !== null ? r.body : { error: r.message }) });
    if (r.kind === 'server-error') return fail(`${what}: ${r.message}`, EXIT.usage);
    const code = typeof r.body.code === 'string' ? ` (${r.body.code})` : '';
    fail(`${what} refused${code}: ${r.message}`, EXIT.refused);
    if (!o.json && Array.isArray(r.body.guards) && r.body.guards.length > 0) {
      const rows = r.body.guards.map((g) => [g.name ?? g.guard ?? '?', g.ok ? 'ok' : 'FAIL', g.detail ?? '']);
      io.err(table(['GUARD', 'RESULT', 'DETAIL'], rows).map((l) => `  ${l}\n`).join(''));
    }
    return EXIT.refused;
  };

  prepare(program.command('status').description('Show the cutover state of the sidecar behind --admin'))
    .option('--watch', 'refresh every second until Ctrl-C')
    .option('--interval <ms>', 'refresh interval with --watch', '1000')
    .action(
      run(async (c, o) => {
        const w = o as CommonOpts & { watch?: boolean; interval: string };
        if (!w.watch) {
          const r = await c.state();
          if (!r.ok) return failed(r, o, 'status');
          // --json carries what the table shows: the state, and /healthz (breakers, replication, clients).
          if (o.json) printJson({ ...r.body, health: await healthBody(c) });
          else io.out(renderState(r.body, now()) + (await healthLines(c)));
          return EXIT.ok;
        }
        const interval = Number(w.interval);
        if (!(interval > 0)) return fail(`--interval: ${w.interval} is not a positive number of ms`, EXIT.usage);
        const { signal, release } = watchSignal(io.watchStop);
        try {
          while (!signal.aborted) {
            const r = await c.state();
            const stamp = new Date(now()).toISOString();
            if (o.json) io.out(safeJson(r.ok ? { at: stamp, ...r.body } : { at: stamp, error: r.message }) + '\n');
            else {
              if (io.isTTY) io.out('\x1b[2J\x1b[H');
              io.out(`${stamp}  ${c.target.baseUrl}  (Ctrl-C to stop)\n`);
              io.out(r.ok ? renderState(r.body, now()) + (await healthLines(c)) : `unavailable: ${oneLine(r.message)}\n`);
              if (!io.isTTY) io.out('\n');
            }
            await sleep(interval, undefined, { signal }).catch(() => undefined);
          }
        } finally {
          release();
        }
        return EXIT.ok;
      }),
    );

  prepare(program.command('transition').description('Request a cutover transition (refused with the reason unless legal and its guards pass)'), 120_000)
    .argument('<STATE>', 'target state, e.g. READS_10PCT_AURORA (case-insensitive, - or _)')
    .option('--reason <text>', 'why (recorded in the audit log; required with --force)')
    .option('--force', "skip the step's forceable guards (minimum stable time, breakers, gates)")
    .action(
      run(async (c, o, stateName) => {
        const t = o as CommonOpts & { reason?: string; force?: boolean };
        const parsed = parseState(stateName);
        if (!parsed.ok) return fail(parsed.reason, EXIT.usage);
        if (t.force && !t.reason?.trim()) return fail('--force needs --reason (the audit log records why)', EXIT.usage);
        const r = await c.transition({ to: parsed.state, reason: t.reason, force: Boolean(t.force) });
        if (!r.ok) return failed(r, o, `transition to ${parsed.state}`);
        if (o.json) printJson(r.body);
        else io.out(`transition accepted: now ${oneLine(String(r.body.state))}${t.force ? ' (forced)' : ''}\n` + renderState(r.body, now()));
        return EXIT.ok;
      }),
    );

  prepare(program.command('rollback').description('Roll back to the source now (runs the rollback procedure)'), 120_000)
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .action(
      run(async (c, o) => {
        const reason = (o as CommonOpts & { reason: string }).reason;
        if (!reason.trim()) return fail('--reason must not be empty', EXIT.usage);
        const r = await c.rollback({ reason });
        if (!r.ok) return failed(r, o, 'rollback');
        if (o.json) printJson(r.body);
        else io.out('rollback started\n' + (typeof r.body.state === 'string' ? renderState(r.body as StateBody, now()) : renderObject(r.body)));
        return EXIT.ok;
      }),
    );

  prepare(program.command('writer').description('The writer the databases recorded; adopt it now, or clear a dead run\'s writer lock (README "Safety")'))
    .argument('[action]', 'show (default), adopt or unlock', 'show')
    .option('--reason <text>', 'why (recorded in the audit log; required for adopt and unlock)')
    .option('--holder <name>', 'unlock: only if this holder still has the lock')
    .action(
      run(async (c, o, action) => {
        const w = o as CommonOpts & { reason?: string; holder?: string };
        if (!['show', 'adopt', 'unlock'].includes(action)) return fail(`writer: unknown action ${JSON.stringify(action)} (show, adopt, unlock)`, EXIT.usage);
        if (action !== 'show' && !w.reason?.trim()) return fail(`writer ${action} needs --reason (the audit log records why)`, EXIT.usage);
        const r = await c.writer(action === 'adopt' ? { adopt: { reason: w.reason! } } : action === 'unlock' ? { unlock: { reason: w.reason!, ...(w.holder ? { holder: w.holder } : {}) } } : {});
        if (!r.ok) return failed(r, o, `writer ${action}`);
        if (o.json) printJson(r.body);
        else io.out(renderObject(r.body));
        return EXIT.ok;
      }),
    );

  prepare(program.command('gate').description('Run a gate (1: connectivity and settings, 2: data equal and CDC lag, 3: shadow validation, final: Phase 4)'), 6 * 3600_000)
    .argument('<n>', '1, 2, 3 or final (Phase 4: stability window, checksums, snapshot, source sessions)')
    .action(
      run(async (c, o, n) => {
        if (n === 'final') return runFinalGateCommand(c, o, io);
        if (!/^[123]$/.test(n ?? '')) return fail(`gate: ${JSON.stringify(n)} is not 1, 2 or 3`, EXIT.usage);
        const r = await c.gate(Number(n));
        if (!r.ok) return failed(r, o, `gate ${n}`);
        if (o.json) printJson(r.body);
        else io.out(renderGate(Number(n), r.body));
        return r.body.passed === false ? EXIT.refused : EXIT.ok;
      }),
    );

  prepare(program.command('audit').description('Show the audit log: transitions, rollback steps, breaker trips'))
    .option('--limit <n>', 'most recent entries to show', '50')
    .action(
      run(async (c, o) => {
        const limit = Number((o as CommonOpts & { limit: string }).limit);
        if (!Number.isInteger(limit) || limit < 0) return fail('--limit must be a whole number', EXIT.usage);
        const r = await c.audit({ limit });
        if (!r.ok) return failed(r, o, 'audit');
        if (o.json) printJson(r.body);
        else io.out(renderAudit(Array.isArray(r.body.entries) ? r.body.entries : []));
        return EXIT.ok;
      }),
    );

  const shadow = program.command('shadow').description('Shadow-write results (SHADOW_WRITES)');
  shadow.configureOutput({ writeOut: io.out, writeErr: io.err }).exitOverride((e) => io.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
  prepare(shadow.command('report').description('Shadow mismatches grouped by statement shape, with counts and one example each'))
    .option('--limit <n>', 'mismatch records to fetch', '1000')
    .action(
      run(async (c, o) => {
        const limit = Number((o as CommonOpts & { limit: string }).limit);
        if (!Number.isInteger(limit) || limit < 0) return fail('--limit must be a whole number', EXIT.usage);
        const r = await c.shadowMismatches({ limit });
        if (!r.ok) return failed(r, o, 'shadow report');
        const report = groupMismatches(r.body);
        if (o.json) printJson(report);
        else io.out(renderShadowReport(report));
        return EXIT.ok;
      }),
    );
}

/** An abort signal for --watch: the caller's, else SIGINT/SIGTERM (Ctrl-C ends the watch with exit 0). */
function watchSignal(given?: AbortSignal): { signal: AbortSignal; release(): void } {
  if (given) return { signal: given, release: () => {} };
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    signal: ac.signal,
    release: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

// ---- rendering: pure, plain aligned columns ----

/** Rows under a header, two spaces between columns; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const all = [header, ...rows].map((r) => r.map((c) => oneLine(c ?? '')));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function keyValues(rows: readonly (readonly [string, string])[]): string {
  const w = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${oneLine(k).padEnd(w)}  ${oneLine(v)}\n`).join('');
}

function toMs(at: unknown): number | null {
  if (typeof at === 'number' && Number.isFinite(at)) return at;
  if (typeof at === 'string') {
    const ms = Date.parse(at);
    return Number.isNaN(ms) ? null : ms;
  }
  return null;
}

/** `2025-06-01 12:00:00Z` (UTC, seconds). */
function fmtTime(at: unknown): string {
  const ms = toMs(at);
  return ms === null ? String(at ?? '') : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

const STATE_KEYS = new Set(['state', 'version', 'since', 'reason', 'readPercent', 'writesTo', 'degraded']);

/** Health, breakers, replication and clients from GET /healthz under the state table (a 503 carries them too); nothing when unreachable. */
/** The /healthz body (also a 503 degraded one), or null when there is none. */
async function healthBody(c: Pick<AdminClient, 'healthz'>): Promise<Record<string, unknown> | null> {
  const h = await c.healthz().catch(() => null);
  if (h === null) return null;
  if (h.ok) return h.body;
  if (h.kind !== 'unreachable' && typeof h.body === 'object' && h.body !== null && 'status' in h.body) return h.body as Record<string, unknown>;
  return null;
}

async function healthLines(c: Pick<AdminClient, 'healthz'>): Promise<string> {
  const h = await c.healthz().catch(() => null);
  if (h === null) return '';
  if (h.ok) return renderHealth(h.body);
  if (h.kind !== 'unreachable' && typeof h.body === 'object' && h.body !== null && 'status' in h.body) return renderHealth(h.body as Record<string, unknown>);
  return '';
}

export function renderHealth(h: Record<string, unknown>): string {
  const rows: [string, string][] = [];
  if (h.status === 'degraded') rows.push(['health', `DEGRADED: ${Array.isArray(h.reasons) ? h.reasons.map(String).join('; ') : 'see /healthz'}`]);
  else if (h.status === 'ok') rows.push(['health', 'ok']);
  if (typeof h.clients === 'number') rows.push(['clients', String(h.clients)]);
  if (Array.isArray(h.breakers)) {
    const b = h.breakers as { name: string; status: string; value: number | null; threshold: number }[];
    rows.push(['breakers', b.map((x) => (x.status === 'open' ? `${x.name} OPEN (${x.value} > ${x.threshold})` : `${x.name} ${x.status}`)).join(', ')]);
  }
  const r = h.replication as { mode?: string; state?: string; lagSeconds?: number | null; replicationError?: string | null } | null | undefined;
  if (r) {
    const lag = typeof r.lagSeconds === 'number' ? `, lag ${r.lagSeconds.toFixed(1)} s` : '';
    rows.push(['replication', `${r.mode ?? '?'} ${r.state ?? '?'}${lag}${r.replicationError ? `, error: ${r.replicationError}` : ''}`]);
  }
  return rows.length > 0 ? keyValues(rows) : '';
}

export function renderState(s: StateBody, now: number): string {
  const rows: [string, string][] = [['state', String(s.state)]];
  if (s.version !== undefined) rows.push(['version', String(s.version)]);
  if (typeof s.since === 'number') rows.push(['since', `${fmtTime(s.since)} (${formatDuration(now - s.since)} ago)`]);
  if (s.reason) rows.push(['reason', String(s.reason)]);
  if (typeof s.readPercent === 'number') rows.push(['reads', `${Math.round(s.readPercent * 10) / 10}% to target`]);
  if (s.writesTo) rows.push(['writes', `to ${s.writesTo}`]);
  if (s.degraded !== undefined) rows.push(['degraded', s.degraded === false ? 'no' : s.degraded === true ? 'YES' : fmtValue(s.degraded)]);
  for (const [k, v] of Object.entries(s)) {
    if (STATE_KEYS.has(k)) continue;
    // Lists of lines (guarantees, remaining): one row each.
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')) v.forEach((x, i) => rows.push([i === 0 ? k : '', x as string]));
    else rows.push([k, fmtValue(v)]);
  }
  return keyValues(rows);
}

export function renderObject(o: Record<string, unknown>): string {
  return keyValues(Object.entries(o).map(([k, v]) => [k, fmtValue(v)]));
}

const pick = (o: Record<string, unknown>, ...keys: string[]): unknown => keys.map((k) => o[k]).find((v) => v !== undefined);
const verdict = (v: unknown): string => (v === true ? 'ok' : v === false ? 'FAIL' : fmtValue(v));

/** A gate result: `{passed, criteria: [{name, value, threshold, ok, detail}]}` (also `checks`/`results`, `measured`, `passed`). */
export function renderGate(n: number, body: Record<string, unknown>): string {
  const head = `gate ${n}: ${body.passed === true ? 'PASSED' : body.passed === false ? 'FAILED' : 'result'}\n`;
  const list = pick(body, 'criteria', 'checks', 'results');
  if (!Array.isArray(list)) return head + renderObject(body);
  const rows = list.map((x) => {
    const c = (typeof x === 'object' && x !== null ? x : { name: String(x) }) as Record<string, unknown>;
    return [
      fmtValue(pick(c, 'name', 'criterion', 'id')),
      fmtValue(pick(c, 'value', 'measured', 'actual')),
      fmtValue(pick(c, 'threshold', 'limit', 'expected')),
      c.judged === false ? 'NOT JUDGED' : verdict(pick(c, 'ok', 'passed', 'pass')),
      fmtValue(pick(c, 'detail', 'reason')),
    ];
  });
  return head + table(['CRITERION', 'MEASURED', 'THRESHOLD', 'RESULT', 'DETAIL'], rows).map((l) => l + '\n').join('');
}

function stepLine(s: unknown): string {
  if (typeof s !== 'object' || s === null) return String(s);
  const o = s as Record<string, unknown>;
  const ms = pick(o, 'ms', 'durationMs', 'tookMs');
  return [
    fmtValue(pick(o, 'name', 'step', 'kind')),
    o.at !== undefined ? fmtTime(o.at) : '',
    pick(o, 'ok', 'passed') !== undefined ? verdict(pick(o, 'ok', 'passed')) : '',
    typeof ms === 'number' ? `${ms}ms` : '',
    fmtValue(pick(o, 'detail', 'reason', 'error')),
  ]
    .filter((x) => x !== '')
    .join('  ');
}

/** Audit entries as a table; a rollback's steps indented under its row. */
export function renderAudit(entries: readonly AuditRow[]): string {
  if (entries.length === 0) return '(no audit entries)\n';
  const rows = entries.map((e) => [
    fmtTime(e.at),
    e.by ?? '',
    e.kind ?? '',
    e.from && e.to ? `${e.from} → ${e.to}` : (e.to ?? ''),
    e.forced ? 'forced' : '',
    e.reason ?? '',
  ]);
  const lines = table(['TIME', 'BY', 'KIND', 'CHANGE', 'FORCED', 'REASON'], rows);
  let out = lines[0] + '\n';
  entries.forEach((e, i) => {
    out += lines[i + 1] + '\n';
    for (const s of Array.isArray(e.steps) ? e.steps : []) out += `    - ${oneLine(stepLine(s))}\n`;
  });
  return out;
}

export interface ShadowGroup {
  readonly fingerprint: string;
  readonly count: number;
  /** Mismatches not explained by replication lag, a shadow lock timeout or abandonment: they count against gate 3. */
  readonly unexplained: number;
  readonly classes: Readonly<Record<string, number>>;
  readonly firstAt: string | null;
  readonly lastAt: string | null;
  /** The newest record of the group, as the server sent it. */
  readonly example: unknown;
}

export interface ShadowReport {
  /** Records the server holds (its `total`), which may exceed those fetched. */
  readonly total: number;
  readonly fetched: number;
  readonly unexplained: number;
  readonly groups: readonly ShadowGroup[];
}

/**
 * Groups `GET /shadow/mismatches` records (`{total, items}`, `{mismatches}` or a bare array of
 * `{at, cls, explained, fingerprint, statement, source, shadow}`) by fingerprint, largest first.
 */
export function groupMismatches(body: unknown): ShadowReport {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const raw = Array.isArray(body) ? body : pick(b, 'items', 'mismatches', 'entries');
  const items = (Array.isArray(raw) ? raw : []).filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
  const by = new Map<string, { count: number; unexplained: number; classes: Record<string, number>; first: number | null; last: number | null; example: Record<string, unknown>; exampleAt: number | null }>();
  for (const m of items) {
    const fp = typeof m.fingerprint === 'string' ? m.fingerprint : '(no fingerprint)';
    const at = toMs(m.at);
    const cls = fmtValue(pick(m, 'cls', 'class', 'kind')) || 'unknown';
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
  const total = typeof b.total === 'number' ? b.total : items.length;
  return { total, fetched: items.length, unexplained: groups.reduce((n, g) => n + g.unexplained, 0), groups };
}

function sideSummary(r: unknown): string {
  if (r === null || r === undefined) return 'no result';
  if (typeof r !== 'object') return String(r);
  const o = r as Record<string, unknown>;
  if (o.ok === false) return `ERROR ${fmtValue(o.sqlstate) || '?'}`;
  return [fmtValue(o.tag) || 'OK', typeof o.rows === 'number' ? `${o.rows} row${o.rows === 1 ? '' : 's'}` : '', o.hash ? `hash ${fmtValue(o.hash)}` : '']
    .filter(Boolean)
    .join(' ');
}

function exampleLine(e: unknown): string {
  const o = (typeof e === 'object' && e !== null ? e : {}) as Record<string, unknown>;
  if (!('source' in o) && !('shadow' in o)) return JSON.stringify(e).slice(0, 200);
  const where = typeof o.statement === 'number' ? ` at statement ${o.statement}` : '';
  return `${fmtValue(pick(o, 'cls', 'class', 'kind')) || 'mismatch'}${where}: source ${sideSummary(o.source)}; target ${sideSummary(o.shadow)}`;
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
