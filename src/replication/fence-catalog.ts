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
  /**
   * TABLE (any relation, incl. sequences' UPDATE), SEQUENCE (USAGE: nextval), SCHEMA (CREATE), or ROUTINE
   * (EXECUTE on a SECURITY DEFINER routine owned by a role outside the fence, or on a large-object writer).
   */
  readonly on: 'TABLE' | 'SEQUENCE' | 'SCHEMA' | 'ROUTINE';
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
 * The large-object functions that write (pg_largeobject, pg_largeobject_metadata). Creating a large object needs
 * no privilege on PostgreSQL 14/15, so the fence takes EXECUTE on these from PUBLIC (and the fenced roles) on
 * the fenced database; only a superuser control role can (their grantor is the bootstrap superuser).
 */
export const LARGE_OBJECT_WRITERS = [
  'lo_creat(integer)', 'lo_create(oid)', 'lo_import(text)', 'lo_import(text,oid)', 'lo_from_bytea(oid,bytea)', 'lowrite(integer,bytea)',
  'lo_put(oid,bigint,bytea)', 'lo_truncate(integer,integer)', 'lo_truncate64(integer,bigint)', 'lo_unlink(oid)',
] as const;
const LO_OIDS = `ARRAY[${LARGE_OBJECT_WRITERS.map((f) => `'pg_catalog.${f}'::regprocedure::oid`).join(', ')}]`;
const I_AM_SUPERUSER = `(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`;

/**
 * Write privileges held by a fenced role or PUBLIC: INSERT, UPDATE, DELETE, TRUNCATE on relations (UPDATE on a
 * sequence is setval), USAGE on sequences (nextval), INSERT and UPDATE on columns, CREATE on schemas, EXECUTE on
 * SECURITY DEFINER routines owned by a role outside the fence (they run with their owner's rights) and on the
 * large-object writers. Read from the ACLs themselves (a routine's default ACL made explicit), with their
 * grantor, so each can be revoked and given back.
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
     SELECT 'SEQUENCE', format('%I.%I', n.nspname, c.relname), NULL, ${grantee}, pg_get_userbyid(a.grantor), a.privilege_type, a.is_grantable
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
      WHERE c.relkind = 'S' AND ${USER_SCHEMA_FILTER} AND ${who} AND a.privilege_type = 'USAGE'
     UNION ALL
     SELECT 'SCHEMA', format('%I', n.nspname), NULL, ${grantee}, pg_get_userbyid(a.grantor), a.privilege_type, a.is_grantable
       FROM pg_namespace n, aclexplode(n.nspacl) a
      WHERE ${USER_SCHEMA_FILTER} AND ${who} AND a.privilege_type = 'CREATE'
     UNION ALL
     SELECT 'ROUTINE', format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), NULL, ${grantee},
            pg_get_userbyid(a.grantor), a.privilege_type, a.is_grantable
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
      WHERE a.privilege_type = 'EXECUTE' AND ${who}
        AND ((p.prosecdef AND ${USER_SCHEMA_FILTER} AND pg_get_userbyid(p.proowner) <> ALL($1::text[]))
             OR (p.oid = ANY(${LO_OIDS}) AND ${I_AM_SUPERUSER}))
     ORDER BY 1, 2, 3, 4, 6`,
    [closure],
  );
  return r.rows;
}

/**
 * After the fence: what each application role can still write, as the server itself judges it
 * (has_table_privilege and friends follow memberships, ownership and PUBLIC). Empty when the fence holds. A
 * SECURITY DEFINER routine owned by a fenced role runs with that role's (fenced) rights: not a way out.
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
     UNION ALL
     SELECT format('%s can advance sequence %s.%s', u.rolname, n.nspname, c.relname)
       FROM pg_roles u, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE u.rolname = ANY($1::text[]) AND c.relkind = 'S' AND ${USER_SCHEMA_FILTER}
        AND (has_sequence_privilege(u.oid, c.oid, 'USAGE, UPDATE') OR pg_has_role(u.oid, c.relowner, 'USAGE'))
     UNION ALL
     SELECT format('%s can execute %s, SECURITY DEFINER as %s', u.rolname, p.oid::regprocedure, pg_get_userbyid(p.proowner))
       FROM pg_roles u, pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE u.rolname = ANY($1::text[]) AND p.prosecdef AND ${USER_SCHEMA_FILTER} AND pg_get_userbyid(p.proowner) <> ALL($2::text[])
        AND has_function_privilege(u.oid, p.oid, 'EXECUTE')
     UNION ALL
     SELECT format('%s can write large objects with %s', u.rolname, p.oid::regprocedure)
       FROM pg_roles u, pg_proc p
      WHERE u.rolname = ANY($1::text[]) AND p.oid = ANY(${LO_OIDS}) AND ${I_AM_SUPERUSER} AND has_function_privilege(u.oid, p.oid, 'EXECUTE')
     ORDER BY 1`,
    [appRoles, await roleClosure(db, appRoles)],
  );
  return r.rows.map((x) => x.line);
}

/**
 * What the fence cannot cover on this database for `appRoles` (gate 1 names it, with the fix): event triggers
 * whose function runs as a role outside the fence (SECURITY DEFINER) fire on DDL an application role may still
 * run there (CREATE TEMP TABLE); and with a control role that is not a superuser, large objects (their writers'
 * EXECUTE belongs to the bootstrap superuser).
 */
export async function unfenceable(db: Db, appRoles: readonly string[]): Promise<string[]> {
  const closure = await roleClosure(db, appRoles);
  const r = await db.query<{ line: string }>(
    `SELECT format('event trigger %I runs %s as %s (SECURITY DEFINER) on DDL an application role can still run (CREATE TEMP TABLE): ALTER EVENT TRIGGER %I DISABLE for the cutover, or make the function SECURITY INVOKER',
                   e.evtname, p.oid::regprocedure, pg_get_userbyid(p.proowner), e.evtname) AS line
       FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid
      WHERE e.evtenabled <> 'D' AND p.prosecdef AND pg_get_userbyid(p.proowner) <> ALL($1::text[])
     UNION ALL
     SELECT 'large objects: the control role is not a superuser, so the fence cannot take EXECUTE on lo_create/lowrite/lo_put/lo_unlink from PUBLIC; an application role can still create and write large objects on the fenced side (review, or run the control plane as a superuser)'
      WHERE NOT ${I_AM_SUPERUSER}
     ORDER BY 1`,
    [closure],
  );
  return r.rows.map((x) => x.line);
}
