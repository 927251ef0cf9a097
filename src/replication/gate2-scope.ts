/**
 * What gate 2 covers: every table of the application schemas on both sides (published or not), the schema
 * diff, the operator's exclusions and accepted differences (each with a reason), and whether each compared
 * table can be replicated (a primary key, or REPLICA IDENTITY FULL / USING INDEX).
 */
import type { Db } from './control-conn.js';
import { criterion, type Criterion } from '../domain/gate-result.js';
import { HEARTBEAT_TABLE } from './heartbeat.js';
import { diffSchemas, readSchema, SCHEMA_KINDS, showSchemaDifference } from './schema-diff.js';
import { parseTableName, type QualifiedName } from './sql.js';
import type { TableNote } from './table-notes.js';
import { listUserTables, publicationTables, resolveTables, existingTables, type TableSelection } from './tables.js';

const keyOf = (t: QualifiedName) => `${t.schema}.${t.name}`;
const noteKey = (n: TableNote) => keyOf(parseTableName(n.table));

export type { TableNote };

export interface Scope {
  readonly tables: QualifiedName[];
  readonly criteria: Criterion[];
  /** Accepted differences by `schema.name`. */
  readonly accepted: ReadonlyMap<string, string>;
}

export interface ScopeOptions {
  tables?: TableSelection;
  publication: string;
  /** Whether the publication exists (coverage is judged against it). */
  published: boolean;
  exclude?: readonly TableNote[];
  accept?: readonly TableNote[];
}

function excludedCriteria(exclude: readonly TableNote[], accept: readonly TableNote[]): Criterion[] {
  return [
    ...exclude.map((n) => criterion(`excluded ${n.table}`, 'not compared', 'operator exclusion', true, `reason: ${n.reason}`)),
    ...accept.map((n) => criterion(`accepted ${n.table}`, 'differences accepted', 'operator acceptance', true, `reason: ${n.reason}`)),
  ];
}

export async function gate2Scope(s: Db, t: Db, o: ScopeOptions): Promise<Scope> {
  const exclude = o.exclude ?? [];
  const accept = o.accept ?? [];
  const excluded = new Set(exclude.map(noteKey));
  const accepted = new Map(accept.map((n) => [noteKey(n), n.reason]));
  const skip = (x: QualifiedName) => (x.schema === 'public' && x.name === HEARTBEAT_TABLE) || excluded.has(keyOf(x));
  const c: Criterion[] = excludedCriteria(exclude, accept);
  if (o.tables) {
    const r = await resolveTables(s, o.tables);
    for (const m of r.missing) c.push(criterion(`table ${m}`, 'missing on source', 'exists', false));
    const wanted = r.tables.filter((x) => !skip(x));
    const there = new Set((await existingTables(t, wanted)).map(keyOf));
    for (const x of wanted.filter((x) => !there.has(keyOf(x)))) c.push(criterion(`table ${keyOf(x)}`, 'missing on target', 'on both sides', false));
    return { tables: wanted.filter((x) => there.has(keyOf(x))), criteria: [...c, ...(await identityCriteria(s, wanted))], accepted };
  }
  const [src, tgt] = await Promise.all([listUserTables(s), listUserTables(t)]).then(([a, b]) => [a.filter((x) => !skip(x)), b.filter((x) => !skip(x))]);
  const onTarget = new Set(tgt.map(keyOf));
  const onSource = new Set(src.map(keyOf));
  const both = src.filter((x) => onTarget.has(keyOf(x)));
  const missing = src.filter((x) => !onTarget.has(keyOf(x))).map(keyOf);
  const extra = tgt.filter((x) => !onSource.has(keyOf(x))).map(keyOf);
  c.push(criterion('tables on both sides', `${both.length}/${both.length + missing.length + extra.length}`, 'all', missing.length + extra.length === 0,
    [missing.length ? `missing on target: ${missing.join(', ')}` : '', extra.length ? `only on target: ${extra.join(', ')}` : ''].filter(Boolean).join('\n') || undefined));
  if (o.published) {
    const pub = new Set((await publicationTables(s, o.publication)).map(keyOf));
    const unpublished = src.filter((x) => !pub.has(keyOf(x))).map(keyOf);
    c.push(criterion(`tables not in publication ${o.publication}`, unpublished.length, 0, unpublished.length === 0,
      unpublished.length ? `${unpublished.join(', ')}: their changes do not reach the target (add them, or exclude them with a reason)` : undefined));
  }
  const [ss, ts] = await Promise.all([readSchema(s), readSchema(t)]);
  const ignored = [...excluded].map((k) => k.split('.').map((p) => (/^[a-z_][a-z0-9_]*$/.test(p) ? p : `"${p.replace(/"/g, '""')}"`)).join('.'));
  const diffs = diffSchemas(ss, ts, (name) => ignored.some((k) => name === k || name.startsWith(`${k}.`)));
  for (const kind of SCHEMA_KINDS.filter((k) => k !== 'tables')) {
    const d = diffs.filter((x) => x.kind === kind);
    c.push(criterion(`schema ${kind}`, d.length === 0 ? 'same' : `${d.length} different`, 'same', d.length === 0,
      d.length ? d.slice(0, 30).map(showSchemaDifference).join('\n') + (d.length > 30 ? `\n… ${d.length - 30} more` : '') : `${ss[kind].size} compared`));
  }
  return { tables: both, criteria: [...c, ...(await identityCriteria(s, both))], accepted };
}

/**
 * Tables logical replication cannot carry UPDATE/DELETE for: no primary key and replica identity DEFAULT
 * (or NOTHING). REPLICA IDENTITY FULL and USING INDEX are what `replicate setup` suggests, so they pass.
 */
async function identityCriteria(s: Db, tables: readonly QualifiedName[]): Promise<Criterion[]> {
  if (tables.length === 0) return [criterion('tables without a replica identity', 0, 0, true)];
  const r = await s.query<{ name: string; ident: string; pk: boolean }>(
    `SELECT format('%s.%s', w.schema, w.name) AS name, c.relreplident AS ident,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk
       FROM unnest($1::text[], $2::text[]) AS w(schema, name)
       JOIN pg_namespace n ON n.nspname = w.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name`,
    [tables.map((x) => x.schema), tables.map((x) => x.name)],
  );
  const none = r.rows.filter((x) => x.ident === 'n' || (x.ident === 'd' && !x.pk)).map((x) => x.name);
  const full = r.rows.filter((x) => x.ident === 'f').map((x) => x.name);
  const idx = r.rows.filter((x) => x.ident === 'i').map((x) => x.name);
  const notes = [
    none.length ? `${none.join(', ')}: logical replication cannot carry their UPDATE/DELETE (add a primary key, or REPLICA IDENTITY FULL / USING INDEX)` : '',
    full.length ? `REPLICA IDENTITY FULL: ${full.join(', ')}` : '',
    idx.length ? `REPLICA IDENTITY USING INDEX: ${idx.join(', ')}` : '',
  ].filter(Boolean);
  return [criterion('tables without a replica identity', none.length, 0, none.length === 0, notes.join('\n') || undefined)];
}
