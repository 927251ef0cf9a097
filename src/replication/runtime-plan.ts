/**
 * Pure decisions of the replication runtime (runtime.ts): which way replication is watched for a
 * given writer, which lag number the breakers see, when a lost control session is tried again,
 * and which errors mean the session itself is gone. No I/O here, so tests drive them directly.
 */
import type { Observation } from './monitor.js';
import type { DirectionNames } from './reverse.js';
import type { Role } from '../domain/role.js';
import { SqlState } from '../protocol/sqlstate.js';


/** One direction of native replication: the subscription on `subscriber`, its slot on `publisher`. */
export interface WatchedDirection {
  readonly name: 'forward' | 'reverse';
  readonly publisher: Role;
  readonly subscriber: Role;
  readonly publication: string;
  readonly subscription: string;
}

/**
 * The direction that carries the writer's changes (DESIGN.md "Write switchover" step 5): forward
 * (source publishes, target subscribes) while the source takes writes; reverse once the target
 * does. The heartbeat follows the same rule: written on the publisher, read on the subscriber.
 */
export function directionFor(writer: Role, names: Required<DirectionNames>): WatchedDirection {
  switch (writer) {
    case 'source':
      return { name: 'forward', publisher: 'source', subscriber: 'target', publication: names.publication, subscription: names.subscription };
    case 'target':
      return { name: 'reverse', publisher: 'target', subscriber: 'source', publication: names.reversePublication, subscription: names.reverseSubscription };
    default: {
      const never: never = writer;
      throw new Error(`unknown writer ${String(never)}`);
    }
  }
}

export interface LagInputs {
  /** The heartbeat probe runs. */
  readonly heartbeat: boolean;
  readonly heartbeatLag: number | null;
  /** The probe's last tick failed: its number is stale. */
  readonly heartbeatError: string | null;
  /** What the monitor measured (native: 0 when no bytes are pending; DMS: CloudWatch CDC latency). */
  readonly observed: number | null;
}

/**
 * The lag the breakers see. The heartbeat is end to end, and it keeps growing while a
 * subscription is paused (when the native monitor reports no lag at all), so it wins when it
 * has a fresh number. A failing probe is unknown, not its last value: null keeps the breaker's
 * last verdict (BreakerSet.observeLag) instead of feeding it a frozen or runaway reading.
 */
export function reportedLag(i: LagInputs): number | null {
  if (i.heartbeat) {
    if (i.heartbeatError !== null) return null;
    if (i.heartbeatLag !== null) return i.heartbeatLag;
  }
  return i.observed;
}

/**
 * The replication error the breakers see: the monitor's, which includes "monitor failed N times"
 * once the watcher gave up on a dead connection (monitor.ts `failuresBeforeError`).
 */
export function reportedReplicationError(last: Observation | null): string | null {
  return last?.error ?? null;
}

/** Delay before the `failures`-th reconnect attempt in a row: 0 for the first, then doubling to `maxMs`. */
export function reconnectDelayMs(failures: number, minMs: number, maxMs: number): number {
  if (failures <= 0) return 0;
  return Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 30));
}

/** node-postgres messages for a session that can no longer be used. */
const LOST_MESSAGES = [
  'Connection terminated',
  'Query read timeout',
  'not queryable',
  'Connection ended',
  'connect ECONNREFUSED',
];
const LOST_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND']);

/**
 * Did this error end the session (reconnect), rather than fail one statement (keep it)? SQLSTATE
 * class 08 is connection exception; 57P01/57P02/57P03 are admin shutdown, crash shutdown and
 * cannot connect now (https://www.postgresql.org/docs/15/errcodes-appendix.html).
 */
export function isSessionLost(err: unknown): boolean {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (/^08/.test(code) || code === SqlState.AdminShutdown || code === SqlState.CrashShutdown || code === SqlState.CannotConnectNow || LOST_CODES.has(code)) return true;
  const msg = err instanceof Error ? err.message : String(err);
  return LOST_MESSAGES.some((m) => msg.includes(m));
}
