/**
 * Schema drift between the two sides, for gate 2: tables, columns (type, NOT NULL, default), constraints,
 * indexes, sequences (type and parameters, not their position: logical replication does not carry it) and
 * extensions (by name: versions legitimately differ between majors). Reading is one query per kind on
 * each side; the diff is pure. Objects owned by an extension, system schemas and pg-cutover's own
 * heartbeat table are left out.
 */
import type { Db } from './control-conn.js';

export const SCHEMA_KINDS = ['tables', 'columns', 'constraints', 'indexes', 'sequences', 'extensions'] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

/** Per kind: object name → its definition text. */
export type SchemaSnapshot = Readonly<Record<SchemaKind, ReadonlyMap<string, string>>>;

export interface SchemaDifference {
  readonly kind: SchemaKind;
  readonly name: string;
  readonly what: 'missing on target' | 'only on target' | 'differs';
  readonly source?: string;
  readonly target?: string;
}

const USER_NS = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`;
const NOT_EXT = (oid: string) => `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = ${oid} AND d.deptype = 'e')`;
const NOT_HEARTBEAT = `NOT (n.nspname = 'public' AND c.relname = 'pgcutover_heartbeat')`;

const QUERIES: Record<SchemaKind, string> = {
  tables: `SELECT format('%I.%I', n.nspname, c.relname) AS name, CASE c.relkind WHEN 'p' THEN 'partitioned table' ELSE 'table' END AS def
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND ${USER_NS} AND ${NOT_EXT('c.oid')} AND ${NOT_HEARTBEAT}`,
  columns: `SELECT format('%I.%I.%I', n.nspname, c.relname, a.attname) AS name,
                   format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                   || coalesce(' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid), '')
                   || CASE a.attgenerated WHEN 's' THEN ' GENERATED' ELSE '' END
                   || CASE WHEN a.attidentity IN ('a', 'd') THEN ' IDENTITY' ELSE '' END AS def
              FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
             WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped AND ${USER_NS} AND ${NOT_EXT('c.oid')} AND ${NOT_HEARTBEAT}`,
  constraints: `SELECT format('%I.%I.%I', n.nspname, c.relname, k.conname) AS name, pg_get_constraintdef(k.oid) AS def
                  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE ${USER_NS} AND ${NOT_EXT('c.oid')} AND ${NOT_HEARTBEAT}`,
  indexes: `SELECT format('%I.%I', n.nspname, c.relname) AS name, pg_get_indexdef(c.oid) AS def
              FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_class tc ON tc.oid = i.indrelid
             WHERE ${USER_NS} AND ${NOT_EXT('tc.oid')} AND NOT (n.nspname = 'public' AND tc.relname = 'pgcutover_heartbeat')`,
  sequences: `SELECT format('%I.%I', schemaname, sequencename) AS name,
                     format('%s start %s increment %s min %s max %s cache %s%s', data_type, start_value, increment_by, min_value, max_value, cache_size,
                            CASE WHEN cycle THEN ' cycle' ELSE '' END) AS def
                FROM pg_sequences s
               WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                  WHERE n.nspname = s.schemaname AND c.relname = s.sequencename AND NOT ${NOT_EXT('c.oid')})`,
  extensions: `SELECT extname AS name, 'extension' AS def FROM pg_extension WHERE extname <> 'plpgsql'`,
};

export async function readSchema(db: Db): Promise<SchemaSnapshot> {
  const out = {} as Record<SchemaKind, Map<string, string>>;
  for (const kind of SCHEMA_KINDS) {
    const r = await db.query<{ name: string; def: string }>(QUERIES[kind]);
    out[kind] = new Map(r.rows.map((x) => [x.name, x.def]));
  }
  return out;
}

/** Pure: every object missing, extra or defined differently on the target, by kind and name. */
export function diffSchemas(source: SchemaSnapshot, target: SchemaSnapshot, ignore: (name: string) => boolean = () => false): SchemaDifference[] {
  const out: SchemaDifference[] = [];
  for (const kind of SCHEMA_KINDS) {
    const a = source[kind];
    const b = target[kind];
    for (const [name, def] of a) {
      if (ignore(name)) continue;
      const other = b.get(name);
      if (other === undefined) out.push({ kind, name, what: 'missing on target', source: def });
      else if (other !== def) out.push({ kind, name, what: 'differs', source: def, target: other });
    }
    for (const [name, def] of b) if (!a.has(name) && !ignore(name)) out.push({ kind, name, what: 'only on target', target: def });
  }
  return out;
}

export function showSchemaDifference(d: SchemaDifference): string {
  switch (d.what) {
    case 'missing on target':
      return `${d.name} missing on target (${d.source})`;
    case 'only on target':
      return `${d.name} only on target (${d.target})`;
    case 'differs':
      return `${d.name}: source ${d.source} / target ${d.target}`;
    default: {
      const never: never = d.what;
      throw new Error(`unknown schema difference ${String(never)}`);
    }
  }
}
