/**
 * `pg-cutover replicate setup|status|pause|resume|teardown` (native logical replication source →
 * target) and `pg-cutover validate` (gates 1 and 2). Tables by default, `--json` for scripts.
 * Exit codes: 0 done / gate passed, 1 failed (an operation's error or a failed gate), 2 usage.
 */
import { Command, Option } from 'commander';
import type { Gate2Progress } from '../replication/gate2.js';
import { formatGate, type GateResult } from '../domain/gate-result.js';
import type { NativeStatus, Result } from '../replication/native.js';
import { DEFAULT_PUBLICATION, DEFAULT_SUBSCRIPTION } from '../replication/names.js';

// The replication modules load pg and the SQL helpers: imported when a command runs, so `--help` stays fast.
const native = () => import('../replication/native.js');

export interface ReplicationCliIO {
  out(text: string): void;
  err(text: string): void;
  setExitCode(code: number): void;
  /** Draw a progress bar on stderr (default: stderr is a TTY). */
  progressTTY?: boolean;
}

const defaultIO = (): ReplicationCliIO => ({
  out: (s) => void process.stdout.write(s),
  err: (s) => void process.stderr.write(s),
  setExitCode: (c) => void (process.exitCode = c),
  progressTTY: process.stderr.isTTY === true,
});

interface Conn {
  source: string;
  target: string;
  json?: boolean;
}

function connOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--source <url>', 'source (PostgreSQL 14) URL').env('PGCUTOVER_SOURCE').makeOptionMandatory())
    .addOption(new Option('--target <url>', 'target (PostgreSQL 15 / Aurora) URL').env('PGCUTOVER_TARGET').makeOptionMandatory())
    .option('--json', 'print JSON instead of a table');
}

function nameOptions(cmd: Command): Command {
  return cmd
    .option('--publication <name>', 'publication on the source', DEFAULT_PUBLICATION)
    .option('--subscription <name>', 'subscription on the target', DEFAULT_SUBSCRIPTION);
}

function report<T>(io: ReplicationCliIO, json: boolean | undefined, r: Result<T>, text: (v: T) => string): void {
  if (!r.ok) {
    if (json) io.out(`${JSON.stringify({ ok: false, errors: r.errors })}\n`);
    else for (const e of r.errors) io.err(`pg-cutover: ${e}\n`);
    io.setExitCode(1);
    return;
  }
  io.out(json ? `${JSON.stringify({ ok: true, ...r.value })}\n` : `${text(r.value)}\n`);
}

function statusText(s: NativeStatus): string {
  const lines = [`publication ${s.publication.name}: ${s.publication.tables.length ? s.publication.tables.join(', ') : '(none)'}`];
  const sub = s.subscription;
  if (!sub) {
    lines.push('subscription: none on the target');
    return lines.join('\n');
  }
  lines.push(`subscription ${sub.name}: ${sub.enabled ? 'enabled' : 'DISABLED (paused)'}, apply worker ${sub.worker.pid ?? 'not running'}`);
  lines.push(`  source LSN ${s.sourceLsn}, applied ${sub.worker.latestEndLsn ?? '?'}, lag ${s.lagBytes ?? '?'} bytes`);
  if (s.slot) lines.push(`  slot ${s.slot.name}: ${s.slot.active ? 'active' : 'inactive'}, retains ${s.slot.retainedBytes ?? '?'} bytes of WAL`);
  if (sub.errors) lines.push(`  errors (cumulative): apply ${sub.errors.apply}, table sync ${sub.errors.sync}`);
  const pad = Math.max(5, ...sub.tables.map((x) => x.table.length));
  const meaning: Record<string, string> = { i: 'init', d: 'copying data', f: 'copied, catching up', s: 'synchronized', r: 'ready (streaming)' };
  for (const x of sub.tables) lines.push(`  ${x.table.padEnd(pad)}  ${x.state}  ${meaning[x.state] ?? ''}`);
  return lines.join('\n');
}

function progressBar(io: ReplicationCliIO): { update(p: Gate2Progress): void; done(): void } {
  let last = 0;
  return {
    update(p) {
      if (!io.progressTTY || p.totalChunks === 0) return;
      const now = Date.now();
      if (now - last < 100 && p.doneChunks < p.totalChunks) return;
      last = now;
      const frac = p.doneChunks / p.totalChunks;
      const width = 30;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
      const eta = frac > 0 ? Math.round(((p.elapsedMs / frac) - p.elapsedMs) / 1000) : null;
      io.err(`\r  checksums [${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${p.doneChunks}/${p.totalChunks} chunks${p.resumed ? ` (${p.resumed} resumed)` : ''}  ${p.rows} rows  ETA ${eta === null ? '?' : `${eta}s`}   `);
    },
    done() {
      if (io.progressTTY) io.err('\n');
    },
  };
}

const list = (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((x) => x.trim()).filter(Boolean)];
const positive = (name: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
};

export function registerReplicationCommands(program: Command, io: ReplicationCliIO = defaultIO()): void {
  const rep = program.command('replicate').description('Native logical replication source → target: set up, watch, pause, resume, tear down');

  nameOptions(connOptions(rep.command('setup').description('Create the publication on the source, copy missing table DDL to the target, create the subscription (full load, then changes)')))
    .option('--tables <names>', 'tables to replicate, comma-separated (default: all user tables)', list)
    .option('--no-copy-schema', 'do not create missing tables on the target')
    .option('--no-heartbeat', 'do not create and publish the pgcutover_heartbeat lag probe table')
    .option('--no-copy-data', 'do not copy existing rows (changes only)')
    .option('--source-conninfo <conninfo>', 'how the target reaches the source, if not by --source')
    .action(async (o: Conn & { publication: string; subscription: string; tables?: string[]; copySchema: boolean; heartbeat: boolean; copyData: boolean; sourceConninfo?: string }) => {
      const r = await (await native()).setupNativeReplication(o.source, o.target, {
        publication: o.publication,
        subscription: o.subscription,
        tables: o.tables ?? 'all',
        copySchema: o.copySchema,
        heartbeat: o.heartbeat,
        copyData: o.copyData,
        ...(o.sourceConninfo ? { sourceConninfo: o.sourceConninfo } : {}),
      });
      report(io, o.json, r, (v) => [
        `${v.subscriptionCreated ? 'created' : 'already present:'} publication ${v.publication} (source) and subscription ${v.subscription} (target) in ${v.ms} ms`,
        `tables: ${v.tables.join(', ')}`,
        v.schemaCopied.length ? `schema copied to the target: ${v.schemaCopied.join(', ')}` : 'schema: every table already existed on the target',
        `watch it with: pg-cutover replicate status --source … --target …`,
      ].join('\n'));
    });

  nameOptions(connOptions(rep.command('status').description('Publication, subscription, per-table copy state, lag in bytes, slot retention')))
    .action(async (o: Conn & { publication: string; subscription: string }) => {
      report(io, o.json, await (await native()).nativeReplicationStatus(o.source, o.target, o), statusText);
    });

  for (const [name, desc, fn] of [
    ['pause', 'ALTER SUBSCRIPTION … DISABLE: stop applying (the source keeps WAL for it)', 'pauseNativeReplication'],
    ['resume', 'ALTER SUBSCRIPTION … ENABLE', 'resumeNativeReplication'],
  ] as const) {
    nameOptions(connOptions(rep.command(name).description(desc))).action(async (o: Conn & { subscription: string }) => {
      report(io, o.json, await (await native())[fn](o.target, o), (v) => `subscription ${v.subscription} ${v.enabled ? 'enabled' : 'disabled'}`);
    });
  }

  nameOptions(connOptions(rep.command('teardown').description('Drop the subscription (and its slot on the source) and the publication; tables and rows stay')))
    .action(async (o: Conn & { publication: string; subscription: string }) => {
      report(io, o.json, await (await native()).teardownNativeReplication(o.source, o.target, o), (v) =>
        `subscription ${v.subscriptionDropped ? 'dropped' : 'was not there'}, slot ${v.slotDropped ? 'dropped' : 'not dropped'}, publication ${v.publicationDropped ? 'dropped' : 'was not there'}`);
    });

  connOptions(program.command('validate').description('Run gate 1 (connectivity, settings, latency, TLS, roles) and gate 2 (row counts, chunked checksums, lag, errors)'))
    .addOption(new Option('--gate <n>', 'run only this gate').choices(['1', '2']))
    .option('--tables <names>', 'gate 2: tables to compare, comma-separated (default: the publication\'s, else all)', list)
    .option('--publication <name>', 'gate 2: publication whose tables to compare', DEFAULT_PUBLICATION)
    .option('--subscription <name>', 'gate 2: native subscription for re-checks, lag and errors', DEFAULT_SUBSCRIPTION)
    .option('--no-subscription', 'gate 2: no native replication (e.g. AWS DMS): re-check after a delay, do not judge lag')
    .option('--chunk-rows <n>', 'gate 2: rows per checksum chunk', positive('--chunk-rows'), 10_000)
    .option('--concurrency <n>', 'gate 2: chunks checked at once (connections per side)', positive('--concurrency'), 4)
    .option('--max-lag <seconds>', 'gate 2: CDC lag threshold', positive('--max-lag'), 10)
    .option('--state-file <path>', 'gate 2: record finished chunks here and skip them when run again after an interruption (removed on completion)')
    .option('--no-require-tls', 'gate 1: report TLS instead of requiring it')
    .option('--latency-p50-ms <ms>', 'gate 1: round-trip p50 threshold', positive('--latency-p50-ms'), 1)
    .option('--latency-p99-ms <ms>', 'gate 1: round-trip p99 threshold', positive('--latency-p99-ms'), 5)
    .option('--allow-setting <names>', 'gate 1: settings expected to differ, comma-separated', list)
    .option('--expected-superusers <names>', 'gate 1: the only roles allowed to be superusers', list)
    .option('--expected-login-roles <names>', 'gate 1: the only roles allowed to log in', list)
    .action(async (o: Conn & {
      gate?: '1' | '2'; tables?: string[]; publication: string; subscription: string | false; chunkRows: number; concurrency: number; maxLag: number;
      stateFile?: string; requireTls: boolean; latencyP50Ms: number; latencyP99Ms: number; allowSetting?: string[]; expectedSuperusers?: string[]; expectedLoginRoles?: string[];
    }) => {
      const results: GateResult[] = [];
      try {
        if (!o.gate || o.gate === '1') {
          results.push(await (await import('../replication/gate1.js')).runGate1(o.source, o.target, {
            requireTls: o.requireTls,
            latencyP50Ms: o.latencyP50Ms,
            latencyP99Ms: o.latencyP99Ms,
            ...(o.allowSetting ? { allowSettings: o.allowSetting } : {}),
            ...(o.expectedSuperusers ? { expectedSuperusers: o.expectedSuperusers } : {}),
            ...(o.expectedLoginRoles ? { expectedLoginRoles: o.expectedLoginRoles } : {}),
          }));
          if (!o.json) io.out(`${formatGate(results.at(-1)!)}\n\n`);
        }
        if (!o.gate || o.gate === '2') {
          const bar = progressBar(io);
          results.push(await (await import('../replication/gate2.js')).runGate2Directed(o.source, o.target, {
            ...(o.tables ? { tables: o.tables } : {}),
            publication: o.publication,
            subscription: o.subscription === false ? null : o.subscription,
            chunkRows: Math.floor(o.chunkRows),
            concurrency: Math.floor(o.concurrency),
            maxLagSeconds: o.maxLag,
            ...(o.stateFile ? { stateFile: o.stateFile } : {}),
            onProgress: (p) => bar.update(p),
          }).finally(() => bar.done()));
          if (!o.json) io.out(`${formatGate(results.at(-1)!)}\n`);
        }
      } catch (err) {
        io.err(`pg-cutover: validate: ${(err as Error).message}\n`);
        io.setExitCode(1);
        return;
      }
      if (o.json) io.out(`${JSON.stringify({ passed: results.every((g) => g.passed), gates: results })}\n`);
      io.setExitCode(results.every((g) => g.passed) ? 0 : 1);
    });
}
