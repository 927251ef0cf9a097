/**
 * What the fence (src/replication/fence.ts) reads from the catalogs: which roles an application role can act
 * as, whether it can be fenced at all, what it owns and which write privileges it (or PUBLIC) holds.
 * A session can use the privileges of every role it is a member of (SET ROLE, or INHERIT), so the fence works
 * on that closure, not on the login role alone (https://www.postgresql.org/docs/15/role-membership.html).
 */
import type { Db } from './control-conn.js';

/** Schema of the control plane's own tables (fence record, writer record); never fenced, never replicated. */
export const CONTROL_SCHEMA = 'pgcutover_control';

/** Schemas whose objects the fence covers: every user schema except our own. */
export const USER_SCHEMA_FILTER = `n.nspname NOT IN ('pg_catalog', 'information_schema', '${CONTROL_SCHEMA}') AND n.nspname NOT LIKE 'pg\\_%'`;

/** `appRoles` and every role they are members of, directly or not (names). */
export async function roleClosure(db: Db, appRoles: readonly string[]): Promise<string[]> {
  const r = await db.query<{ rolname: string }>(
    `WITH RECURSIVE c(oid) AS (
       SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[])
       UNION SELECT m.roleid FROM pg_auth_members m JOIN c ON m.member = c.oid)
     SELECT r.rolname FROM c JOIN pg_roles r ON r.oid = c.oid ORDER BY 1`,
    [appRoles],
  );
  return r.rows.map((x) => x.rolname);
}

/**
 * Why `appRoles` cannot be fenced on this server, one line per problem with its fix; empty when they can.
 * Unfenceable: a superuser (privileges do not apply), CREATEROLE (can grant itself any role back), a member of
 * the control role or of pg_write_all_data, the control role itself, a role that does not exist, or no role.
 */
export async function fenceProblems(db: Db, appRoles: readonly string[]): Promise<string[]> {
  if (appRoles.length === 0) return ['no application role to fence: the fence would fence nothing (set --app-roles, or log the proxy in as a non-superuser application role)'];
  const out: string[] = [];
  const me = (await db.query<{ u: string; su: boolean }>(`SELECT current_user AS u, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS su`)).rows[0]!;
  const have = await db.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[])', [appRoles]);
  for (const role of appRoles) {
    if (!have.rows.some((x) => x.rolname === role)) out.push(`application role ${role} does not exist on this server: create it, or remove it from --app-roles`);
    if (role === me.u) out.push(`application role ${role} is the control role: give the control plane its own role (--source-control/--target-control) so the fence can take ${role}'s write rights`);
  }
  const closure = await roleClosure(db, appRoles);
  const flags = await db.query<{ rolname: string; rolsuper: boolean; rolcreaterole: boolean }>(
    'SELECT rolname, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = ANY($1::text[]) ORDER BY 1',
    [closure],
  );
  for (const f of flags.rows) {
    const via = appRoles.includes(f.rolname) ? '' : ` (an application role is a member of it)`;
    if (f.rolsuper) out.push(`role ${f.rolname}${via} is a superuser, which no privilege can fence: ALTER ROLE ${f.rolname} NOSUPERUSER, or log the proxy in as a non-superuser role`);
    if (f.rolcreaterole) out.push(`role ${f.rolname}${via} has CREATEROLE and could grant its rights back: ALTER ROLE ${f.rolname} NOCREATEROLE`);
    if (f.rolname === 'pg_write_all_data') out.push(`an application role is a member of pg_write_all_data: REVOKE pg_write_all_data FROM it`);
    if (f.rolname === me.u && !appRoles.includes(f.rolname)) out.push(`an application role is a member of the control role ${me.u}: revoke that membership`);
  }
  if (!me.su) {
    // Taking ownership away (and giving it back) needs membership in the owner's role.
    const owners = await db.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_roles r WHERE r.rolname = ANY($1::text[]) AND NOT pg_has_role(current_user, r.oid, 'USAGE')`,
      [closure],
    );
    for (const o of owners.rows) out.push(`the control role ${me.u} is neither a superuser nor a member of ${o.rolname}, so it cannot take and give back what ${o.rolname} owns: GRANT ${o.rolname} TO ${me.u}`);
  }
  return out;
}

export interface OwnedObject {
  /** ALTER <kind> … OWNER TO: TABLE, SEQUENCE, VIEW, MATERIALIZED VIEW, FOREIGN TABLE, SCHEMA. */
  readonly kind: string;
  /** Quoted, schema-qualified name (a schema: its quoted name). */
  readonly name: string;
  readonly owner: string;
}

/**
 * Objects owned by a fenced role: an owner can grant itself any privilege back, and a schema owner can drop
 * what the schema holds. Sequences owned by a table column (serial, identity) follow their table.
 */
export async function ownedObjects(db: Db, closure: readonly string[]): Promise<OwnedObject[]> {
  const rels = await db.query<{ kind: string; name: string; owner: string }>(
    `SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END AS kind,
            format('%I.%I', n.nspname, c.relname) AS name, o.rolname AS owner
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_roles o ON o.oid = c.relowner
      WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f') AND ${USER_SCHEMA_FILTER} AND o.rolname = ANY($1::text[])
        AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')))
      ORDER BY 2`,
    [closure],
  );
  const schemas = await db.query<{ name: string; owner: string }>(
    `SELECT format('%I', n.nspname) AS name, o.rolname AS owner FROM pg_namespace n JOIN pg_roles o ON o.oid = n.nspowner
      WHERE ${USER_SCHEMA_FILTER} AND o.rolname = ANY($1::text[]) ORDER BY 1`,
    [closure],
  );
  return [...rels.rows, ...schemas.rows.map((s) => ({ kind: 'SCHEMA', ...s }))];
}

export interface WriteGrant {
  /** TABLE (any relation, incl. sequences' UPDATE) or SCHEMA (CREATE). */
  readonly on: 'TABLE' | 'SCHEMA';
  readonly name: string;
  /** Column name for a column privilege. */
  readonly column: string | null;
  /** Role name, or PUBLIC. */
  readonly grantee: string;
  readonly grantor: string;
  readonly privilege: string;
  readonly grantable: boolean;
}

/**
 * Write privileges held by a fenced role or PUBLIC: INSERT, UPDATE, DELETE, TRUNCATE on relations (UPDATE on a
 * sequence is setval), INSERT and UPDATE on columns, CREATE on schemas. Read from the ACLs themselves, with
 * their grantor, so each can be revoked and given back exactly.
 */
export async function writeGrants(db: Db, closure: readonly string[]): Promise<WriteGrant[]> {
  const grantee = `CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END`;
  const who = `(a.grantee = 0 OR pg_get_userbyid(a.grantee) = ANY($1::text[]))`;
  const r = await db.query<WriteGrant>(
    `SELECT 'TABLE' AS on, format('%I.%I', n.nspname, c.relname) AS name, NULL::text AS column, ${grantee} AS grantee,
            pg_get_userbyid(a.grantor) AS grantor, a.privilege_type AS privilege, a.is_grantable AS grantable
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
      WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f') AND ${USER_SCHEMA_FILTER} AND ${who}
        AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
     UNION ALL
     SELECT 'TABLE', format('%I.%I', n.nspname, c.relname), t.attname::text, ${grantee}, pg_get_userbyid(a.grantor), a.privilege_type, a.is_grantable
       FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(t.attacl) a
      WHERE t.attacl IS NOT NULL AND NOT t.attisdropped AND ${USER_SCHEMA_FILTER} AND ${who} AND a.privilege_type IN ('INSERT', 'UPDATE')
     UNION ALL
     SELECT 'SCHEMA', format('%I', n.nspname), NULL, ${grantee}, pg_get_userbyid(a.grantor), a.privilege_type, a.is_grantable
       FROM pg_namespace n, aclexplode(n.nspacl) a
      WHERE ${USER_SCHEMA_FILTER} AND ${who} AND a.privilege_type = 'CREATE'
     ORDER BY 1, 2, 3, 4, 6`,
    [closure],
  );
  return r.rows;
}

/**
 * After the fence: what each application role can still write, as the server itself judges it
 * (has_table_privilege and friends follow memberships, ownership and PUBLIC). Empty when the fence holds.
 */
export async function remainingWriteRights(db: Db, appRoles: readonly string[]): Promise<string[]> {
  const r = await db.query<{ line: string }>(
    `SELECT format('%s can write %s.%s', u.rolname, n.nspname, c.relname) AS line
       FROM pg_roles u, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE u.rolname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND ${USER_SCHEMA_FILTER}
        AND (has_table_privilege(u.oid, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') OR has_any_column_privilege(u.oid, c.oid, 'INSERT, UPDATE')
             OR pg_has_role(u.oid, c.relowner, 'USAGE'))
     UNION ALL
     SELECT format('%s can create in schema %s', u.rolname, n.nspname)
       FROM pg_roles u, pg_namespace n
      WHERE u.rolname = ANY($1::text[]) AND ${USER_SCHEMA_FILTER} AND (has_schema_privilege(u.oid, n.oid, 'CREATE') OR pg_has_role(u.oid, n.nspowner, 'USAGE'))
     ORDER BY 1`,
    [appRoles],
  );
  return r.rows.map((x) => x.line);
}
