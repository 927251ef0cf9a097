/**
 * Fault attribution for one client session (src/control/attribution.ts decides; this keeps the session's
 * facts): errors counted per backend, a client's own cancel told apart from the server's, and a read the
 * target refused for schema drift judged by the source's answer to the same read.
 */
import { isServerFault, isTargetFault, SCHEMA_DRIFT_CODES } from '../domain/attribution.js';
import type { Role } from '../domain/role.js';
import { log } from '../support/log.js';
import { SqlState } from '../protocol/sqlstate.js';
import type { BackendLink } from './backend-link.js';
import type { Router, SessionRouting } from './router-glue.js';
import type { ProxyStats } from './stats.js';
import type { ReaderRouting } from './reader-routing.js';

export class SessionFaults {
  /** The client sent a CancelRequest since its last ReadyForQuery. */
  cancelRequested = false;
  /**
   * A read the target refused for schema drift (undefined table, privilege...), being retried on the source:
   * its code, and the source's answer (null: none yet, or success).
   */
  private drift: { target: string; source: string | null } | null = null;

  constructor(
    private readonly sessionId: number,
    private readonly stats: ProxyStats,
    private readonly router: Router,
    private readonly routing: SessionRouting,
    private readonly readers: ReaderRouting | null = null,
  ) {}

  /** An ErrorResponse from `link` on its way to the client. */
  error(link: BackendLink, sqlstate: string): void {
    this.stats.errors[link.role]++;
    if (this.drift !== null && link.role === 'source') this.drift.source ??= sqlstate;
    // A 57014 after the client's own CancelRequest is the client's doing, not the server's.
    // On a link our own write hold retired, a 57P01 is our fence ending the session, not the server failing (on
    // the source it would raise the baseline the target's rate is judged against).
    const fenced = link.retired !== null;
    if (link.reader >= 0) {
      // A target reader's faults are its own count: the reads it failed go on elsewhere (see retryRole).
      if (isServerFault(sqlstate, this.cancelRequested)) this.stats.readerFaults++;
      return;
    }
    const fault = link.role === 'target' ? isTargetFault(sqlstate, { backend: 'target', clientCancelled: this.cancelRequested, fenced }) : !fenced && isServerFault(sqlstate, this.cancelRequested);
    if (fault) this.stats.backendFaults[link.role]++;
  }

  /** A ReadyForQuery from `link`: the source answered a read the target refused (an error it did not give is the target's fault). */
  ready(link: BackendLink): void {
    this.cancelRequested = false;
    const d = this.drift;
    if (d === null || link.role !== 'source' || link.pending !== 0) return;
    this.drift = null;
    if (isTargetFault(d.target, { backend: 'target', sourceResult: d.source ?? 'ok' })) this.stats.backendFaults.target++;
  }

  /** A held read failed on `link` with `sqlstate` and runs again: where, with the bookkeeping for it. */
  retryRole(link: BackendLink, sqlstate: string): Role {
    if (sqlstate === SqlState.ReadOnlyTransaction) {
      // A read that wrote (a writing function not in --write-functions) met the read-only link: nothing
      // reached the client and nothing was written; it runs on the writer, counted as a write.
      this.stats.readOnlyRetries++;
      this.routing.unitWrite = true;
      this.routing.unitData = true;
      log.debug({ session: this.sessionId, sqlstate }, 'a read wrote on the read-only link; retrying on the writer');
      return this.router.policy().writesTo;
    }
    if (link.reader >= 0) {
      // A target reader failed the read (a fault, or a standby's own refusal: a conflict with recovery): it
      // runs on the target primary (and from there on the source if the primary fails it too).
      this.stats.readerFallbacks++;
      if (sqlstate !== SqlState.SerializationFailure && sqlstate !== SqlState.FeatureNotSupported) this.readers?.failed(link.reader);
      log.debug({ session: this.sessionId, sqlstate, reader: link.reader }, 'read failed on a target reader; retrying on the target primary');
      return 'target';
    }
    this.stats.targetFallbacks++;
    // Schema drift fails this statement, not the target: no back-off for other reads; whether it counts
    // against the target is judged by the source's answer (ready).
    if (SCHEMA_DRIFT_CODES.has(sqlstate)) this.drift = { target: sqlstate, source: null };
    else this.router.backendFailed(link.role);
    log.debug({ session: this.sessionId, sqlstate }, 'read failed on the target; retrying on the source');
    return 'source';
  }
}
