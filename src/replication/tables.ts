/** Which tables replication and validation work on, read from the catalogs. */
import type { Db } from './control-conn.js';
import { parseTableName, type QualifiedName } from './sql.js';

export type TableSelection = 'all' | readonly string[];

/**
 * Ordinary, non-partition tables of user schemas, sorted by schema and name. Partitioned tables
 * are left out: publishing them needs their partitions on the subscriber too.
 */
export async function listUserTables(db: Db): Promise<QualifiedName[]> {
  const r = await db.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pgcutover_control') AND n.nspname NOT LIKE 'pg\\_%'
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
      ORDER BY 1, 2`,
  );
  return r.rows.map((x) => ({ schema: x.schema, name: x.name }));
}

/** Resolves a selection against the catalog; names that do not exist are errors. */
export async function resolveTables(db: Db, sel: TableSelection): Promise<{ tables: QualifiedName[]; missing: string[] }> {
  const all = await listUserTables(db);
  if (sel === 'all') return { tables: all, missing: [] };
  const key = (t: QualifiedName) => `${t.schema}\u0000${t.name}`;
  const have = new Set(all.map(key));
  const tables: QualifiedName[] = [];
  const missing: string[] = [];
  for (const text of sel) {
    const t = parseTableName(text);
    if (have.has(key(t))) {
      if (!tables.some((x) => key(x) === key(t))) tables.push(t);
    } else missing.push(text);
  }
  return { tables, missing };
}

/** The tables a publication publishes (pg_publication_tables), sorted. */
export async function publicationTables(db: Db, publication: string): Promise<QualifiedName[]> {
  const r = await db.query<{ schema: string; name: string }>(
    `SELECT schemaname AS schema, tablename AS name FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2`,
    [publication],
  );
  return r.rows.map((x) => ({ schema: x.schema, name: x.name }));
}

/** Which of `tables` exist on `db`. */
export async function existingTables(db: Db, tables: readonly QualifiedName[]): Promise<QualifiedName[]> {
  if (tables.length === 0) return [];
  const r = await db.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM unnest($1::text[], $2::text[]) AS w(schema, name)
       JOIN pg_namespace n ON n.nspname = w.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name AND c.relkind IN ('r', 'p')`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return r.rows.map((x) => ({ schema: x.schema, name: x.name }));
}
