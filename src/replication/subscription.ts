/**
 * Publication and subscription DDL and catalog reads shared by forward (source → target) and
 * reverse (target → source) native logical replication
 * (https://www.postgresql.org/docs/15/logical-replication.html).
 */
import type { Db } from './control-conn.js';
import { serverMajor } from './control-conn.js';
import { qualified, quoteIdent, quoteLiteral, displayName, type QualifiedName } from './sql.js';

/** Returns a reason when `db` cannot be a logical replication publisher, else null. */
export async function publisherProblem(db: Db, side: string): Promise<string | null> {
  const r = await db.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders')`,
  );
  const s = new Map(r.rows.map((x) => [x.name, x.setting]));
  if (s.get('wal_level') !== 'logical') {
    return `${side} has wal_level = ${s.get('wal_level') ?? 'unknown'}; logical replication needs wal_level = logical ` +
      `(postgresql.conf, or rds.logical_replication = 1 in the RDS/Aurora parameter group) and a restart`;
  }
  const used = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_replication_slots');
  const slots = Number(s.get('max_replication_slots') ?? 0);
  if (used.rows[0]!.n >= slots) return `${side} has no free replication slot (max_replication_slots = ${slots}, all used)`;
  return null;
}

/** Tables that cannot publish UPDATE/DELETE: no primary key and no usable replica identity. */
export async function tablesWithoutReplicaIdentity(db: Db, tables: readonly QualifiedName[]): Promise<QualifiedName[]> {
  if (tables.length === 0) return [];
  const r = await db.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM unnest($1::text[], $2::text[]) AS w(schema, name)
       JOIN pg_namespace n ON n.nspname = w.schema
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.name
      WHERE c.relreplident = 'n'
         OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary))
         OR (c.relreplident = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident))
      ORDER BY 1, 2`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return r.rows;
}

export async function publicationExists(db: Db, name: string): Promise<boolean> {
  const r = await db.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [name]);
  return (r.rowCount ?? 0) > 0;
}

/** CREATE PUBLICATION for `tables`, or ALTER it to add the ones it lacks. Returns the tables added. */
export async function ensurePublication(db: Db, name: string, tables: readonly QualifiedName[]): Promise<QualifiedName[]> {
  const list = (ts: readonly QualifiedName[]) => ts.map(qualified).join(', ');
  if (!(await publicationExists(db, name))) {
    await db.query(`CREATE PUBLICATION ${quoteIdent(name)} FOR TABLE ${list(tables)}`);
    return [...tables];
  }
  const have = await db.query<{ schema: string; name: string }>(
    'SELECT schemaname AS schema, tablename AS name FROM pg_publication_tables WHERE pubname = $1',
    [name],
  );
  const key = (t: QualifiedName) => `${t.schema}.${t.name}`;
  const present = new Set(have.rows.map(key));
  const add = tables.filter((t) => !present.has(key(t)));
  if (add.length > 0) await db.query(`ALTER PUBLICATION ${quoteIdent(name)} ADD TABLE ${list(add)}`);
  return add;
}

export async function dropPublication(db: Db, name: string): Promise<void> {
  await db.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(name)}`);
}

export interface SubscriptionSpec {
  readonly name: string;
  /** libpq conninfo or URI the subscriber uses to reach the publisher. */
  readonly conninfo: string;
  readonly publication: string;
  /** Copy existing rows first (the full load). Reverse replication: false. */
  readonly copyData: boolean;
}

export interface SubscriptionRow {
  readonly oid: number;
  readonly name: string;
  readonly enabled: boolean;
  /** Name of its slot on the publisher; null after `SET (slot_name = NONE)`. */
  readonly slot: string | null;
  readonly publications: readonly string[];
}

export async function subscriptionInfo(db: Db, name: string): Promise<SubscriptionRow | null> {
  // Only these columns: subconninfo (it holds a password) is not readable by everyone.
  const r = await db.query<{ oid: number; subname: string; subenabled: boolean; subslotname: string | null; subpublications: string[] }>(
    `SELECT oid::int AS oid, subname, subenabled, subslotname::text AS subslotname, subpublications
       FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
    [name],
  );
  const x = r.rows[0];
  return x ? { oid: x.oid, name: x.subname, enabled: x.subenabled, slot: x.subslotname, publications: x.subpublications } : null;
}

/**
 * CREATE SUBSCRIPTION. It creates the slot on the publisher, which waits for transactions running
 * there to finish (https://www.postgresql.org/docs/15/sql-createsubscription.html); it cannot run
 * inside a transaction block.
 */
export async function createSubscription(db: Db, spec: SubscriptionSpec): Promise<void> {
  await db.query(
    `CREATE SUBSCRIPTION ${quoteIdent(spec.name)} CONNECTION ${quoteLiteral(spec.conninfo)} ` +
      `PUBLICATION ${quoteIdent(spec.publication)} WITH (copy_data = ${spec.copyData ? 'true' : 'false'})`,
  );
}

export async function setSubscriptionEnabled(db: Db, name: string, enabled: boolean): Promise<void> {
  await db.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} ${enabled ? 'ENABLE' : 'DISABLE'}`);
}

export interface DroppedSubscription {
  readonly existed: boolean;
  /** The publisher's slot could not be dropped through the subscription (publisher unreachable): its name, to drop there. */
  readonly orphanSlot: string | null;
}

/**
 * DROP SUBSCRIPTION, which also drops its slot on the publisher. When the publisher cannot be
 * reached, the documented way out is to detach the slot first (DISABLE, `slot_name = NONE`); the
 * slot is then returned for the caller to drop on the publisher, since it would hold WAL forever.
 */
export async function dropSubscription(db: Db, name: string): Promise<DroppedSubscription> {
  const sub = await subscriptionInfo(db, name);
  if (!sub) return { existed: false, orphanSlot: null };
  try {
    await db.query(`DROP SUBSCRIPTION ${quoteIdent(name)}`);
    return { existed: true, orphanSlot: null };
  } catch (err) {
    // 08xxx: could not connect to the publisher. Anything else is not ours to work around.
    if (!/^08/.test(String((err as { code?: unknown }).code ?? ''))) throw err;
    await db.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} DISABLE`);
    await db.query(`ALTER SUBSCRIPTION ${quoteIdent(name)} SET (slot_name = NONE)`);
    await db.query(`DROP SUBSCRIPTION ${quoteIdent(name)}`);
    return { existed: true, orphanSlot: sub.slot };
  }
}

export interface SubscriptionWorker {
  readonly pid: number | null;
  readonly receivedLsn: string | null;
  readonly latestEndLsn: string | null;
  readonly latestEndTime: Date | null;
}

/** The apply worker's row of pg_stat_subscription (table-sync workers have a relid; skipped). */
export async function applyWorker(db: Db, name: string): Promise<SubscriptionWorker> {
  const r = await db.query<{ pid: number | null; received: string | null; latest: string | null; at: Date | null }>(
    `SELECT pid, received_lsn::text AS received, latest_end_lsn::text AS latest, latest_end_time AS at
       FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL`,
    [name],
  );
  const x = r.rows[0];
  return { pid: x?.pid ?? null, receivedLsn: x?.received ?? null, latestEndLsn: x?.latest ?? null, latestEndTime: x?.at ?? null };
}

/** Per-table copy state: i init, d data copy, f copy finished, s synchronized, r ready. */
export type TableSyncState = 'i' | 'd' | 'f' | 's' | 'r';

export async function tableSyncStates(db: Db, subOid: number): Promise<{ table: string; state: TableSyncState }[]> {
  const r = await db.query<{ schema: string; name: string; state: TableSyncState }>(
    `SELECT n.nspname AS schema, c.relname AS name, sr.srsubstate::text AS state
       FROM pg_subscription_rel sr JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE sr.srsubid = $1 ORDER BY 1, 2`,
    [subOid],
  );
  return r.rows.map((x) => ({ table: displayName(x), state: x.state }));
}

/** Cumulative apply and table-sync error counts (PostgreSQL 15+: pg_stat_subscription_stats); null before 15. */
export async function subscriptionErrorCounts(db: Db, name: string): Promise<{ apply: number; sync: number } | null> {
  if ((await serverMajor(db)) < 15) return null;
  const r = await db.query<{ apply: string; sync: string }>(
    'SELECT apply_error_count AS apply, sync_error_count AS sync FROM pg_stat_subscription_stats WHERE subname = $1',
    [name],
  );
  const x = r.rows[0];
  return x ? { apply: Number(x.apply), sync: Number(x.sync) } : { apply: 0, sync: 0 };
}

export interface SlotInfo {
  readonly name: string;
  readonly active: boolean;
  readonly confirmedFlushLsn: string | null;
  /** WAL the slot keeps on the publisher: pg_current_wal_lsn() - restart_lsn. */
  readonly retainedBytes: number | null;
}

export async function slotInfo(db: Db, slot: string): Promise<SlotInfo | null> {
  const r = await db.query<{ active: boolean; confirmed: string | null; retained: string | null }>(
    `SELECT active, confirmed_flush_lsn::text AS confirmed, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text AS retained
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const x = r.rows[0];
  return x ? { name: slot, active: x.active, confirmedFlushLsn: x.confirmed, retainedBytes: x.retained === null ? null : Number(x.retained) } : null;
}

/** Drops a slot left behind by dropSubscription; false if it was not there. */
export async function dropSlot(db: Db, slot: string): Promise<boolean> {
  const r = await db.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
  return (r.rowCount ?? 0) > 0;
}
