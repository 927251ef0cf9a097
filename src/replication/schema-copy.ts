/**
 * Copies table DDL from source to target with the PostgreSQL client tools: `pg_dump --schema-only`
 * of the chosen tables, replayed by `psql` in one transaction. pg_dump knows every column type,
 * default, identity, constraint and index of every version it can read; generating DDL ourselves
 * would be a second, worse pg_dump. psql (not a driver) replays it because pg_dump 15.14+ writes
 * `\restrict` meta-commands (https://www.postgresql.org/docs/15/app-pgdump.html).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { controlApplicationName } from './control-conn.js';
import { quoteIdent, type QualifiedName } from './sql.js';

/** Directory of pg_dump and psql; PGCUTOVER_PG_BIN, else Debian's PostgreSQL 15 client. */
export function pgClientBin(): string {
  return process.env.PGCUTOVER_PG_BIN ?? '/usr/lib/postgresql/15/bin';
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a client tool as a control session: read-only off (a rollback may have fenced the target;
 * psql's --single-transaction BEGIN would otherwise start read-only) and marked so fencing spares it.
 */
function run(file: string, args: string[], input?: string, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, PGOPTIONS: '-c default_transaction_read_only=off', PGAPPNAME: controlApplicationName('schema-copy') };
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-8000)));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined); // the child may exit before reading all of it; `close` reports why
    child.stdin.end(input ?? '');
  });
}

export interface SchemaCopyOptions {
  /** Keep GRANT/REVOKE (roles must exist on the target). Default false. */
  privileges?: boolean;
  /** Directory of pg_dump/psql. Default pgClientBin(). */
  binDir?: string;
}

export type SchemaCopyResult = { ok: true; ddlBytes: number } | { ok: false; errors: string[] };

/** `-t` pattern matching exactly this table: quoted parts make pattern characters literal. */
function tablePattern(t: QualifiedName): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** Dumps the DDL of `tables` from `sourceUrl` (owners left out; privileges unless asked for). */
export async function dumpTableDdl(sourceUrl: string, tables: readonly QualifiedName[], opts: SchemaCopyOptions = {}): Promise<{ ok: true; ddl: string } | { ok: false; errors: string[] }> {
  const bin = opts.binDir ?? pgClientBin();
  const args = ['--schema-only', '--no-owner', ...(opts.privileges ? [] : ['--no-privileges'])];
  for (const t of tables) args.push('-t', tablePattern(t));
  args.push('--dbname', sourceUrl);
  const r = await run(path.join(bin, 'pg_dump'), args).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
  if (r.code !== 0) return { ok: false, errors: [`pg_dump failed (exit ${r.code}): ${r.stderr.trim()}`] };
  return { ok: true, ddl: r.stdout };
}

/**
 * Creates `tables` on the target with the source's DDL, schemas first. One transaction: either
 * every table is created or none is.
 */
export async function copyTableSchema(sourceUrl: string, targetUrl: string, tables: readonly QualifiedName[], opts: SchemaCopyOptions = {}): Promise<SchemaCopyResult> {
  if (tables.length === 0) return { ok: true, ddlBytes: 0 };
  const dumped = await dumpTableDdl(sourceUrl, tables, opts);
  if (!dumped.ok) return dumped;
  const schemas = [...new Set(tables.map((t) => t.schema))].filter((s) => s !== 'public');
  const prelude = schemas.map((s) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(s)};\n`).join('');
  const script = `${prelude}${dumped.ddl}`;
  const bin = opts.binDir ?? pgClientBin();
  const args = ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', '--dbname', targetUrl];
  const r = await run(path.join(bin, 'psql'), args, script).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
  if (r.code !== 0) return { ok: false, errors: [`applying the schema on the target failed (psql exit ${r.code}): ${r.stderr.trim()}`] };
  return { ok: true, ddlBytes: Buffer.byteLength(script) };
}
