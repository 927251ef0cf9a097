/**
 * What the rollback runner needs from this sidecar and the databases: draining the target, restoring the
 * source after writes had moved (src/replication/rollback.ts with the proxy as its WriteGate), and pausing
 * replication.
 */
import type { StartConfig } from '../config/load.js';
import { backendUrl } from '../net/database-url.js';
import type { ProxyServer } from '../proxy/server.js';
import { connectControl } from '../replication/control-conn.js';
import { rollbackWritesToSource } from '../replication/rollback.js';
import { pauseNativeReplication } from '../replication/native.js';
import { dmsMonitor } from '../replication/dms-monitor.js';
import { switchWritesToTarget } from '../replication/switchover.js';
import { claimWriterLock, forceUnlock, readWriterRecord, type WriterRecord } from '../replication/writer-record.js';
import { isUnreachable } from '../replication/unreachable.js';
import { RollbackBlocked, type RollbackHooks } from '../control/rollback-runner.js';
import type { WritePause } from '../control/write-pause.js';
import type { Role } from '../domain/role.js';

const SWITCHOVER_DRAIN_MS = 5000;

/**
 * The write switchover (DESIGN.md, Write switchover) with a coordinated pause as the write gate: every live
 * sidecar parks and drains its source writes and acknowledges before the source is fenced; the release names
 * the snapshot that routes writes to the target.
 */
export function createSwitchover(cfg: StartConfig, pauses: WritePause, version: () => number) {
  return async (commit: () => Promise<void>): Promise<{ ok: boolean; error?: string; detail?: Record<string, unknown> }> => {
    const [source, target] = await Promise.all([
      connectControl(backendUrl(cfg.control.source), { purpose: 'switchover' }),
      connectControl(backendUrl(cfg.control.target), { purpose: 'switchover' }),
    ]);
    // DESIGN.md switchoverPauseMs: in-flight writes get 5 s to end; a sidecar that cannot drain (or answer) by
    // then aborts the switch, and writes go on on the source.
    const pause = pauses.pause('source', SWITCHOVER_DRAIN_MS);
    let held = false;
    try {
      const r = await switchWritesToTarget(
        source,
        target,
        {
          hold: async () => {
            held = true;
            await pause.hold();
          },
          release: async (to) => {
            held = false;
            try {
              if (to === 'target') await commit();
            } finally {
              await pause.release(to, version());
            }
          },
        },
        { appRoles: cfg.appRoles, holder: cfg.sidecarId, targetConninfo: backendUrl(cfg.control.target, 'libpq'), subscription: cfg.subscription, drainTimeoutMs: SWITCHOVER_DRAIN_MS + 5000 },
      );
      const detail = { pauseMs: r.pauseMs, switchLsn: r.switchLsn, steps: r.steps.map((s) => ({ ...s })) };
      return r.ok ? { ok: true, detail } : { ok: false, error: `${r.failedStep}: ${r.error}`, detail };
    } catch (e) {
      if (held) await pause.release('source', version());
      return { ok: false, error: (e as Error).message };
    } finally {
      await Promise.allSettled([source.end(), target.end()]);
    }
  };
}

export function createRollbackHooks(cfg: StartConfig, proxy: ProxyServer, pauses: WritePause, version: () => number): RollbackHooks {
  return {
    drainTarget: (ms) => proxy.drainRole('target', ms),
    async restoreSourceAfterWrites(revert, lockToken) {
      const [source, target] = await Promise.all([
        connectControl(backendUrl(cfg.control.source), { purpose: 'rollback', connectTimeoutMs: 5000 }),
        connectControl(backendUrl(cfg.control.target), { purpose: 'rollback', connectTimeoutMs: 5000 }),
      ].map((p) => p.catch((e: Error) => e)));
      try {
        if (source instanceof Error) throw isUnreachable(source) ? new RollbackBlocked(`source unreachable: ${source.message}`, lockToken) : source;
        if (target instanceof Error) {
          if (!isUnreachable(target)) throw target;
          // While it waits, the run claims the writer lock on the source: every sidecar sees a writer change
          // running (none adopts the target as writer meanwhile) and a second request is refused.
          const claimed = await claimWriterLock(source, cfg.sidecarId, lockToken);
          throw new RollbackBlocked(`target unreachable: ${target.message}`, claimed);
        }
        // An operator who cleared the claim (writer unlock) stops this run: it halts here, in ROLLBACK.
        if (lockToken) await claimWriterLock(source, cfg.sidecarId, lockToken);
        // Within the procedure's own drain bound (5 s more), so the acknowledgements are judged before it gives
        // up; 25 s × --time-scale, at least 4 s. What is still open then is ended by the fence (counted).
        const drainMs = Math.max(4000, 25_000 * cfg.timeScale);
        const pause = pauses.pause('target', drainMs);
        const gate = {
          hold: async () => void (await pause.hold()),
          // A rollback that failed before touching the source leaves writes on the target (unfenced): the state
          // goes back first, so the released writes are routed there and not into the fenced source.
          release: async (to: Role) => {
            try {
              if (to === 'target') await revert();
            } finally {
              await pause.release(to, version());
            }
          },
        };
        const r = await rollbackWritesToSource(source, target, gate, {
          appRoles: cfg.appRoles,
          holder: cfg.sidecarId,
          subscription: cfg.subscription,
          drainTimeoutMs: drainMs + 5000,
          ...(lockToken ? { lockToken } : {}),
        });
        if (r.blocked) {
          // Lost the target (or source) mid-way: keep (or claim) the lock on the source and wait.
          const claimed = r.lockToken ?? (await claimWriterLock(source, cfg.sidecarId, null).catch(() => null));
          throw new RollbackBlocked(`${r.failedStep}: ${r.error}`, claimed);
        }
        if (!r.ok) throw new Error(`${r.failedStep}: ${r.error}`);
        return { pauseMs: r.pauseMs, targetLsn: r.targetLsn, steps: r.steps.length };
      } finally {
        await Promise.allSettled([source, target].map((c) => (c instanceof Error ? undefined : c.end())));
      }
    },
    async pauseReplication() {
      if (cfg.dmsTaskArn) {
        // DESIGN.md rollback step 5 with AWS DMS: StopReplicationTask.
        await dmsMonitor({ taskArn: cfg.dmsTaskArn, aws: cfg.aws }).pause();
        return true;
      }
      if (!cfg.subscription) return false;
      const r = await pauseNativeReplication(backendUrl(cfg.control.target), { subscription: cfg.subscription });
      return r.ok;
    },
  };
}

/** The writer record on both databases through the control logins: read it, or clear a dead run's lock. */
export function createWriterAccess(cfg: StartConfig) {
  const both = async <T>(fn: (source: Awaited<ReturnType<typeof connectControl>>, target: Awaited<ReturnType<typeof connectControl>>) => Promise<T>): Promise<T> => {
    const [source, target] = await Promise.all([
      connectControl(backendUrl(cfg.control.source), { purpose: 'writer-record', connectTimeoutMs: 3000 }),
      connectControl(backendUrl(cfg.control.target), { purpose: 'writer-record', connectTimeoutMs: 3000 }),
    ].map((p) => p.catch((e: Error) => e)));
    try {
      if (source instanceof Error) throw source;
      if (target instanceof Error) throw target;
      return await fn(source, target);
    } finally {
      await Promise.allSettled([source, target].map((c) => (c instanceof Error ? undefined : c!.end())));
    }
  };
  return {
    read: (): Promise<WriterRecord> => both(readWriterRecord),
    unlock: (holder?: string) => both((s, t) => forceUnlock(s, t, holder)),
  };
}
