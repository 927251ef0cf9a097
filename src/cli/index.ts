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
    .option('--scale <n>', 'orders to generate (users = n/10, transactions ≈ 1.5n)', '100000')
    .option('--listen <host:port>', 'proxy address', '127.0.0.1:6432')
    .option('--admin <host:port>', 'admin API address', '127.0.0.1:9187')
    .option('--json', 'print one JSON line {"proxy","source","target","admin"} when ready')
    .action(async (o: { scale: string; listen: string; admin: string; json?: boolean }) => {
      const { runDemo } = await import('../demo/run.js');
      await runDemo({ scale: Number(o.scale), listen: o.listen, admin: o.admin, json: Boolean(o.json) });
    });

  registerAdminCommands(program);
  registerReplicationCommands(program);
  registerFinishCommands(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
