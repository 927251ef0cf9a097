/**
 * Gate 1's role parity (issue 15 item 3): clients run as their own roles on both backends, so after the switch
 * each application role must exist on the target with the same memberships and the same privileges, and, for
 * SCRAM pass-through, the same secret (the proxy's ClientKey only opens a verifier with the same salt).
 * Application roles: those that can log in, are not superusers and are not pg_* roles.
 * Fetching is I/O; the comparison is a pure function of the two snapshots.
 */
import type { Db } from './control-conn.js';
import { criterion, type Criterion } from '../domain/gate-result.js';

export interface RoleSnapshot {
  /** Application role → sorted roles it is a member of. */
  memberships: Map<string, string[]>;
  /** Application role → sorted privileges, `<privilege> ON <object>`. */
  privileges: Map<string, string[]>;
  /** Application role → pg_authid secret; null when pg_authid is not readable (not a superuser, RDS). */
  secrets: Map<string, string | null> | null;
}

const APP_ROLES = `SELECT rolname FROM pg_roles WHERE rolcanlogin AND NOT rolsuper AND rolname NOT LIKE 'pg\\_%'`;

export async function roleSnapshot(db: Db): Promise<RoleSnapshot> {
  const roles = (await db.query<{ rolname: string }>(APP_ROLES)).rows.map((r) => r.rolname);
  const memberships = new Map<string, string[]>(roles.map((r) => [r, []]));
  const privileges = new Map<string, string[]>(roles.map((r) => [r, []]));
  const m = await db.query<{ member: string; grp: string }>(
    `SELECT r.rolname AS member, g.rolname AS grp FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.member JOIN pg_roles g ON g.oid = a.roleid ORDER BY 1, 2`,
  );
  for (const row of m.rows) memberships.get(row.member)?.push(row.grp);
  // Privileges granted directly on relations, sequences, schemas and the current database.
  const p = await db.query<{ grantee: string; what: string }>(`
    SELECT a.grantee::regrole::text AS grantee, a.privilege_type || ' ON ' || c.relnamespace::regnamespace::text || '.' || c.relname AS what
      FROM pg_class c, aclexplode(c.relacl) a
     WHERE c.relkind IN ('r', 'v', 'm', 'S', 'p', 'f') AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND a.grantee <> 0
    UNION ALL
    SELECT a.grantee::regrole::text, a.privilege_type || ' ON SCHEMA ' || n.nspname
      FROM pg_namespace n, aclexplode(n.nspacl) a WHERE a.grantee <> 0 AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
    UNION ALL
    SELECT a.grantee::regrole::text, a.privilege_type || ' ON DATABASE ' || d.datname
      FROM pg_database d, aclexplode(d.datacl) a WHERE a.grantee <> 0 AND d.datname = current_database()
    ORDER BY 1, 2`);
  for (const row of p.rows) privileges.get(row.grantee.replace(/^"(.*)"$/, '$1'))?.push(row.what);
  let secrets: Map<string, string | null> | null = null;
  try {
    const s = await db.query<{ rolname: string; rolpassword: string | null }>(`SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)`, [roles]);
    secrets = new Map(s.rows.map((r) => [r.rolname, r.rolpassword]));
  } catch {
    secrets = null;
  }
  return { memberships, privileges, secrets };
}

function differences(name: string, src: string[], tgt: string[]): string | null {
  const missing = src.filter((x) => !tgt.includes(x));
  const extra = tgt.filter((x) => !src.includes(x));
  if (missing.length === 0 && extra.length === 0) return null;
  return `${name}: ${[missing.length ? `missing on target ${missing.join(', ')}` : '', extra.length ? `only on target ${extra.join(', ')}` : ''].filter(Boolean).join('; ')}`;
}

/**
 * @param sameSecrets judge the secrets (SCRAM pass-through or --auth-lookup in use); otherwise they are reported.
 */
export function compareRoles(src: RoleSnapshot, tgt: RoleSnapshot, sameSecrets: boolean): Criterion[] {
  const onTarget = [...src.memberships.keys()].filter((r) => tgt.memberships.has(r));
  const member = onTarget.map((r) => differences(r, src.memberships.get(r)!, tgt.memberships.get(r)!)).filter((x): x is string => x !== null);
  const grants = onTarget.map((r) => differences(r, src.privileges.get(r)!, tgt.privileges.get(r)!)).filter((x): x is string => x !== null);
  const out = [
    criterion('application roles: memberships differ on the target', member.length, 0, member.length === 0, member.join('\n') || undefined),
    criterion('application roles: privileges differ on the target', grants.length, 0, grants.length === 0, grants.join('\n') || undefined),
  ];
  if (src.secrets === null || tgt.secrets === null) {
    out.push(criterion('application roles: same secret on the target (SCRAM pass-through)', null, sameSecrets ? 0 : 'reported', !sameSecrets, 'pg_authid not readable with the control login: secrets not compared'));
    return out;
  }
  const differ = onTarget.filter((r) => (src.secrets!.get(r) ?? null) !== (tgt.secrets!.get(r) ?? null));
  out.push(
    criterion('application roles: same secret on the target (SCRAM pass-through)', differ.length, sameSecrets ? 0 : 'reported', !sameSecrets || differ.length === 0,
      differ.length ? `another secret (salt) on the target for ${differ.join(', ')}: clients logged in by pass-through cannot log in there as themselves; copy pg_authid.rolpassword from the source` : undefined),
  );
  return out;
}
