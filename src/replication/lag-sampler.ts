/**
 * Apply lag over a window, measured the direct way: read the publisher's current LSN, time how
 * long the subscriber takes to report it applied. Used by gate 2 ("CDC lag < 10s over the window").
 */
import type pg from 'pg';
import { connectControl } from './control-conn.js';
import { flushedWalLsn, waitForApplied } from './apply-wait.js';

export interface LagSamples {
  /** Seconds per sample; a sample that timed out counts as the timeout. */
  readonly seconds: readonly number[];
  readonly timeouts: number;
}

export interface LagSampler {
  /** Stops after at least `minWindowMs` since start has been sampled; resolves with the samples. */
  stop(): Promise<LagSamples>;
}

export async function startLagSampler(publisherUrl: string, subscriberUrl: string, subscription: string, opts: { everyMs?: number; timeoutMs?: number; minWindowMs?: number } = {}): Promise<LagSampler> {
  const pub: pg.Client = await connectControl(publisherUrl, { purpose: 'lag-sample' });
  let sub: pg.Client;
  try {
    sub = await connectControl(subscriberUrl, { purpose: 'lag-sample' });
  } catch (err) {
    await pub.end().catch(() => undefined);
    throw err;
  }
  const started = Date.now();
  const seconds: number[] = [];
  let timeouts = 0;
  let stopping = false;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const loop = (async () => {
    while (!stopping || Date.now() - started < (opts.minWindowMs ?? 0) || seconds.length === 0) {
      const lsn = await flushedWalLsn(pub);
      const w = await waitForApplied(sub, subscription, lsn, { timeoutMs, pollMs: 20 });
      seconds.push(w.waitedMs / 1000);
      if (!w.ok) timeouts++;
      await new Promise((r) => setTimeout(r, opts.everyMs ?? 1000));
    }
  })();
  return {
    async stop() {
      stopping = true;
      try {
        await loop;
      } finally {
        await Promise.all([pub.end().catch(() => undefined), sub.end().catch(() => undefined)]);
      }
      return { seconds, timeouts };
    },
  };
}
