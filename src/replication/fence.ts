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

/**
 * Ends the open sessions of `roles` (not ours, not replication workers) and waits until they have
 * exited (at most `waitMs`), so no session of theirs can still commit when this returns. All are
 * signalled at once, then awaited together: pg_terminate_backend(pid, timeout) would wait for
 * each in turn.
 */
export async function terminateSessions(db: Db, roles: readonly string[], waitMs = 5000): Promise<number> {
  if (roles.length === 0) return 0;
  // Choose first, terminate second, in two statements: in one WHERE clause the planner may push
  // pg_terminate_backend(pid) below the view's join, onto every backend, before the role filter
  // runs (it did: walsenders and the replication launcher were ended).
  const chosen = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND coalesce(application_name, '') NOT LIKE $2`,
    [roles, `${CONTROL_APPLICATION_NAME}%`],
  );
  if (chosen.rows.length === 0) return 0;
  const r = await db.query<{ pid: number }>(
    'SELECT pid FROM unnest($1::int[]) AS pid WHERE pg_terminate_backend(pid)',
    [chosen.rows.map((x) => x.pid)],
  );
  const pids = r.rows.map((x) => x.pid);
  const deadline = Date.now() + waitMs;
  while (pids.length > 0) {
    const left = await db.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1::int[])', [pids]);
    if ((left.rowCount ?? 0) === 0) break;
    if (Date.now() > deadline) throw new Error(`${left.rowCount} terminated session(s) still running after ${waitMs} ms`);
    await new Promise((res) => setTimeout(res, 5));
  }
  return pids.length;
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
