/**
 * `pg-cutover` command line. Options of `start` come from the config schema (src/config/schema.ts), so
 * --help, environment variables and validation never drift apart.
 */
import { Command, Option } from 'commander';
import { START_OPTIONS } from '../config/schema.js';
import { registerAdminCommands } from './admin-commands.js';
import { registerReplicationCommands } from './replication.js';
import { registerFinishCommands } from './finish-commands.js';
import { onSignals } from '../support/signals.js';

// What a command needs (the sidecar with pg, ioredis, libpg-query and the AWS SDK; pino) is imported when it
// runs: `--help` and the admin commands start in tens of milliseconds of CPU (bench/cli-startup.ts).

function addStartOptions(cmd: Command): Command {
  for (const o of START_OPTIONS) {
    const arg = o.type === 'bool' ? ' [true|false]' : ` <${o.type === 'hostport' ? 'host:port' : o.type === 'int' ? 'n' : o.type === 'url' ? 'url' : o.type === 'file' ? 'file' : 'value'}>`;
    const def = o.default !== undefined ? ` (default: ${o.default})` : '';
    const opt = new Option(`--${o.flag}${arg}`, `${o.doc}${def}`).env(o.env);
    if (o.choices && o.key !== 'state') opt.choices(o.choices);
    cmd.addOption(opt);
  }
  return cmd;
}

export function buildProgram(): Command {
  const program = new Command('pg-cutover')
    .description('Traffic-splitting PostgreSQL proxy sidecar: move a live application from PostgreSQL 14 to PostgreSQL 15 / Aurora with zero downtime')
    .showHelpAfterError();

  addStartOptions(
    program
      .command('start')
      .description('Run the sidecar: accept PostgreSQL clients, forward them to source/target by cutover state, serve the admin API'),
  ).action(async (flags: Record<string, unknown>) => {
    const [{ loadStartConfig }, { startSidecar }, { log }] = await Promise.all([import('../config/load.js'), import('../sidecar.js'), import('../support/log.js')]);
    const cfg = loadStartConfig(flags, process.env);
    if (!cfg.ok) {
      for (const e of cfg.errors) console.error(`pg-cutover: ${e}`);
      process.exit(2);
    }
    log.level = cfg.value.logLevel;
    const s = await startSidecar(cfg.value, process.env);
    if (!s.ok) {
      for (const e of s.errors) console.error(`pg-cutover: ${e}`);
      process.exit(2);
    }
    await onSignals(() => s.value.stop(), () => s.value.reload());
  });

  program
    .command('demo')
    .description('Start an embedded PostgreSQL 14 (source) and 15 (target) with a sample "shop" database, and the proxy in front of them')
    .option('--scale <n>', 'orders to generate (users = n/10, transactions ≈ 1.5n); default 100000, 10000 with --walkthrough')
    .option('--listen <host:port>', 'proxy address (--walkthrough: a free port)', '127.0.0.1:6432')
    .option('--admin <host:port>', 'admin API address (--walkthrough: a free port)', '127.0.0.1:9187')
    .option('--time-scale <factor>', 'multiply stage guards and control windows by this (default 0.0001; 0.00005 with --walkthrough)')
    .option('--json', 'print one JSON line {"proxy","source","target","admin"} when ready (--walkthrough: the result)')
    .option('--walkthrough', 'walk SOURCE_PRIMARY → CUTOVER_COMPLETE under a built-in load without --force, then a target fault, the automatic rollback and the resume; ends with a zero-loss check, stops everything, exit 1 on failure')
    .option('--tps <n>', '--walkthrough: write transactions per second of the built-in load', '100')
    .option('--rps <n>', '--walkthrough: reads per second of the built-in load', '100')
    .option('--gate3-read-p99-ms <ms>', "gate 3's target read p99 bound (default 30: a production objective; a busy machine may need more, shown in the gate's output)")
    .option('--gate3-write-p99-ms <ms>', "gate 3's target write p99 bound (default 20)")
    .action(async (o: { scale?: string; listen: string; admin: string; timeScale?: string; json?: boolean; walkthrough?: boolean; tps: string; rps: string; gate3ReadP99Ms?: string; gate3WriteP99Ms?: string }) => {
      const sidecar = {
        ...(o.gate3ReadP99Ms ? { gate3ReadP99Ms: o.gate3ReadP99Ms } : {}),
        ...(o.gate3WriteP99Ms ? { gate3WriteP99Ms: o.gate3WriteP99Ms } : {}),
      };
      if (o.walkthrough) {
        const [{ runWalkthrough, WALK_TIME_SCALE }, { walkOperator }, { killAllEmbeddedPostgresSync }] = await Promise.all([import('../demo/walkthrough.js'), import('./walk-tools.js'), import('../demo/embedded.js')]);
        // Ctrl-C: stop both servers and remove their data at once (the walk itself has nothing to keep).
        for (const sig of ['SIGINT', 'SIGTERM'] as const) {
          process.once(sig, () => {
            killAllEmbeddedPostgresSync();
            process.exit(130);
          });
        }
        const listen = (v: string, d: string) => (v === d ? '127.0.0.1:0' : v);
        const r = await runWalkthrough({
          scale: Number(o.scale ?? '10000'),
          listen: listen(o.listen, '127.0.0.1:6432'),
          admin: listen(o.admin, '127.0.0.1:9187'),
          timeScale: o.timeScale ?? WALK_TIME_SCALE,
          tps: Number(o.tps),
          rps: Number(o.rps),
          sidecar,
          say: (m) => (o.json ? console.error(m) : console.log(m)),
        }, walkOperator).catch((e: Error) => {
          console.error(`pg-cutover: ${e.message}`);
          process.exit(2);
        });
        if (o.json) console.log(JSON.stringify(r));
        process.exit(r.ok ? 0 : 1);
      }
      const { runDemo } = await import('../demo/run.js');
      await runDemo({ scale: Number(o.scale ?? '100000'), listen: o.listen, admin: o.admin, json: Boolean(o.json), ...(o.timeScale ? { timeScale: o.timeScale } : {}), sidecar });
    });

  registerAdminCommands(program);
  registerReplicationCommands(program);
  registerFinishCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
