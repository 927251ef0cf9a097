/**
 * Reverse replication target → source while writes are on the target (DESIGN.md "Write
 * switchover" step 5, "Rollback procedure" step 3). PostgreSQL 15 has no `origin = none` (16 does),
 * so forward and reverse subscriptions must never both run: the forward one is disabled first, and
 * the reverse one starts with `copy_data = false` at the moment writes move.
 */
import type { Db } from './control-conn.js';
import { applyWorker, createSubscription, dropPublication, dropSubscription, dropSlot, ensurePublication, publicationExists, setSubscriptionEnabled, slotInfo, subscriptionInfo } from './subscription.js';
import { committedLsn } from './apply-wait.js';
import { lsnAtLeast } from './lsn.js';
import { displayName } from './sql.js';
import { publicationTables } from './tables.js';

export const DEFAULT_REVERSE_PUBLICATION = 'pgcutover_reverse';
export const DEFAULT_REVERSE_SUBSCRIPTION = 'pgcutover_reverse';

export interface DirectionNames {
  /** Forward publication on the source. Default `pgcutover`. */
  readonly publication?: string;
  /** Forward subscription on the target. Default `pgcutover`. */
  readonly subscription?: string;
  /** Reverse publication on the target. Default `pgcutover_reverse`. */
  readonly reversePublication?: string;
  /** Reverse subscription on the source. Default `pgcutover_reverse`. */
  readonly reverseSubscription?: string;
}

export function directionNames(n: DirectionNames = {}): Required<DirectionNames> {
  return {
    publication: n.publication ?? 'pgcutover',
    subscription: n.subscription ?? 'pgcutover',
    reversePublication: n.reversePublication ?? DEFAULT_REVERSE_PUBLICATION,
    reverseSubscription: n.reverseSubscription ?? DEFAULT_REVERSE_SUBSCRIPTION,
  };
}

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Disables a subscription and ends its apply worker, so nothing applies after this returns. The
 * worker would notice DISABLE by itself only on its next wake-up, up to a second later on an idle
 * publisher; ending it loses nothing: it resumes from its replication origin's last commit.
 */
export async function disableAndWait(subscriber: Db, subscription: string, timeoutMs = 5000): Promise<void> {
  await setSubscriptionEnabled(subscriber, subscription, false);
  await subscriber.query(
    `SELECT pg_terminate_backend(pid) FROM pg_stat_subscription WHERE subname = $1 AND pid IS NOT NULL`,
    [subscription],
  );
  await until(`the apply worker of ${subscription} to exit`, timeoutMs, async () => (await applyWorker(subscriber, subscription)).pid === null);
}

/** What one run of startReverseReplication created: its undo removes only that, never another run's. */
export interface ReverseCreated {
  publication: boolean;
  subscription: boolean;
}

/**
 * Publication on the target for the forward publication's tables, subscription on the source
 * without copying rows. Returns the tables it carries; `created` says what this call made.
 */
export async function startReverseReplication(source: Db, target: Db, targetConninfo: string, n: DirectionNames = {}, created: ReverseCreated = { publication: false, subscription: false }): Promise<string[]> {
  const names = directionNames(n);
  const tables = await publicationTables(source, names.publication);
  if (tables.length === 0) throw new Error(`forward publication ${names.publication} has no tables on the source`);
  if (await subscriptionInfo(source, names.reverseSubscription)) throw new Error(`reverse subscription ${names.reverseSubscription} already exists on the source`);
  const hadPublication = await publicationExists(target, names.reversePublication);
  await ensurePublication(target, names.reversePublication, tables);
  created.publication = !hadPublication;
  await createSubscription(source, { name: names.reverseSubscription, conninfo: targetConninfo, publication: names.reversePublication, copyData: false });
  created.subscription = true;
  return tables.map(displayName);
}

/**
 * Drops the reverse subscription (and with it its slot on the target) and the reverse publication; with
 * `only`, just what one run created.
 */
export async function stopReverseReplication(source: Db, target: Db, n: DirectionNames = {}, only?: ReverseCreated): Promise<void> {
  const names = directionNames(n);
  if (!only || only.subscription) {
    const dropped = await dropSubscription(source, names.reverseSubscription);
    if (dropped.orphanSlot) await dropSlot(target, dropped.orphanSlot);
  }
  if (!only || only.publication) await dropPublication(target, names.reversePublication);
}

export interface SlotAdvance {
  readonly slot: string;
  readonly from: string | null;
  readonly to: string;
  /** Bytes of WAL the slot no longer holds. */
  readonly skipped: number;
}

/**
 * Moves a logical slot's confirmed position to `to` (default: past every commit so far) with
 * pg_replication_slot_advance, after waiting for it to be inactive (a slot in use cannot be
 * advanced). Only for WAL that must not be sent: everything between came from the other side.
 */
export async function advanceSlot(publisher: Db, slot: string, to?: string): Promise<SlotAdvance> {
  await until(`slot ${slot} to become inactive`, 10_000, async () => (await slotInfo(publisher, slot))?.active === false);
  const before = await slotInfo(publisher, slot);
  if (!before) throw new Error(`replication slot ${slot} not found`);
  // Default: past everything committed so far, flushed (the slot cannot move past the flush position).
  const target = to ?? (await committedLsn(publisher, 'advance-slot'));
  if (lsnAtLeast(before.confirmedFlushLsn, target)) return { slot, from: before.confirmedFlushLsn, to: before.confirmedFlushLsn ?? target, skipped: 0 };
  const r = await publisher.query<{ end: string; skipped: string }>(
    `SELECT a.end_lsn::text AS end, pg_wal_lsn_diff(a.end_lsn, $3::pg_lsn)::text AS skipped FROM pg_replication_slot_advance($1, $2::pg_lsn) AS a`,
    [slot, target, before.confirmedFlushLsn ?? target],
  );
  return { slot, from: before.confirmedFlushLsn, to: r.rows[0]!.end, skipped: Number(r.rows[0]!.skipped) };
}

/**
 * While writes are on the target, the disabled forward subscription's slot keeps source WAL that
 * holds only changes replicated back from the target. Advance it (periodically, DESIGN.md "Write
 * switchover"): refuses while the forward subscription is enabled, when that WAL would be real.
 */
export async function advanceForwardSlot(source: Db, target: Db, n: DirectionNames = {}): Promise<SlotAdvance> {
  const names = directionNames(n);
  const sub = await subscriptionInfo(target, names.subscription);
  if (!sub?.slot) throw new Error(`forward subscription ${names.subscription} (with a slot) not found on the target`);
  if (sub.enabled) throw new Error(`forward subscription ${names.subscription} is enabled: its slot's WAL is live and must not be skipped`);
  return advanceSlot(source, sub.slot);
}
