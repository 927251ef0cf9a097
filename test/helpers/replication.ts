/** Native logical replication PG14 → PG15 for tests that need a live replica (schema copied with pg_dump). */
import pg from 'pg';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startPg, type EmbeddedPg, type Teardown } from './servers.js';

const exec = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export async function query(url: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(sql, params);
  } finally {
    await c.end();
  }
}

/** Copies the schema, publishes every table and subscribes the target; resolves when all tables are in sync. */
export async function replicate(source: EmbeddedPg, target: EmbeddedPg, db = 'postgres'): Promise<void> {
  const { stdout } = await exec(`${BIN}/pg_dump`, ['--schema-only', '--no-owner', '--no-publications', '--no-subscriptions', source.url(db)], { maxBuffer: 64 << 20 });
  // pg_dump 15.14+ writes \\restrict meta-commands, which only psql's file/stdin input understands.
  const file = join(mkdtempSync(join(tmpdir(), 'pgc-ddl-')), 'schema.sql');
  writeFileSync(file, stdout);
  await exec(`${BIN}/psql`, ['-q', '-v', 'ON_ERROR_STOP=1', '-f', file, target.url(db)]);
  rmSync(dirname(file), { recursive: true, force: true });
  await query(source.url(db), 'create publication pgc_test for all tables');
  const conn = `host=127.0.0.1 port=${source.port} user=postgres password=${source.password} dbname=${db}`;
  await query(target.url(db), `create subscription pgc_test connection '${conn}' publication pgc_test`);
  await waitSynced(target.url(db));
}

export async function waitSynced(targetUrl: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await query(targetUrl, "select count(*)::int as n from pg_subscription_rel where srsubstate <> 'r'");
    if (r.rows[0].n === 0) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('tables did not reach sync state in time');
}

/** Waits until the target has applied everything the source had written when called. */
export async function waitCaughtUp(source: EmbeddedPg, timeoutMs = 30_000, db = 'postgres'): Promise<void> {
  const lsn = (await query(source.url(db), 'select pg_current_wal_lsn()::text as l')).rows[0].l;
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = await query(source.url(db), 'select bool_and(replay_lsn >= $1::pg_lsn) as ok from pg_stat_replication', [lsn]);
    if (r.rows[0].ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('target did not catch up in time');
}

/** md5 of every row of a table in key order: equal on both sides means equal data. */
export async function tableChecksum(url: string, table: string, key: string): Promise<string> {
  const r = await query(url, `select md5(coalesce(string_agg(t::text, '|' order by ${key}), '')) as h, count(*)::int as n from ${table} t`);
  return `${r.rows[0].n}:${r.rows[0].h}`;
}

/**
 * PostgreSQL 14 → 15 natively replicating table `ryw` (identity key, text `v`) whose apply is throttled on the
 * target (an ALWAYS trigger sleeps 60 ms per applied row), so replication lag stays above 50 ms while a
 * read-your-writes loop runs (issue 15 item 1).
 */
export async function startSlowApplyPair(t: Teardown): Promise<{ source: EmbeddedPg; target: EmbeddedPg }> {
  const source = await startPg(t, 14, { logical: true });
  const target = await startPg(t, 15);
  await query(source.url(), 'create table ryw (id bigint generated always as identity primary key, v text not null)');
  await replicate(source, target);
  await query(target.url(), `
    create function slow_apply() returns trigger language plpgsql as $$ begin perform pg_sleep(0.06); return new; end $$;
    create trigger slow_apply before insert on ryw for each row execute function slow_apply();
    alter table ryw enable always trigger slow_apply;`);
  return { source, target };
}
