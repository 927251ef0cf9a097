/**
 * Admin API for the writer the databases remember (README "Safety"): read it, adopt it now (the way out of a
 * state nobody runs, e.g. a ROLLBACK whose compare-and-set Redis executed after it timed out), and clear a dead
 * run's writer-change lock. Both mutations need a reason and are audited.
 */
import type { Route } from './admin-api.js';
import { auditActor } from './admin-routes.js';
import type { StateStore } from './store.js';
import type { WriterSync } from './writer-sync.js';

export interface WriterRouteDeps {
  sync: WriterSync;
  store: StateStore;
  /** Clears the writer-change lock on both databases (only `holder`'s when given); returns who held it. */
  unlock(holder?: string): Promise<{ source: string | null; target: string | null }>;
}

const str = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

export function writerRoutes(d: WriterRouteDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/writer',
      handler: async () => {
        await d.sync.check('admin GET /writer');
        return { status: 200, body: d.sync.last ?? {} };
      },
    },
    {
      method: 'POST',
      path: '/writer/adopt',
      mutates: true,
      handler: async ({ body, actor }) => {
        const b = (body ?? {}) as { reason?: unknown; by?: unknown; note?: unknown };
        if (!str(b.reason)) return { status: 400, body: { error: 'adopting the recorded writer needs {"reason": "..."}' } };
        const by = auditActor(actor, b);
        const v = await d.sync.check(`operator: ${b.reason}`, true);
        await d.store.appendAudit({ at: Date.now(), by, kind: 'writer-adopt', reason: b.reason, detail: { verdict: v ?? null, record: d.sync.last?.record ?? null } });
        if (v === null) return { status: 503, body: { error: `could not read the writer record: ${d.sync.last?.error ?? 'unknown'}` } };
        if (v.kind === 'wait') return { status: 409, body: { error: `${v.reason}; if that run is dead, POST /writer/unlock first`, verdict: v } };
        return { status: 200, body: { verdict: v, record: d.sync.last?.record } };
      },
    },
    {
      method: 'POST',
      path: '/writer/unlock',
      mutates: true,
      handler: async ({ body, actor }) => {
        const b = (body ?? {}) as { reason?: unknown; holder?: unknown; by?: unknown; note?: unknown };
        if (!str(b.reason)) return { status: 400, body: { error: 'clearing the writer lock needs {"reason": "...", "holder"?: "..."}' } };
        if (b.holder !== undefined && !str(b.holder)) return { status: 400, body: { error: '"holder" must be a non-empty string' } };
        const by = auditActor(actor, b);
        try {
          const was = await d.unlock(str(b.holder) ? b.holder : undefined);
          await d.store.appendAudit({ at: Date.now(), by, kind: 'writer-unlock', reason: b.reason, detail: { was } });
          return { status: 200, body: { unlocked: was } };
        } catch (e) {
          return { status: 503, body: { error: `could not reach the databases: ${(e as Error).message}` } };
        }
      },
    },
  ];
}
