/**
 * Plain counters bumped on the hot path (no allocation, no labels lookup); the metrics module reads them
 * when scraped, and the circuit breakers sample them.
 */
import { UnitLatency } from './latency.js';

export class ProxyStats {
  /** Unit latency (dispatch to ReadyForQuery) by backend and read/write, reset when the cutover state changes. */
  readonly latency = new UnitLatency();
  clientsAccepted = 0;
  clientsActive = 0;
  clientsRejected = 0;
  authFailures = 0;
  /** Connections still logging in that were closed to make room for a new one (slowloris defence). */
  loginsEvicted = 0;
  protocolErrors = 0;
  cancelsForwarded = 0;
  /** Reads the target could not serve, retried on the source without the client seeing an error. */
  targetFallbacks = 0;
  /** Reads that wrote (a writing function not listed) refused by a read-only link and retried on the writer. */
  readOnlyRetries = 0;
  /** Reads kept on the writer because the other side had not applied the session's last write (or was too stale). */
  freshnessRedirects = 0;
  /** The other side's staleness at the last sample (ms; NaN unknown), and the largest seen. */
  readerStalenessMs = Number.NaN;
  readerStalenessMaxMs = 0;
  /**
   * Reads meant for the target that went to the source because the target is backed off after a failure.
   * The breaker counts them as target faults: without them a dead target gets no traffic, so no verdict.
   */
  targetDiverted = 0;
  /** Shadows (SHADOW_WRITES, dark reads) the target failed: refused or lost connections, skips while it is down. */
  shadowTargetFaults = 0;
  /**
   * Transactions the proxy's own write fence ended: open on the old writer when a hold began and not finished
   * within the drain bound (the client got the server's error, never an acknowledgement).
   */
  fenceEndedTransactions = 0;
  /** Target readers (--target-readers): statements sent to each, by index; failed logins; faults (lost, 08/53/57/58/XX). */
  readonly readerStatements: number[] = [];
  readerConnectFailures = 0;
  readerFaults = 0;
  /** Reads a reader failed (before any byte reached the client) that ran again on the target primary. */
  readerFallbacks = 0;
  /** Each target reader's staleness at its last sample (ms; NaN unknown), by name. */
  readonly readerLagMs: Record<string, number> = {};
  readonly statements = { source: 0, target: 0 };
  readonly errors = { source: 0, target: 0 };
  /** Errors the backend itself caused (connection loss, SQLSTATE classes 08, 53, 57, 58, XX). */
  readonly backendFaults = { source: 0, target: 0 };
  readonly connectFailures = { source: 0, target: 0 };
}
