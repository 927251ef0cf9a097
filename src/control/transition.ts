/**
 * Decide and commit one requested transition against a state store: the machine decides on the
 * snapshot this sidecar knows, the store's compare-and-set commits it; if another sidecar moved
 * first, decide again on the newer snapshot. Two sidecars tripping a rollback at once thus end
 * with exactly one committed ROLLBACK; the other gets 'already-in-state'.
 */
import { deviationAuditEntry, type AuditEntry } from '../domain/audit.js';
import {
  decideTransition,
  transitionAudit,
  type CutoverEvent,
  type CutoverSnapshot,
  type GuardResult,
  type RefusalCode,
  type TransitionContext,
  type TransitionRequest,
} from '../domain/cutover-machine.js';
import type { StateStore } from './store.js';

export type TransitionOutcome =
  | {
      readonly ok: true;
      readonly from: CutoverSnapshot;
      readonly next: CutoverSnapshot;
      readonly event: CutoverEvent;
      readonly forced: boolean;
      /** Committed only locally: the store was unreachable (a rollback during a Redis outage). */
      readonly local: boolean;
      readonly audit: AuditEntry;
    }
  | {
      readonly ok: false;
      /** A machine refusal, or: unavailable (store unreachable), conflict (lost the race every attempt), invalid. */
      readonly code: RefusalCode | 'unavailable' | 'conflict' | 'invalid';
      readonly reason: string;
      readonly current: CutoverSnapshot;
      readonly guards?: readonly GuardResult[];
    };

/**
 * `context` builds the guard inputs for the snapshot being decided on (gates, breakers, now,
 * config). When it leaves `storeDegraded` unset, the store's health fills it in.
 */
export async function requestTransition(
  store: StateStore,
  req: TransitionRequest,
  context: (current: CutoverSnapshot) => TransitionContext,
  attempts = 3,
): Promise<TransitionOutcome> {
  let cur = store.current();
  for (let i = 0; i < attempts; i++) {
    const base = context(cur);
    const ctx = base.storeDegraded === undefined ? { ...base, storeDegraded: store.health().degraded } : base;
    const d = decideTransition(cur, req, ctx);
    if (!d.ok) return { ok: false, code: d.code, reason: d.reason, current: cur, ...(d.guards ? { guards: d.guards } : {}) };
    const audit = transitionAudit(cur, d, req);
    const r = await store.compareAndSet(cur.version, d.next, audit);
    if (r.ok) {
      // A forced step is a deviation from the procedure: kept as its own record, with the guards it skipped.
      if (d.forced) await store.appendAudit(deviationAuditEntry({ from: cur.state, to: d.next.state, reason: req.reason ?? d.next.reason, skipped: d.skipped }, req.by, d.next.since));
      return { ok: true, from: cur, next: r.snapshot, event: d.event, forced: d.forced, local: r.local === true, audit };
    }
    if (r.code !== 'version-conflict') return { ok: false, code: r.code, reason: r.reason, current: r.current };
    cur = r.current;
  }
  return { ok: false, code: 'conflict', reason: `lost the compare-and-set race ${attempts} times; try again`, current: cur };
}
