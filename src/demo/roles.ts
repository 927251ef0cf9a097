/**
 * The demo's roles (README "Safety"): the proxy logs in as `shop_app`, an ordinary application role, so the
 * write fence has something to take away; the control plane uses `cutover`, its own role (a superuser here,
 * as CREATE SUBSCRIPTION needs on PostgreSQL 14/15), which the fence never touches.
 */
import pg from 'pg';
import { quoteIdent, quoteLiteral } from '../replication/sql.js';

export const DEMO_APP_ROLE = 'shop_app';
export const DEMO_CONTROL_ROLE = 'cutover';

/** Creates both roles on one server (as its `postgres` superuser) and grants the app what an application needs. */
export async function createDemoRoles(adminUrl: string, database: string, password: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const pw = quoteLiteral(password);
    await c.query(`CREATE ROLE ${quoteIdent(DEMO_APP_ROLE)} LOGIN PASSWORD ${pw}`);
    await c.query(`CREATE ROLE ${quoteIdent(DEMO_CONTROL_ROLE)} LOGIN SUPERUSER PASSWORD ${pw}`);
    await c.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${quoteIdent(database)} TO ${quoteIdent(DEMO_APP_ROLE)}`);
  } finally {
    await c.end();
  }
  const d = new pg.Client({ connectionString: adminUrl.replace(/\/[^/?]*(\?|$)/, `/${encodeURIComponent(database)}$1`) });
  await d.connect();
  try {
    const app = quoteIdent(DEMO_APP_ROLE);
    // CREATE on public lets `pgbench -i` run through the proxy (PostgreSQL 15 no longer grants it to PUBLIC).
    await d.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${app};
      GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO ${app};
      GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${app}`);
  } finally {
    await d.end();
  }
}

/** `url` with another user and password. */
export function withUser(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}
