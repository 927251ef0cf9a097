/**
 * In-process state store: one sidecar without Redis (demo, single instance). Same contract as
 * `RedisStore`; never degraded.
 */
import { log } from '../support/log.js';
import type { AuditEntry } from '../domain/audit.js';
import { initialSnapshot, type CutoverSnapshot } from '../domain/cutover-machine.js';
import { Subscribers, casPrecondition, type CasResult, type StateStore, type StoreHealth } from './store.js';

export interface MemoryStoreOptions {
  /** Starting snapshot. Default: SOURCE_PRIMARY, version 0, since now. */
  readonly initial?: CutoverSnapshot;
  /** Audit entries kept (oldest dropped). Default 10000, like the Redis stream's MAXLEN. */
  readonly auditMaxLen?: number;
  readonly now?: () => number;
}

export class MemoryStore implements StateStore {
  private snap: CutoverSnapshot;
  private readonly entries: AuditEntry[] = [];
  private seq = 0;
  private readonly maxLen: number;
  private readonly now: () => number;
  private readonly subs = new Subscribers((err) => log.error({ err }, 'state subscriber threw'));

  constructor(opts: MemoryStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.snap = opts.initial ?? initialSnapshot(this.now());
    this.maxLen = opts.auditMaxLen ?? 10_000;
  }

  current(): CutoverSnapshot {
    return this.snap;
  }

  async get(): Promise<CutoverSnapshot> {
    return this.snap;
  }

  async compareAndSet(expectedVersion: number, next: CutoverSnapshot, audit: AuditEntry): Promise<CasResult> {
    const bad = casPrecondition(expectedVersion, next);
    if (bad) return { ok: false, code: 'invalid', current: this.snap, reason: bad };
    if (this.snap.version !== expectedVersion) {
      return { ok: false, code: 'version-conflict', current: this.snap, reason: `version is ${this.snap.version}, not ${expectedVersion}` };
    }
    this.snap = next;
    this.push(audit);
    this.subs.emit(next);
    return { ok: true, snapshot: next };
  }

  subscribe(cb: (s: CutoverSnapshot) => void): () => void {
    return this.subs.add(cb);
  }

  async audit(limit = 100): Promise<AuditEntry[]> {
    return limit > 0 ? this.entries.slice(-limit) : [];
  }

  async appendAudit(entry: AuditEntry): Promise<void> {
    this.push(entry);
  }

  health(): StoreHealth {
    return { degraded: false, lastContactMs: this.now(), pendingLocal: false };
  }

  async close(): Promise<void> {
    this.subs.clear();
  }

  private push(entry: AuditEntry): void {
    this.entries.push({ ...entry, id: String(++this.seq) });
    if (this.entries.length > this.maxLen) this.entries.splice(0, this.entries.length - this.maxLen);
  }
}
