/**
 * A PostgreSQL 14 source and 15 target with trust logins, `setup` run directly on each (the same data on both,
 * so every state must give the direct answers), and a proxy in front whose users file holds `postgres` and
 * `raw`: a trust superuser created on both for raw-protocol clients (test/proxy/fixtures/wire.ts).
 */
import pg from 'pg';
import { startPg, type EmbeddedPg, type Teardown } from './servers.js';
import { startProxy, type ProxyHandle } from './proxy.js';

export async function startRawPair(t: Teardown, setup: readonly string[]): Promise<{ source: EmbeddedPg; target: EmbeddedPg; proxy: ProxyHandle }> {
  const source = await startPg(t, 14, { authMethod: 'trust' });
  const target = await startPg(t, 15, { authMethod: 'trust' });
  const users = { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'postgres', password: 'postgres' }, { name: 'raw', method: 'trust' }] }) };
  const proxy = await startProxy(t, source.url(), target.url(), {}, users);
  for (const s of [source, target]) {
    const c = new pg.Client({ connectionString: s.url() });
    await c.connect();
    await c.query('create role raw login superuser');
    for (const sql of setup) await c.query(sql);
    await c.end();
  }
  return { source, target, proxy };
}
