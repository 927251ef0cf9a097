/**
 * One server's control login (issue 13, "one of each: control connection"): every control or monitoring
 * connection the sidecar opens to a server is made here, so the login, the application_name that fencing
 * spares, `default_transaction_read_only = off`, connect and statement timeouts, reconnect backoff and the
 * mapping of failures to values (ControlError) have one owner.
 *
 * Three shapes, each for a reason:
 *  - `session(purpose)`: long-lived monitoring that must survive the server going away (the backend probe,
 *    the WAL sampler, the reader sampler, the replication runtime's heartbeat and monitor): it reconnects with
 *    backoff, bounds every statement, and answers `ask()` with values.
 *  - `connect(purpose)`: a connection of its own for one procedure (switchover, rollback, fence, gates,
 *    sequence sync, decommission, the apply-mode check). Separate because such a procedure holds session state
 *    for its whole run (transactions, SET, waits of many seconds that a shared session's statement bound would
 *    cut), and must not queue behind, or be reconnected under, a sampler polling every few milliseconds.
 *  - `pool(purpose, max)`: parallel checksum sessions (gate 2, the final gate), each pinned to the same settings.
 * Replication connections are not ours: the subscriptions' apply workers open them (native.ts only tells the
 * target its conninfo).
 */
import type pg from 'pg';
import { connectControl, controlPool, type ControlConnectOptions, type ControlLogin } from './control-conn.js';
import { controlSession, type ControlSession, type ControlSessionOptions } from './control-session.js';

/** Reconnect and timeout settings of a session; the server's defaults apply to what is not given. */
export type SessionTuning = Partial<Pick<ControlSessionOptions, 'connectTimeoutMs' | 'queryTimeoutMs' | 'minBackoffMs' | 'maxBackoffMs' | 'onConnect' | 'now'>>;

export interface ControlServer {
  /** `source`, `target` or a reader's name: in logs and errors. */
  readonly label: string;
  session(purpose: string, tuning?: SessionTuning): ControlSession;
  connect(purpose: string, opts?: Omit<ControlConnectOptions, 'purpose'>): Promise<pg.Client>;
  pool(purpose: string, max: number, opts?: Omit<ControlConnectOptions, 'purpose'>): pg.Pool;
}

export function controlServer(login: ControlLogin, label: string, defaults: SessionTuning = {}): ControlServer {
  return {
    label,
    session: (purpose, tuning = {}) => controlSession({ ...defaults, ...tuning, login, purpose, label }),
    connect: (purpose, opts = {}) => connectControl(login, { ...opts, purpose }),
    pool: (purpose, max, opts = {}) => controlPool(login, max, { ...opts, purpose }),
  };
}
