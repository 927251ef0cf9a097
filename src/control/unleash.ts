/**
 * The Unleash binding: runs the real `unleash-client` (polling GET /api/client/features), reads the
 * four cutover flags from the definitions it holds, and turns a change of the state they ask for
 * into one request to the control plane (`onRequest`), which runs it through the guards.
 *
 * Unleash down: the client keeps the last definitions it had, and at start it loads its backup
 * file (`backupPath`), so flags() still answers; healthy() turns false; no request is made from
 * anything but a reading fetched from the server, so an outage or a restart invents nothing.
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { Unleash, UnleashEvents } from 'unleash-client';
import { log } from '../support/log.js';
import type { CutoverState } from '../domain/states.js';
import {
  DEFAULT_FLAG_NAMES,
  EMPTY_READING,
  desiredState,
  readFlags,
  type FlagNames,
  type FlagReading,
} from './unleash-flags.js';

export { DEFAULT_FLAG_NAMES, desiredState, readFlags, readStageFor, flagPercent } from './unleash-flags.js';
export type { FlagNames, FlagReading, FlagDefinition } from './unleash-flags.js';

export interface UnleashRequest {
  readonly to: CutoverState;
  readonly reason: string;
}

export interface UnleashBindingOptions {
  /** Unleash API base, e.g. `http://unleash:4242/api` (the client appends `/client/features`). */
  url: string;
  appName: string;
  /** Default: the client's own (hostname + random). */
  instanceId?: string;
  /** A client API token, sent as the `Authorization` header (Unleash's convention, no "Bearer"). */
  apiToken?: string;
  /** Polling interval. Default 15000 (the client's default). */
  refreshIntervalMs?: number;
  /** Directory of the client's backup file (`unleash-backup-<appName>.json`); created if missing. Default: the OS temp dir. */
  backupPath?: string;
  /** Feature names; defaults cutover.reads-pct, cutover.shadow-writes, cutover.writes-to-aurora, cutover.kill-switch. */
  flagNames?: Partial<FlagNames>;
  /** Called when the desired state changes (and on the first reading fetched from the server). Must not throw; errors are logged. */
  onRequest: (req: UnleashRequest) => void;
  /** Clock (epoch ms). Default Date.now. */
  now?: () => number;
  /**
   * Backstop: healthy() turns false when no fetch has succeeded for this long, even without a
   * reported failure. Failed fetches turn it false at once. Default 11 × refreshIntervalMs + 30000:
   * after an outage the client backs off up to 10 extra intervals between polls, and a healthy
   * server must not look stale then.
   */
  staleAfterMs?: number;
  /** startUnleashBinding waits at most this long for the first fetch (the client retries a refused connection for ~3s). Default 5000. */
  startWaitMs?: number;
}

export interface UnleashBinding {
  /** The last flags: from the server, else from the backup file, else all off (`source: 'none'`). */
  flags(): FlagReading;
  /** The last fetch succeeded and is not older than `staleAfterMs`; false once closed. */
  healthy(): boolean;
  close(): Promise<void>;
}

/** Starts the client and resolves once the first fetch finished (or `startWaitMs` passed). */
export async function startUnleashBinding(opts: UnleashBindingOptions): Promise<UnleashBinding> {
  const now = opts.now ?? Date.now;
  const names: FlagNames = { ...DEFAULT_FLAG_NAMES, ...opts.flagNames };
  const refreshInterval = opts.refreshIntervalMs ?? 15_000;
  const staleAfterMs = opts.staleAfterMs ?? 11 * refreshInterval + 30_000;
  if (opts.backupPath) await fs.mkdir(opts.backupPath, { recursive: true });

  const client = new Unleash({
    url: opts.url,
    appName: opts.appName,
    instanceId: opts.instanceId,
    refreshInterval,
    backupPath: opts.backupPath,
    customHeaders: opts.apiToken ? { Authorization: opts.apiToken } : undefined,
    disableAutoStart: true,
    // One client per binding is intended; tests start many in one process.
    skipInstanceCountWarning: true,
  });

  let reading: FlagReading = EMPTY_READING;
  let lastOkAt: number | null = null;
  let lastFailAt: number | null = null;
  let reportedHealthy: boolean | null = null;
  // undefined until the first server reading: that one is always acted on.
  let lastDesired: CutoverState | null | undefined;
  let closed = false;
  let lastProblems = '';

  const healthy = (): boolean =>
    !closed &&
    lastOkAt !== null && (lastFailAt === null || lastOkAt >= lastFailAt) && now() - lastOkAt <= staleAfterMs;

  const noteHealth = (detail?: unknown): void => {
    const h = healthy();
    if (h === reportedHealthy) return;
    reportedHealthy = h;
    if (h) log.info({ url: opts.url }, 'unleash reachable: flags follow the server');
    else log.warn({ url: opts.url, err: detail }, 'unleash unreachable: keeping the last flags, no flag-driven transitions');
  };

  const take = (source: 'server' | 'backup'): void => {
    reading = readFlags((n) => client.getFeatureToggleDefinition(n), names, source, now());
    const problemsKey = reading.problems.join('\n');
    if (problemsKey !== lastProblems && reading.problems.length > 0) log.warn({ problems: reading.problems }, 'unleash flags not understood; treated as off');
    lastProblems = problemsKey;
    if (source !== 'server') return;
    const want = desiredState(reading);
    const state = want?.state ?? null;
    if (lastDesired !== undefined && state === lastDesired) return;
    lastDesired = state;
    if (!want) return;
    log.info({ to: want.state, reason: want.reason }, 'unleash flags request a transition');
    try {
      // Typed void, but an async callback's rejection must not become an unhandled one.
      const r: unknown = opts.onRequest({ to: want.state, reason: want.reason });
      if (r instanceof Promise) r.catch((err: unknown) => log.error({ err }, 'unleash onRequest callback failed'));
    } catch (err) {
      log.error({ err }, 'unleash onRequest callback threw');
    }
  };

  const fetchFailed = (detail: unknown): void => {
    lastFailAt = now();
    noteHealth(detail);
  };

  // 'changed' comes only from a fetched response (we pass no bootstrap), every 200, same data or not.
  client.on(UnleashEvents.Changed, () => {
    if (closed) return;
    lastOkAt = now();
    take('server');
    noteHealth();
  });
  client.on(UnleashEvents.Unchanged, () => {
    if (closed) return;
    lastOkAt = now();
    noteHealth();
  });
  // 'ready' without a server reading means the backup file was loaded.
  client.on(UnleashEvents.Ready, () => {
    if (!closed && reading.source === 'none') take('backup');
  });
  client.on(UnleashEvents.Error, (err: Error) => {
    // Metrics/registration failures do not make the flags stale; fetch failures do.
    if (closed || /^Unleash Metrics error/.test(err?.message ?? '')) return;
    fetchFailed(err?.message);
  });
  client.on(UnleashEvents.Warn, (msg: unknown) => {
    // The polling fetcher warns (instead of erroring) on 404/429/5xx and on a reset keep-alive socket.
    if (!closed && typeof msg === 'string' && (/client\/(features|delta)\S* responded/.test(msg) || /Socket keep alive error/.test(msg))) {
      fetchFailed(msg);
    }
  });

  const startWaitMs = opts.startWaitMs ?? 5000;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.start(),
    new Promise<void>((r) => {
      timer = setTimeout(r, startWaitMs);
    }),
  ]);
  clearTimeout(timer);
  // 'ready' is emitted on the next tick after the first data; let it land before flags() is read.
  await new Promise<void>((r) => setImmediate(r));
  noteHealth();

  return {
    flags: () => reading,
    healthy,
    async close() {
      if (closed) return;
      closed = true;
      // Listeners stay: a fetch in flight may still report, and an 'error' with no listener would throw.
      client.destroy();
      // destroy() strips the repository's listeners, but a fetch still in flight reports its failure
      // through it afterwards: with no 'error' listener that emit throws inside the client's polling
      // loop and surfaces as an unhandled rejection (seen when closing while Unleash is down).
      const repo = (client as unknown as { repository?: unknown }).repository;
      if (repo instanceof EventEmitter) repo.on('error', () => {});
    },
  };
}
