/**
 * Logical replication does not carry sequences, so a shadow INSERT with a generated key would collide with
 * replicated rows (DESIGN.md, "Sequences"). On entering SHADOW_WRITES, and periodically during it, every
 * target sequence is set ahead of the source's value by a headroom (in increments, within the sequence's
 * bounds, never backwards: rolled-back shadow INSERTs still consumed target values). Shadow rows are rolled
 * back, and the write switchover later sets the target to the source's exact values. The setval itself is
 * the one sequence sync of src/replication/sequences.ts.
 */
import type pg from 'pg';
import { log } from '../support/log.js';
import { backendUrl, type BackendTarget } from '../net/database-url.js';
import { connectControl } from '../replication/control-conn.js';
import { syncSequences } from '../replication/sequences.js';

/** One sequence advance over fresh control sessions; failures are logged (the next period retries). */
export async function syncTargetSequences(ctl: { source: BackendTarget; target: BackendTarget }, headroom: number): Promise<void> {
  // Control sessions like every other (control-conn.ts: marked, read-only off on the target replica).
  const opened = await Promise.allSettled([connectControl(backendUrl(ctl.source), { purpose: 'sequences' }), connectControl(backendUrl(ctl.target), { purpose: 'sequences' })]);
  const [src, dst] = opened.map((o) => (o.status === 'fulfilled' ? o.value : null)) as [pg.Client | null, pg.Client | null];
  try {
    if (src === null || dst === null) throw (opened.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason;
    const r = await syncSequences(src, dst, { headroom, neverBackwards: true });
    log.debug({ sequences: r.set.length, missing: r.missing.length }, 'target sequences moved ahead for shadowing');
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'could not move target sequences ahead');
  } finally {
    await Promise.allSettled([src?.end(), dst?.end()]);
  }
}
