/**
 * The parallel run's slot care (DESIGN.md "Write switchover", last paragraph): while writes are on the target,
 * the disabled forward subscription's slot on the source holds WAL that came only from the target; advance it
 * every interval (advanceForwardSlot) so the source does not keep weeks of WAL. Slot retention on either side
 * above a threshold raises an alert once per crossing.
 */
import { log } from '../support/log.js';
import { connectControl, errorText } from './control-conn.js';
import { advanceForwardSlot, type DirectionNames, type SlotAdvance } from './reverse.js';
import { ROLES, type Role } from '../domain/role.js';

export interface SlotAdvancerOptions {
  readonly sourceUrl: string;
  readonly targetUrl: string;
  readonly names?: DirectionNames;
  readonly intervalMs: number;
  readonly writer: () => Role;
  /** Slot retention per side now (the replication runtime's readings). */
  readonly retained: () => { source: number | null; target: number | null };
  readonly alertBytes: number;
  readonly onAlert: (side: Role, bytes: number, threshold: number, crossed: 'above' | 'below') => void;
  readonly now?: () => number;
}

export interface SlotAdvancerStatus {
  readonly lastAdvance: (SlotAdvance & { at: number }) | null;
  readonly lastError: string | null;
  readonly advances: number;
  readonly alerting: readonly Role[];
}

/** Sides whose retention crossed the threshold since `prev` (pure). */
export function retentionCrossings(prev: ReadonlySet<Role>, now: { source: number | null; target: number | null }, threshold: number): { above: Role[]; below: Role[] } {
  const above: Role[] = [];
  const below: Role[] = [];
  for (const side of ROLES) {
    const v = now[side];
    if (v !== null && v > threshold && !prev.has(side)) above.push(side);
    if ((v === null || v <= threshold) && prev.has(side)) below.push(side);
  }
  return { above, below };
}

export function startSlotAdvancer(o: SlotAdvancerOptions) {
  const now = o.now ?? Date.now;
  let lastAdvance: SlotAdvancerStatus['lastAdvance'] = null;
  let lastError: string | null = null;
  let advances = 0;
  const alerting = new Set<Role>();
  let running: Promise<void> | null = null;

  const checkRetention = () => {
    const r = o.retained();
    const x = retentionCrossings(alerting, r, o.alertBytes);
    for (const side of x.above) {
      alerting.add(side);
      o.onAlert(side, r[side]!, o.alertBytes, 'above');
    }
    for (const side of x.below) {
      alerting.delete(side);
      o.onAlert(side, r[side] ?? 0, o.alertBytes, 'below');
    }
  };

  const advance = async () => {
    if (o.writer() !== 'target') return;
    const [s, t] = await Promise.all([connectControl(o.sourceUrl, { purpose: 'slot-advance' }), connectControl(o.targetUrl, { purpose: 'slot-advance' })]).catch((e: unknown) => {
      lastError = errorText(e);
      return [null, null] as const;
    });
    if (!s || !t) return;
    try {
      const a = await advanceForwardSlot(s, t, o.names);
      lastAdvance = { ...a, at: now() };
      lastError = null;
      advances++;
      if (a.skipped > 0) log.info({ slot: a.slot, from: a.from, to: a.to, skipped: a.skipped }, 'forward slot advanced past WAL that came from the target');
    } catch (e) {
      lastError = errorText(e);
      log.warn({ err: lastError }, 'forward slot not advanced');
    } finally {
      await Promise.allSettled([s.end(), t.end()]);
    }
  };

  const tick = (): Promise<void> => {
    running ??= (async () => {
      try {
        checkRetention();
        await advance();
      } catch (e) {
        lastError = errorText(e);
      }
    })().finally(() => (running = null));
    return running;
  };
  const timer = setInterval(() => void tick(), o.intervalMs);
  timer.unref();
  return {
    tick,
    status: (): SlotAdvancerStatus => ({ lastAdvance, lastError, advances, alerting: [...alerting] }),
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
export type SlotAdvancer = ReturnType<typeof startSlotAdvancer>;
