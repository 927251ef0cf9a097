/**
 * The shared cutover state every sidecar routes by (shared/DESIGN.md "Shared state"). Two
 * implementations: `MemoryStore` (one sidecar, demo) and `RedisStore` (many sidecars).
 */
import type { AuditEntry } from '../domain/audit.js';
import type { CutoverSnapshot } from '../domain/cutover-machine.js';
import { isCutoverState } from '../domain/states.js';

export type CasResult =
  | { readonly ok: true; readonly snapshot: CutoverSnapshot; /** Committed only in this process while the store was unreachable (rollback). */ readonly local?: boolean }
  | {
      readonly ok: false;
      /**
       * version-conflict: someone else moved first; `current` is the newer snapshot, decide again.
       * unavailable: the store cannot be reached and the change may not be committed locally.
       * invalid: `next.version` is not `expectedVersion + 1`, or `next` is not a valid snapshot.
       */
      readonly code: 'version-conflict' | 'unavailable' | 'invalid';
      readonly current: CutoverSnapshot;
      readonly reason: string;
    };

export interface StoreHealth {
  /** True while the store cannot be reached, or local changes still wait to be written back. */
  readonly degraded: boolean;
  /** Epoch ms of the last successful contact (0 = never). */
  readonly lastContactMs: number;
  /** Why it is degraded (last error), when it is. */
  readonly reason?: string;
  /** A rollback was committed locally during an outage and is not yet reconciled. */
  readonly pendingLocal: boolean;
}

export interface StateStore {
  /** The last known snapshot, synchronously: what the hot path routes by. */
  current(): CutoverSnapshot;
  /** The freshest snapshot the store can give; the last known one when it is unreachable. */
  get(): Promise<CutoverSnapshot>;
  /** Set `next` if the stored version is still `expectedVersion`; record `audit` with it. Never rejects. */
  compareAndSet(expectedVersion: number, next: CutoverSnapshot, audit: AuditEntry): Promise<CasResult>;
  /** Called with every snapshot this sidecar switches to (own CAS, other sidecars, poll, reconcile after an outage). Returns unsubscribe. */
  subscribe(cb: (s: CutoverSnapshot) => void): () => void;
  /** The last `limit` audit entries, oldest first. Rejects when the store is unreachable. */
  audit(limit?: number): Promise<AuditEntry[]>;
  /** Append a non-transition record (rollback step, breaker trip). Never rejects; buffered while unreachable. */
  appendAudit(entry: AuditEntry): Promise<void>;
  health(): StoreHealth;
  close(): Promise<void>;
}

/** Validate a stored snapshot. Null when it is not one (corrupt key, another program's data). */
export function parseSnapshot(json: string): CutoverSnapshot | null {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return null;
  }
  return isSnapshot(v) ? { state: v.state, version: v.version, since: v.since, reason: v.reason, readPercent: v.readPercent } : null;
}

export function isSnapshot(v: unknown): v is CutoverSnapshot {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    isCutoverState(o.state) &&
    Number.isSafeInteger(o.version) &&
    (o.version as number) >= 0 &&
    typeof o.since === 'number' &&
    Number.isFinite(o.since) &&
    typeof o.reason === 'string' &&
    typeof o.readPercent === 'number' &&
    o.readPercent >= 0 &&
    o.readPercent <= 100
  );
}

/** Checks both stores apply before a CAS; null when fine, else the reason. */
export function casPrecondition(expectedVersion: number, next: CutoverSnapshot): string | null {
  if (!isSnapshot(next)) return 'next is not a valid cutover snapshot';
  if (next.version !== expectedVersion + 1) return `next.version must be ${expectedVersion + 1}, got ${next.version}`;
  return null;
}

/** A set of subscriber callbacks; one throwing does not stop the others. */
export class Subscribers {
  private readonly cbs = new Set<(s: CutoverSnapshot) => void>();
  constructor(private readonly onError: (err: unknown) => void) {}
  add(cb: (s: CutoverSnapshot) => void): () => void {
    this.cbs.add(cb);
    return () => void this.cbs.delete(cb);
  }
  emit(s: CutoverSnapshot): void {
    for (const cb of this.cbs) {
      try {
        cb(s);
      } catch (err) {
        this.onError(err);
      }
    }
  }
  clear(): void {
    this.cbs.clear();
  }
}
