/**
 * Fencing (DESIGN.md "Fencing"): the database, not a sidecar's belief, decides who may write.
 * `ALTER ROLE … SET default_transaction_read_only = on` for every application role makes their new
 * sessions read-only (a write fails with SQLSTATE 25006); their open sessions are then ended,
 * since a role setting only applies at login
 * (https://www.postgresql.org/docs/15/sql-alterrole.html). Replication apply workers and walsenders
 * are not client backends and are left alone; so are control-plane sessions (application_name).
 */
import { CONTROL_APPLICATION_NAME, type Db } from './control-conn.js';
import { quoteIdent } from './sql.js';

export interface FenceReport {
  readonly roles: readonly string[];
  /** Application sessions ended. */
  readonly terminated: number;
  readonly ms: number;
}

/** Ends the open sessions of `roles` (not ours, not replication workers); waits up to 5 s for each to exit. */
export async function terminateSessions(db: Db, roles: readonly string[]): Promise<number> {
  if (roles.length === 0) return 0;
  // pg_terminate_backend(pid, timeout) waits for the process to exit (PostgreSQL 14+), so the
  // session is gone, not merely signalled, when we go on.
  const r = await db.query<{ n: number }>(
    `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000))::int AS n
       FROM pg_stat_activity
      WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND coalesce(application_name, '') NOT LIKE $2`,
    [roles, `${CONTROL_APPLICATION_NAME}%`],
  );
  return r.rows[0]!.n;
}

/** Makes `roles` read-only on this server and ends their sessions. Idempotent. */
export async function fence(db: Db, roles: readonly string[]): Promise<FenceReport> {
  const started = Date.now();
  for (const role of roles) await db.query(`ALTER ROLE ${quoteIdent(role)} SET default_transaction_read_only = on`);
  let terminated = await terminateSessions(db, roles);
  // A login that read the role's settings just before the ALTER committed may not have been in
  // pg_stat_activity yet at the first pass.
  terminated += await terminateSessions(db, roles);
  return { roles, terminated, ms: Date.now() - started };
}

/** Lifts the fence: new sessions of `roles` may write again. */
export async function unfence(db: Db, roles: readonly string[]): Promise<{ roles: readonly string[]; ms: number }> {
  const started = Date.now();
  for (const role of roles) await db.query(`ALTER ROLE ${quoteIdent(role)} RESET default_transaction_read_only`);
  return { roles, ms: Date.now() - started };
}

/** Roles among `roles` that are fenced on this server (role-wide setting, any database). */
export async function fencedRoles(db: Db, roles: readonly string[]): Promise<string[]> {
  const r = await db.query<{ rolname: string }>(
    `SELECT r.rolname FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
      WHERE s.setdatabase = 0 AND r.rolname = ANY($1::text[]) AND 'default_transaction_read_only=on' = ANY(s.setconfig)`,
    [roles],
  );
  return r.rows.map((x) => x.rolname);
}

/** Login roles that are not superusers and not the current user: a starting point for the application roles. */
export async function applicationRoleCandidates(db: Db): Promise<string[]> {
  const r = await db.query<{ rolname: string }>(
    `SELECT rolname FROM pg_roles
      WHERE rolcanlogin AND NOT rolsuper AND NOT rolreplication AND rolname <> current_user AND rolname NOT LIKE 'pg\\_%' AND rolname NOT LIKE 'rds%'
      ORDER BY 1`,
  );
  return r.rows.map((x) => x.rolname);
}
