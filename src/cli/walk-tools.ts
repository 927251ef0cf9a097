/**
 * The operator's tools for `pg-cutover demo --walkthrough`: the `pg-cutover` commands themselves, run in-process
 * through the same commander program and admin client (their output shown), and the admin API client.
 */
import { Command } from 'commander';
import { registerAdminCommands } from './admin-commands.js';
import { registerReplicationCommands } from './replication.js';
import { createAdminClient } from './admin-client.js';
import type { CliRun, Operator } from '../demo/walk-io.js';

export function walkOperator(adminUrl: string, say: (m: string) => void): Operator {
  const cli = async (args: string[], shown?: string): Promise<CliRun> => {
    let out = '';
    let err = '';
    let code = 0;
    const io = {
      out: (s: string) => void (out += s),
      err: (s: string) => void (err += s),
      env: { PGCUTOVER_ADMIN: adminUrl },
      setExitCode: (c: number) => void (code = c),
      exit: ((c: number) => {
        throw new Error(`pg-cutover ${args.join(' ')} exited ${c}: ${err}`);
      }) as (c: number) => never,
      progressTTY: false,
    };
    const program = new Command('pg-cutover').exitOverride();
    registerAdminCommands(program, io);
    registerReplicationCommands(program, io);
    say(`$ pg-cutover ${shown ?? args.join(' ')}`);
    await program.parseAsync(['node', 'pg-cutover', ...args]);
    const text = (out + err).trimEnd();
    if (text) say(text.split('\n').map((l) => `    ${l}`).join('\n'));
    return { code, out, err };
  };
  return { cli, api: createAdminClient({ baseUrl: adminUrl }, { timeoutMs: 120_000 }) };
}
