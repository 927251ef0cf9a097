/**
 * Every sidecar checks its state against the writer the databases recorded (src/replication/writer-record.ts,
 * DESIGN.md "Fencing" 3): at start, whenever the store comes back after an outage, and every few seconds. When
 * they disagree it adopts the recorded writer through the store (so every sidecar converges), audited; it never
 * routes writes to a writer the databases say is fenced (those writes meet the fence meanwhile: refused, never
 * acknowledged). The decision is a pure function of the state, the record and the clock.
 */
import { log } from '../support/log.js';
import type { WriterRecord } from '../replication/writer-record.js';
import type { CutoverSnapshot } from '../domain/cutover-machine.js';
import { STATE_POLICY, type CutoverState } from '../domain/states.js';
import type { StateStore } from './store.js';
import type { Role } from '../domain/role.js';

export type WriterVerdict =
  | { readonly kind: 'agree' }
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'adopt'; readonly state: CutoverState; readonly reason: string };

export interface VerdictOptions {
  readonly now: number;
  /**
   * A ROLLBACK younger than this may still be starting its run (drain, then the lock): leave it alone. Older,
   * with no lock held, nobody runs it (e.g. a compare-and-set Redis executed after it timed out).
   */
  readonly rollbackGraceMs: number;
  /** The rollback's read ramp: a live runner finishes within it. */
  readonly rampMs: number;
  /** Operator's way out: no grace. */
  readonly force?: boolean;
}

/** The state whose writes go to `writer`, for a sidecar that must adopt it. */
export function stateFor(writer: Role): CutoverState {
  return writer === 'target' ? 'WRITES_TO_AURORA' : 'SOURCE_PRIMARY';
}

export function writerVerdict(s: CutoverSnapshot, rec: Pick<WriterRecord, 'epoch' | 'writer' | 'changing'>, o: VerdictOptions): WriterVerdict {
  if (rec.epoch === 0) return { kind: 'agree' }; // no writer change recorded yet: nothing to hold the state to
  if (rec.changing) return { kind: 'wait', reason: `a writer change by ${rec.changing} is running` };
  const why = `the databases record the ${rec.writer} as writer (epoch ${rec.epoch})`;
  if (s.state === 'ROLLBACK') {
    const age = o.now - s.since;
    if (rec.writer === 'target' && (o.force || age > o.rollbackGraceMs)) {
      return { kind: 'adopt', state: 'WRITES_TO_AURORA', reason: `ROLLBACK for ${Math.round(age / 1000)} s and no rollback ran: ${why}` };
    }
    if (rec.writer === 'source' && (o.force || age > o.rollbackGraceMs + o.rampMs)) {
      return { kind: 'adopt', state: 'SOURCE_PRIMARY', reason: `ROLLBACK for ${Math.round(age / 1000)} s and no runner finished it: ${why}, the rollback's database steps are done` };
    }
    return { kind: 'agree' };
  }
  if (STATE_POLICY[s.state].writesTo === rec.writer) return { kind: 'agree' };
  return { kind: 'adopt', state: stateFor(rec.writer), reason: `${s.state} routes writes to the ${STATE_POLICY[s.state].writesTo}, but ${why} and the other fenced` };
}

export interface WriterSyncDeps {
  readonly store: StateStore;
  /** Reads the record from both databases (control sessions). */
  read(): Promise<WriterRecord>;
  snapshot(): CutoverSnapshot;
  /** Sets the state through the store (compare-and-set, audited as an override). */
  override(state: CutoverState, reason: string, by: string): Promise<boolean>;
  rampMs: number;
  rollbackGraceMs?: number;
  /** Full check period. Default 5000 ms; the store's health is watched every 500 ms for a reconnect. */
  periodMs?: number;
  now?: () => number;
}

export class WriterSync {
  private timer: NodeJS.Timeout | null = null;
  private lastCheck = 0;
  private wasDegraded = false;
  private running: Promise<WriterVerdict | null> | null = null;
  last: { at: number; record?: WriterRecord; verdict?: WriterVerdict; error?: string } | null = null;

  constructor(private readonly d: WriterSyncDeps) {}

  start(): void {
    const now = this.d.now ?? Date.now;
    this.timer = setInterval(() => {
      const degraded = this.d.store.health().degraded;
      const reconnected = this.wasDegraded && !degraded;
      this.wasDegraded = degraded;
      if (reconnected || now() - this.lastCheck >= (this.d.periodMs ?? 5000)) void this.check(reconnected ? 'store reconnected' : 'periodic');
    }, 500);
    this.timer.unref();
  }

  /** One check; `force` (the operator's way out) skips the ROLLBACK grace. Never rejects. */
  check(why: string, force = false): Promise<WriterVerdict | null> {
    if (this.running) return this.running;
    this.running = this.once(why, force).finally(() => (this.running = null));
    return this.running;
  }

  private async once(why: string, force: boolean): Promise<WriterVerdict | null> {
    const now = (this.d.now ?? Date.now)();
    this.lastCheck = now;
    let record: WriterRecord;
    try {
      record = await this.d.read();
    } catch (e) {
      this.last = { at: now, error: (e as Error).message };
      log.warn({ err: (e as Error).message, why }, 'could not read the writer record; the fence guards the writes meanwhile');
      return null;
    }
    const verdict = writerVerdict(this.d.snapshot(), record, { now, rollbackGraceMs: this.d.rollbackGraceMs ?? 120_000, rampMs: this.d.rampMs, force });
    this.last = { at: now, record, verdict };
    if (verdict.kind === 'adopt') {
      log.warn({ to: verdict.state, reason: verdict.reason, why }, 'adopting the writer the databases recorded');
      const ok = await this.d.override(verdict.state, `${verdict.reason} (${why})`, 'writer-record');
      if (!ok) log.error({ to: verdict.state }, 'could not adopt the recorded writer yet (store unavailable); retrying');
    }
    return verdict;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
