/**
 * What the rollback runner needs from this sidecar and the databases: draining the target, restoring the
 * source after writes had moved (src/replication/rollback.ts with the proxy as its WriteGate), and pausing
 * replication.
 */
import type { StartConfig } from '../config/load.js';
import { backendUrl } from '../proxy/database-url.js';
import type { ProxyServer } from '../proxy/server.js';
import { connectControl } from '../replication/control-conn.js';
import { rollbackWritesToSource } from '../replication/rollback.js';
import { applicationRoleCandidates } from '../replication/fence.js';
import { pauseNativeReplication } from '../replication/native.js';
import { switchWritesToTarget } from '../replication/switchover.js';
import type { RollbackHooks } from './rollback-runner.js';

/** The write switchover with this sidecar's proxy as the write gate (DESIGN.md, Write switchover). */
export function createSwitchover(cfg: StartConfig, proxy: ProxyServer) {
  return async (commit: () => Promise<void>): Promise<{ ok: boolean; error?: string; detail?: Record<string, unknown> }> => {
    const [source, target] = await Promise.all([
      connectControl(backendUrl(cfg.control.source), { purpose: 'switchover' }),
      connectControl(backendUrl(cfg.control.target), { purpose: 'switchover' }),
    ]);
    try {
      const appRoles = await applicationRoleCandidates(source);
      const r = await switchWritesToTarget(
        source,
        target,
        {
          hold: () => proxy.holdWrites('source', 30_000),
          release: async (to) => {
            try {
              if (to === 'target') await commit();
            } finally {
              proxy.releaseWrites();
            }
          },
        },
        { appRoles, targetConninfo: backendUrl(cfg.control.target, 'libpq'), subscription: cfg.subscription },
      );
      const detail = { pauseMs: r.pauseMs, switchLsn: r.switchLsn, steps: r.steps.map((s) => ({ ...s })) };
      return r.ok ? { ok: true, detail } : { ok: false, error: `${r.failedStep}: ${r.error}`, detail };
    } catch (e) {
      proxy.releaseWrites();
      return { ok: false, error: (e as Error).message };
    } finally {
      await Promise.allSettled([source.end(), target.end()]);
    }
  };
}

export function createRollbackHooks(cfg: StartConfig, proxy: ProxyServer): RollbackHooks {
  return {
    drainTarget: (ms) => proxy.drainRole('target', ms),
    async restoreSourceAfterWrites() {
      const [source, target] = await Promise.all([
        connectControl(backendUrl(cfg.control.source), { purpose: 'rollback' }),
        connectControl(backendUrl(cfg.control.target), { purpose: 'rollback' }),
      ]);
      try {
        const appRoles = await applicationRoleCandidates(source);
        const r = await rollbackWritesToSource(source, target, { hold: () => proxy.holdWrites('target', 30_000), release: () => proxy.releaseWrites() }, {
          appRoles,
          subscription: cfg.subscription,
        });
        if (!r.ok) throw new Error(`${r.failedStep}: ${r.error}`);
        return { pauseMs: r.pauseMs, targetLsn: r.targetLsn, steps: r.steps.length };
      } finally {
        await Promise.allSettled([source.end(), target.end()]);
      }
    },
    async pauseReplication() {
      if (!cfg.subscription) return false;
      const r = await pauseNativeReplication(backendUrl(cfg.control.target), { subscription: cfg.subscription });
      return r.ok;
    },
  };
}
