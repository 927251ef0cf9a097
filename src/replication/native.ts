/**
 * Native logical replication source → target (PostgreSQL 14 publisher, 15 subscriber): what
 * `pg-cutover replicate setup|status|pause|resume|teardown` does. AWS DMS plays this part in
 * production on AWS; this is the local stand-in and a real option without DMS.
 */
import type pg from 'pg';
import { connectControl, errorText, type Db } from './control-conn.js';
import { flushedWalLsn } from './apply-wait.js';
import { ensureHeartbeatTable, HEARTBEAT_TABLE } from './heartbeat.js';
import { lsnDistance, maxLsn } from './lsn.js';
import { copyTableSchema, type SchemaCopyOptions } from './schema-copy.js';
import { displayName, quoteIdent, type QualifiedName } from './sql.js';
import {
  applyWorker, createSubscription, dropPublication, dropSlot, dropSubscription, ensurePublication, publisherProblem,
  setSubscriptionEnabled, slotInfo, subscriptionErrorCounts, subscriptionInfo, tablesWithoutReplicaIdentity, tableSyncStates,
  type SlotInfo, type SubscriptionWorker, type TableSyncState,
} from './subscription.js';
import { existingTables, publicationTables, resolveTables, type TableSelection } from './tables.js';

import { DEFAULT_PUBLICATION, DEFAULT_SUBSCRIPTION } from './names.js';
export { DEFAULT_PUBLICATION, DEFAULT_SUBSCRIPTION };

export type Result<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export interface ReplicationNames {
  /** Publication on the source. Default `pgcutover`. */
  publication?: string;
  /** Subscription on the target (its slot on the source has the same name). Default `pgcutover`. */
  subscription?: string;
}

export interface NativeSetupOptions extends ReplicationNames {
  /** Tables to replicate: `all` user tables (default) or names (`t`, `schema.t`). */
  tables?: TableSelection;
  /** Create missing tables on the target from the source's DDL (pg_dump). Default true. */
  copySchema?: boolean;
  /** Create and publish the heartbeat table (lag probe). Default true. */
  heartbeat?: boolean;
  /** Copy existing rows (the full load). Default true. */
  copyData?: boolean;
  /** How the target reaches the source, if not by the source URL we use (e.g. another host name). */
  sourceConninfo?: string;
  schemaCopy?: SchemaCopyOptions;
}

export interface SetupReport {
  readonly publication: string;
  readonly subscription: string;
  readonly tables: readonly string[];
  /** Tables created on the target from the source's DDL. */
  readonly schemaCopied: readonly string[];
  /** False when the subscription already existed (setup is idempotent). */
  readonly subscriptionCreated: boolean;
  readonly ms: number;
}

function names(n: ReplicationNames): Required<ReplicationNames> {
  return { publication: n.publication ?? DEFAULT_PUBLICATION, subscription: n.subscription ?? DEFAULT_SUBSCRIPTION };
}

async function withBoth<T>(sourceUrl: string, targetUrl: string, fn: (s: pg.Client, t: pg.Client) => Promise<Result<T>>): Promise<Result<T>> {
  let s: pg.Client | undefined;
  let t: pg.Client | undefined;
  try {
    s = await connectControl(sourceUrl, { purpose: 'replicate' }).catch((e: unknown) => {
      throw new Error(`cannot connect to the source: ${errorText(e)}`);
    });
    t = await connectControl(targetUrl, { purpose: 'replicate' }).catch((e: unknown) => {
      throw new Error(`cannot connect to the target: ${errorText(e)}`);
    });
    return await fn(s, t);
  } catch (err) {
    return { ok: false, errors: [errorText(err)] };
  } finally {
    await s?.end().catch(() => undefined);
    await t?.end().catch(() => undefined);
  }
}

/**
 * Publication on the source, schema on the target, subscription on the target. Checks first that
 * the source can publish (wal_level = logical, a free slot) and that every table can replicate
 * UPDATE and DELETE (a primary key or replica identity; publishing a table without one would make
 * UPDATEs on the source fail). Safe to run again: existing objects are kept, missing tables added.
 */
export async function setupNativeReplication(sourceUrl: string, targetUrl: string, opts: NativeSetupOptions = {}): Promise<Result<SetupReport>> {
  return withBoth(sourceUrl, targetUrl, (s, t) => setupOn(s, t, sourceUrl, targetUrl, opts));
}

async function setupOn(s: Db, t: Db, sourceUrl: string, targetUrl: string, opts: NativeSetupOptions): Promise<Result<SetupReport>> {
  const started = Date.now();
  const n = names(opts);
  const existing = await subscriptionInfo(t, n.subscription);
  if (!existing) {
    const problem = await publisherProblem(s, 'the source');
    if (problem) return { ok: false, errors: [problem] };
  }
  if (opts.heartbeat ?? true) await ensureHeartbeatTable(s);
  const sel = await resolveTables(s, opts.tables ?? 'all');
  if (sel.missing.length > 0) return { ok: false, errors: sel.missing.map((m) => `table ${m} does not exist on the source`) };
  const tables = [...sel.tables];
  if ((opts.heartbeat ?? true) && !tables.some((x) => x.schema === 'public' && x.name === HEARTBEAT_TABLE)) {
    tables.push({ schema: 'public', name: HEARTBEAT_TABLE });
  }
  if (tables.length === 0) return { ok: false, errors: ['no tables to replicate on the source'] };
  const noIdentity = await tablesWithoutReplicaIdentity(s, tables);
  if (noIdentity.length > 0) {
    return {
      ok: false,
      errors: noIdentity.map((x) => `table ${displayName(x)} has no primary key or replica identity: publishing it would make its UPDATEs and DELETEs fail on the source; add a primary key, set REPLICA IDENTITY FULL, or leave it out with --tables`),
    };
  }
  // The heartbeat table is ours: create it on the target too, even when the schema copy is left to the user.
  if (opts.heartbeat ?? true) await ensureHeartbeatTable(t);
  const onTarget = await existingTables(t, tables);
  const key = (x: QualifiedName) => `${x.schema}.${x.name}`;
  const have = new Set(onTarget.map(key));
  const missing = tables.filter((x) => !have.has(key(x)));
  if (missing.length > 0) {
    if (opts.copySchema === false) {
      return { ok: false, errors: [`tables missing on the target (and schema copy is off): ${missing.map(displayName).join(', ')}`] };
    }
    const copied = await copyTableSchema(sourceUrl, targetUrl, missing, opts.schemaCopy);
    if (!copied.ok) return copied;
  }
  const added = await ensurePublication(s, n.publication, tables);
  if (!existing) {
    await createSubscription(t, {
      name: n.subscription,
      conninfo: opts.sourceConninfo ?? sourceUrl,
      publication: n.publication,
      copyData: opts.copyData ?? true,
    });
  } else if (added.length > 0) {
    // A subscription picks up tables added to its publication only on refresh (which copies their
    // rows); PostgreSQL refuses a refresh while the subscription is disabled.
    if (!existing.enabled) return { ok: false, errors: [`subscription ${n.subscription} is disabled; resume it, then run setup again to add ${added.map(displayName).join(', ')}`] };
    await t.query(`ALTER SUBSCRIPTION ${quoteIdent(n.subscription)} REFRESH PUBLICATION`);
  }
  return {
    ok: true,
    value: {
      publication: n.publication,
      subscription: n.subscription,
      tables: tables.map(displayName),
      schemaCopied: missing.map(displayName),
      subscriptionCreated: !existing,
      ms: Date.now() - started,
    },
  };
}

export interface NativeStatus {
  readonly publication: { readonly name: string; readonly tables: readonly string[] };
  readonly subscription: null | {
    readonly name: string;
    readonly enabled: boolean;
    readonly worker: SubscriptionWorker;
    readonly tables: readonly { table: string; state: TableSyncState }[];
    /** Cumulative (pg_stat_subscription_stats, PostgreSQL 15+); null on older subscribers. */
    readonly errors: { apply: number; sync: number } | null;
  };
  readonly slot: SlotInfo | null;
  /** The publisher's pg_current_wal_flush_lsn(): WAL it can send (see apply-wait.ts). */
  readonly sourceLsn: string;
  /** Publisher WAL (up to sourceLsn) the subscriber has not confirmed applying; null when unknown (no worker, no slot). */
  readonly lagBytes: number | null;
}

/** Everything the catalogs say about one direction of native replication (publisher `pub`, subscriber `sub`). */
export async function readNativeStatus(pub: Db, sub: Db, n: ReplicationNames = {}): Promise<NativeStatus> {
  const { publication, subscription } = names(n);
  // One query at a time per connection (node-postgres queues, but concurrent use is deprecated);
  // the two servers are asked in parallel. The subscriber first: the byte lag then errs high.
  const onSub = (async () => {
    const info = await subscriptionInfo(sub, subscription);
    if (!info) return null;
    const worker = await applyWorker(sub, subscription);
    const states = await tableSyncStates(sub, info.oid);
    const errors = await subscriptionErrorCounts(sub, subscription);
    return { info, worker, states, errors };
  })();
  const onPub = (async () => {
    const tables = await publicationTables(pub, publication);
    const found = await onSub;
    const slot = found?.info.slot ? await slotInfo(pub, found.info.slot) : null;
    return { tables, slot, sourceLsn: await flushedWalLsn(pub) };
  })();
  const [found, { tables, slot, sourceLsn }] = await Promise.all([onSub, onPub]);
  if (!found) return { publication: { name: publication, tables: tables.map(displayName) }, subscription: null, slot: null, sourceLsn, lagBytes: null };
  const { info, worker, states, errors } = found;
  // Both are lower bounds of what the subscriber applied; take the later one.
  const applied = maxLsn(worker.latestEndLsn, slot?.confirmedFlushLsn);
  return {
    publication: { name: publication, tables: tables.map(displayName) },
    subscription: { name: subscription, enabled: info.enabled, worker, tables: states, errors },
    slot,
    sourceLsn,
    lagBytes: lsnDistance(sourceLsn, applied),
  };
}

export async function nativeReplicationStatus(sourceUrl: string, targetUrl: string, n: ReplicationNames = {}): Promise<Result<NativeStatus>> {
  return withBoth(sourceUrl, targetUrl, async (s, t) => ({ ok: true, value: await readNativeStatus(s, t, n) }));
}

async function setEnabled(targetUrl: string, n: ReplicationNames, enabled: boolean): Promise<Result<{ subscription: string; enabled: boolean }>> {
  const { subscription } = names(n);
  let t: pg.Client | undefined;
  try {
    t = await connectControl(targetUrl, { purpose: 'replicate' });
    if (!(await subscriptionInfo(t, subscription))) return { ok: false, errors: [`no subscription ${subscription} on the target`] };
    await setSubscriptionEnabled(t, subscription, enabled);
    return { ok: true, value: { subscription, enabled } };
  } catch (err) {
    return { ok: false, errors: [errorText(err)] };
  } finally {
    await t?.end().catch(() => undefined);
  }
}

/** ALTER SUBSCRIPTION … DISABLE: the apply worker stops; the source keeps WAL in the slot until resumed. */
export function pauseNativeReplication(targetUrl: string, n: ReplicationNames = {}) {
  return setEnabled(targetUrl, n, false);
}

export function resumeNativeReplication(targetUrl: string, n: ReplicationNames = {}) {
  return setEnabled(targetUrl, n, true);
}

export interface TeardownReport {
  readonly subscriptionDropped: boolean;
  readonly slotDropped: boolean;
  readonly publicationDropped: boolean;
}

/**
 * Drops the subscription (which drops its slot on the source) and the publication. Tables and
 * rows stay on both sides. If the source cannot be reached, the subscription is detached from its
 * slot and dropped anyway, and the slot is dropped on the source when it can be reached.
 */
export async function teardownNativeReplication(sourceUrl: string, targetUrl: string, n: ReplicationNames = {}): Promise<Result<TeardownReport>> {
  const { publication, subscription } = names(n);
  let t: pg.Client | undefined;
  let s: pg.Client | undefined;
  try {
    t = await connectControl(targetUrl, { purpose: 'replicate' });
    const dropped = await dropSubscription(t, subscription);
    s = await connectControl(sourceUrl, { purpose: 'replicate' });
    const slotDropped = dropped.orphanSlot ? await dropSlot(s, dropped.orphanSlot) : dropped.existed;
    const pubThere = (await s.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [publication])).rowCount ?? 0;
    await dropPublication(s, publication);
    return { ok: true, value: { subscriptionDropped: dropped.existed, slotDropped, publicationDropped: pubThere > 0 } };
  } catch (err) {
    return { ok: false, errors: [errorText(err)] };
  } finally {
    await t?.end().catch(() => undefined);
    await s?.end().catch(() => undefined);
  }
}
