/**
 * Operator commands that talk to a running sidecar's admin API: `status [--watch]`, `transition`,
 * `rollback`, `gate`, `audit`, `shadow report`. Plain aligned tables by default, `--json` for
 * scripts. Exit codes: 0 done, 1 refused by the sidecar (HTTP 4xx, a refused transition, a failed
 * gate), 2 usage errors, unreachable sidecar or server errors.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import { parseState } from '../domain/states.js';
import {
  ADMIN_TOKEN_ENV,
  ADMIN_URL_ENV,
  DEFAULT_ADMIN_URL,
  createAdminClient,
  resolveAdminTarget,
  type AdminClient,
  type AdminResult,
} from './admin-client.js';
import type { HealthReply } from '../control/admin-dto.js';
import { renderAudit, renderGate, renderHealth, renderObject, renderState, table } from './render.js';
import { groupMismatches, renderShadowReport } from './shadow-report.js';
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
    if (!o.json && r.body.guards && r.body.guards.length > 0) {
      const rows = r.body.guards.map((g) => [g.guard, g.ok ? 'ok' : 'FAIL', g.detail]);
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
        else io.out('rollback started\n' + renderState(r.body, now()));
        return EXIT.ok;
      }),
    );

  const breaker = program.command('breaker').description('Circuit breakers (their readings: pg-cutover status)');
  breaker.configureOutput({ writeOut: io.out, writeErr: io.err }).exitOverride((e) => io.exit(e.exitCode === 0 ? EXIT.ok : EXIT.usage));
  prepare(breaker.command('reset').description('Close a breaker by hand: the error-rate breaker latches after it trips until reset (audited)'))
    .argument('<name>', 'error-rate, replication-lag, target-cpu or replication-error')
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .action(
      run(async (c, o, name) => {
        const reason = (o as CommonOpts & { reason: string }).reason;
        if (!reason.trim()) return fail('--reason must not be empty', EXIT.usage);
        const r = await c.resetBreaker(name, reason);
        if (!r.ok) return failed(r, o, `breaker reset ${name}`);
        if (o.json) printJson(r.body);
        else io.out(`breaker ${oneLine(r.body.reset)} reset (was ${r.body.was})\n`);
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
        const r = await c.gate(Number(n) as 1 | 2 | 3);
        if (!r.ok) return failed(r, o, `gate ${n}`);
        if (o.json) printJson(r.body);
        else io.out(renderGate(r.body));
        return r.body.passed ? EXIT.ok : EXIT.refused;
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
        else io.out(renderAudit(r.body.entries));
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

/** The /healthz body (also a 503 degraded one), or null when there is none. */
async function healthBody(c: Pick<AdminClient, 'healthz'>): Promise<HealthReply | null> {
  const h = await c.healthz().catch(() => null);
  if (h === null) return null;
  if (h.ok) return h.body;
  if (h.kind !== 'unreachable' && typeof h.body === 'object' && h.body !== null && 'status' in h.body) return h.body as HealthReply;
  return null;
}

/** Health, breakers, replication and clients from GET /healthz under the state table (a 503 carries them too); nothing when unreachable. */
async function healthLines(c: Pick<AdminClient, 'healthz'>): Promise<string> {
  const h = await healthBody(c);
  return h === null ? '' : renderHealth(h);
}
