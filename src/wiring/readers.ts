/**
 * The target readers (--target-readers, issue 15 item 2), wired: one view per reader (its applied position
 * book and health), the choice the proxy asks per read, the sampler that books each reader's position after
 * every reading of the writer's, and the lag metrics. Part of the composition root (reads StartConfig).
 */
import type { StartConfig } from '../config/load.js';
import { pgClientConfig, type BackendTarget } from '../net/database-url.js';
import { newReaderView, ReaderChoice } from '../router/readers.js';
import type { FreshnessBook, LsnSample } from '../router/freshness.js';
import { ReaderSampler } from '../replication/reader-sampler.js';
import { ReaderRouting } from '../proxy/reader-routing.js';
import type { Router } from '../proxy/router-glue.js';
import type { ProxyStats } from '../proxy/stats.js';
import { ReaderMetrics } from '../metrics/readers.js';

export interface TargetReaders {
  /** Each reader's address for the session links, in --target-readers order. */
  backends: BackendTarget[];
  routing: ReaderRouting;
  metrics: ReaderMetrics;
  /** After each reading of the writer's positions (FreshnessSampler's afterSample). */
  afterSample(x: LsnSample): Promise<void>;
  stop(): Promise<void>;
}

/** Null when --target-readers names none. */
export function startTargetReaders(
  cfg: StartConfig,
  router: Router,
  freshness: { book: FreshnessBook; maxStalenessMs: number } | null,
  stats: () => ProxyStats,
): TargetReaders | null {
  if (cfg.targetReaders.length === 0) return null;
  const views = cfg.targetReaders.map((r) => newReaderView(r.name));
  const metrics = new ReaderMetrics(views);
  const sampler = new ReaderSampler({
    readers: views,
    readerControl: cfg.targetReaders.map((r) => pgClientConfig(r.control)),
    targetControl: pgClientConfig(cfg.control.target),
    onLag: (name, ms) => metrics.observe(name, ms, stats()),
  });
  return {
    backends: cfg.targetReaders.map((r) => r.link),
    routing: new ReaderRouting({ choice: new ReaderChoice(views), router, freshness }),
    metrics,
    // Not awaited: a reader slow to answer must not delay the main sampler (read-your-writes, shadow lag).
    afterSample: (x) => {
      void sampler.afterSample(x);
      return Promise.resolve();
    },
    stop: () => sampler.stop(),
  };
}
