/**
 * Fencing (DESIGN.md "Fencing"): the database, not a sidecar's belief, decides who may write. A role-level
 * `default_transaction_read_only` is advice a session can undo (SET, BEGIN READ WRITE, set_config, options
 * at login), so the fence takes the right itself, on the application roles and every role they can act as:
 *   - what they own (relations, schemas) is handed to the control role: an owner could grant itself back;
 *   - their write privileges (INSERT/UPDATE/DELETE/TRUNCATE, column INSERT/UPDATE, sequence UPDATE,
 *     schema CREATE), and PUBLIC's, are revoked, each with its grantor;
 *   - `default_transaction_read_only = on` is still set for them in this database, so a plain write fails
 *     with a clean 25006 (the privileges catch the rest with 42501);
 *   - then their sessions are ended, and the server is asked what they can still write: nothing, or the
 *     fence fails.
 * Every change is recorded in pgcutover_control.fence in the same transaction, so unfence restores exactly
 * what was there. Control-plane sessions are known by their role (the control role is never an application
 * role: fenceProblems refuses that), never by application_name. The replication apply worker runs as the
 * subscription owner and is not a client backend: it keeps applying.
 */
import type { Db } from './control-conn.js';
import { fenceProblems, ownedObjects, remainingWriteRights, roleClosure, writeGrants, type OwnedObject, type WriteGrant } from './fence-catalog.js';
import { quoteIdent, quoteLiteral } from './sql.js';
import { ensureControlSchema, recordWriter, type WriterLock } from './writer-record.js';
import type { Role } from '../domain/role.js';

export interface FenceReport {
  readonly roles: readonly string[];
  /** Ownerships and privileges taken by this call (0 when already fenced and nothing new). */
  readonly changes: number;
  /** Application sessions ended. */
  readonly terminated: number;
  readonly ms: number;
}

type Change =
  | ({ readonly do: 'owner' } & OwnedObject)
  | ({ readonly do: 'grant' } & WriteGrant)
  | { readonly do: 'setting'; readonly role: string; readonly previous: string | null };

/** With a writer lock: the `{epoch, writer}` record written in the fence's own transaction. */
export interface FenceRecord {
  readonly lock: WriterLock;
  readonly writer: Role;
}

/**
 * Ends the open sessions of `roles` (client backends, not ours) and waits until they have exited (at most
 * `waitMs`), so none can still commit when this returns. `since`: only sessions that started after it.
 */
export async function terminateSessions(db: Db, roles: readonly string[], waitMs = 5000, since?: string): Promise<number> {
  if (roles.length === 0) return 0;
  // Choose first, terminate second: in one WHERE clause the planner may push pg_terminate_backend(pid) below
  // the view's join, onto every backend, before the role filter runs (it did: walsenders were ended).
  const chosen = await db.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE usename = ANY($1::text[]) AND pid <> pg_backend_pid() AND backend_type = 'client backend'
        AND ($2::timestamptz IS NULL OR backend_start >= $2::timestamptz)`,
    [roles, since ?? null],
  );
  if (chosen.rows.length === 0) return 0;
  const r = await db.query<{ pid: number }>('SELECT pid FROM unnest($1::int[]) AS pid WHERE pg_terminate_backend(pid)', [chosen.rows.map((x) => x.pid)]);
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

/** Runs `sql` as `role` when it is not us (REVOKE/GRANT act for their grantor only). */
async function asRole(db: Db, me: string, role: string, sql: string): Promise<void> {
  if (role === me) {
    await db.query(sql);
    return;
  }
  await db.query(`SET LOCAL ROLE ${quoteIdent(role)}`);
  try {
    await db.query(sql);
  } finally {
    await db.query('RESET ROLE');
  }
}

function grantSql(g: WriteGrant, verb: 'GRANT' | 'REVOKE'): string {
  const priv = g.column ? `${g.privilege} (${quoteIdent(g.column)})` : g.privilege;
  const who = g.grantee === 'PUBLIC' ? 'PUBLIC' : quoteIdent(g.grantee);
  return verb === 'GRANT'
    ? `GRANT ${priv} ON ${g.on} ${g.name} TO ${who}${g.grantable ? ' WITH GRANT OPTION' : ''}`
    : `REVOKE ${priv} ON ${g.on} ${g.name} FROM ${who}`;
}

async function inTransaction<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  await db.query('BEGIN');
  try {
    // One fence or unfence at a time on this database. Taking ownership locks each table (ACCESS EXCLUSIVE):
    // behind a long query, give up rather than queue every other session behind us.
    await db.query(`SET LOCAL lock_timeout = '10s'`);
    await db.query(`SELECT pg_advisory_xact_lock(hashtext('pgcutover_control.fence'))`);
    const v = await fn();
    await db.query('COMMIT');
    return v;
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/**
 * Takes the write rights of `roles` on this database and ends their sessions. Idempotent: fencing again
 * takes what was granted since, and adds it to the record. Throws (changing nothing) when the roles cannot be
 * fenced, or when the server says they could still write afterwards.
 */
export async function fence(db: Db, roles: readonly string[], record?: FenceRecord): Promise<FenceReport> {
  const started = Date.now();
  await ensureControlSchema(db);
  const problems = await fenceProblems(db, roles);
  if (problems.length > 0) throw new Error(`cannot fence: ${problems.join('; ')}`);
  const closure = await roleClosure(db, roles);
  const changes = await inTransaction(db, async () => {
    const me = (await db.query<{ u: string; d: string }>('SELECT current_user AS u, current_database() AS d')).rows[0]!;
    const prev = await db.query<{ roles: string[]; changes: Change[] }>('SELECT roles, changes FROM pgcutover_control.fence');
    const log: Change[] = [...(prev.rows[0]?.changes ?? [])];
    const before = log.length;
    for (const o of await ownedObjects(db, closure)) {
      await db.query(`ALTER ${o.kind} ${o.name} OWNER TO CURRENT_USER`);
      log.push({ do: 'owner', ...o });
    }
    // Grants made by a fenced role (with grant option) depend on that role's own: revoke them first.
    const grants = (await writeGrants(db, closure)).sort((a, b) => Number(closure.includes(b.grantor)) - Number(closure.includes(a.grantor)));
    for (const g of grants) {
      await asRole(db, me.u, g.grantor, grantSql(g, 'REVOKE'));
      log.push({ do: 'grant', ...g });
    }
    const fencedBefore = new Set(prev.rows[0]?.roles ?? []);
    for (const role of roles.filter((r) => !fencedBefore.has(r))) {
      const s = await db.query<{ v: string | null }>(
        `SELECT (SELECT substr(c, length('default_transaction_read_only=') + 1) FROM unnest(s.setconfig) c WHERE c LIKE 'default\\_transaction\\_read\\_only=%') AS v
           FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole JOIN pg_database d ON d.oid = s.setdatabase
          WHERE r.rolname = $1 AND d.datname = current_database()`,
        [role],
      );
      log.push({ do: 'setting', role, previous: s.rows[0]?.v ?? null });
      await db.query(`ALTER ROLE ${quoteIdent(role)} IN DATABASE ${quoteIdent(me.d)} SET default_transaction_read_only = on`);
    }
    const all = [...new Set([...fencedBefore, ...roles])];
    await db.query(
      `INSERT INTO pgcutover_control.fence (one, roles, changes) VALUES (true, $1, $2::jsonb)
       ON CONFLICT (one) DO UPDATE SET roles = excluded.roles, changes = excluded.changes`,
      [all, JSON.stringify(log)],
    );
    const left = await remainingWriteRights(db, roles);
    if (left.length > 0) throw new Error(`the fence does not hold, nothing was changed: ${left.slice(0, 10).join('; ')}${left.length > 10 ? ` (+${left.length - 10})` : ''}`);
    if (record) await recordWriter(db, record.lock, record.writer, true);
    return log.length - before;
  });
  const login = closure;
  let terminated = await terminateSessions(db, login);
  // A login that read the role's rights just before the fence committed may not have been listed yet.
  terminated += await terminateSessions(db, login);
  return { roles, changes, terminated, ms: Date.now() - started };
}

export interface UnfenceReport {
  readonly roles: readonly string[];
  /** Changes given back. */
  readonly restored: number;
  /** Changes that could not be given back (object dropped or renamed meanwhile), with the error. */
  readonly failed: readonly string[];
  /** Sessions opened under the fence, ended so their read-only default does not outlive it. */
  readonly replaced: number;
  readonly ms: number;
}

/** Gives back exactly what the fence took on this database (in reverse order). Idempotent. */
export async function unfence(db: Db, roles: readonly string[] = [], record?: FenceRecord): Promise<UnfenceReport> {
  const started = Date.now();
  await ensureControlSchema(db);
  const out = await inTransaction(db, async () => {
    const me = (await db.query<{ u: string; d: string }>('SELECT current_user AS u, current_database() AS d')).rows[0]!;
    const row = (await db.query<{ roles: string[]; changes: Change[]; at: string }>('SELECT roles, changes, fenced_at::text AS at FROM pgcutover_control.fence')).rows[0];
    const failed: string[] = [];
    let restored = 0;
    for (const c of [...(row?.changes ?? [])].reverse()) {
      const sql =
        c.do === 'owner' ? `ALTER ${c.kind} ${c.name} OWNER TO ${quoteIdent(c.owner)}`
        : c.do === 'grant' ? grantSql(c, 'GRANT')
        : c.previous === null ? `ALTER ROLE ${quoteIdent(c.role)} IN DATABASE ${quoteIdent(me.d)} RESET default_transaction_read_only`
        : `ALTER ROLE ${quoteIdent(c.role)} IN DATABASE ${quoteIdent(me.d)} SET default_transaction_read_only = ${quoteLiteral(c.previous)}`;
      await db.query('SAVEPOINT give_back');
      try {
        await asRole(db, me.u, c.do === 'grant' ? c.grantor : me.u, sql);
        await db.query('RELEASE SAVEPOINT give_back');
        restored++;
      } catch (err) {
        await db.query('ROLLBACK TO SAVEPOINT give_back');
        failed.push(`${sql}: ${(err as Error).message}`);
      }
    }
    await db.query('DELETE FROM pgcutover_control.fence');
    if (record) await recordWriter(db, record.lock, record.writer, false);
    return { restored, failed, roles: row?.roles ?? roles, at: row?.at ?? null };
  });
  // Sessions that logged in under the fence carry default_transaction_read_only = on for life: end them, so
  // the proxy's next link is opened with the rights given back.
  const replaced = out.at ? await terminateSessions(db, out.roles, 5000, out.at) : 0;
  return { roles: out.roles, restored: out.restored, failed: out.failed, replaced, ms: Date.now() - started };
}

/** Roles fenced on this database (per the fence record). */
export async function fencedRoles(db: Db, roles: readonly string[]): Promise<string[]> {
  await ensureControlSchema(db);
  const r = await db.query<{ roles: string[] }>('SELECT roles FROM pgcutover_control.fence');
  const fenced = new Set(r.rows[0]?.roles ?? []);
  return roles.filter((x) => fenced.has(x));
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
