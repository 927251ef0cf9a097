/**
 * Where alerts go (issue: "alerts go to the log, a metric and an optional webhook"). `alert()` is
 * synchronous and never throws: the log line and the counter happen at once; the webhook POST is
 * queued and delivered in order by one background loop, so a slow or dead receiver never blocks
 * the controller's tick. The queue is bounded: beyond `maxQueue` the oldest alert is dropped
 * (counted), because the newest state is what an operator needs.
 */
import { Counter, type Registry } from 'prom-client';
import { log } from '../support/log.js';

export type AlertSeverity = 'critical' | 'warning' | 'info';

export interface Alert {
  readonly kind: 'breaker-open' | 'breaker-closed' | 'scale-hook' | 'rollback' | (string & {});
  readonly severity: AlertSeverity;
  readonly breaker?: string;
  readonly message: string;
  readonly detail?: Record<string, unknown>;
  /** Epoch milliseconds. */
  readonly at: number;
}

export interface AlertSinkOptions {
  /** POST every alert as JSON here. Default: no webhook (log and metric only). */
  webhookUrl?: string;
  /** Per attempt, including reading the response. Default 3000. */
  webhookTimeoutMs?: number;
  /** Named in every webhook payload as `sidecar`. */
  sidecarId: string;
  /** Registry for pgcutover_alerts_total and pgcutover_alert_webhook_failures_total. Default: none (not exported). */
  registry?: Registry;
  /** Default the global fetch (tests inject one). */
  fetchImpl?: typeof fetch;
  /** Retries after the first attempt on a network error, timeout or 5xx. Default 2. */
  retries?: number;
  /** First retry delay; doubles each retry. Default 500. */
  retryBaseMs?: number;
  /** Alerts waiting for the webhook; beyond this the oldest is dropped. Default 100. */
  maxQueue?: number;
}

export interface AlertSink {
  /** Log, count and (with a webhook) enqueue. Never throws, never waits. */
  alert(a: Alert): void;
  /** Resolves once every queued alert has been delivered or given up on. */
  flush(): Promise<void>;
  /** Waits for the queue up to one webhook timeout, then aborts and drops what is left. Later alerts are logged and counted only. */
  close(): Promise<void>;
}

/** Why a webhook delivery was given up on (the `reason` label). */
export type WebhookFailure = 'timeout' | 'network' | 'http_5xx' | 'http_4xx' | 'dropped' | 'closed';

export interface AlertPayload {
  sidecar: string;
  kind: string;
  severity: AlertSeverity;
  breaker: string | null;
  message: string;
  detail: Record<string, unknown>;
  at: string;
}

export function alertPayload(sidecarId: string, a: Alert): AlertPayload {
  return {
    sidecar: sidecarId,
    kind: a.kind,
    severity: a.severity,
    breaker: a.breaker ?? null,
    message: a.message,
    detail: a.detail ?? {},
    at: new Date(a.at).toISOString(),
  };
}

/** A counter in `reg`, reused when another sink already registered it there. */
function counter(reg: Registry | undefined, name: string, help: string, labelNames: string[]): Counter {
  const existing = reg?.getSingleMetric(name);
  if (existing instanceof Counter) return existing;
  return new Counter({ name, help, labelNames, registers: reg ? [reg] : [] });
}

export function createAlertSink(opts: AlertSinkOptions): AlertSink {
  const timeoutMs = opts.webhookTimeoutMs ?? 3000;
  const retries = opts.retries ?? 2;
  const retryBaseMs = opts.retryBaseMs ?? 500;
  const maxQueue = opts.maxQueue ?? 100;
  const doFetch = opts.fetchImpl ?? fetch;
  const alerts = counter(opts.registry, 'pgcutover_alerts_total', 'Alerts raised, by kind and severity', ['kind', 'severity']);
  const failures = counter(opts.registry, 'pgcutover_alert_webhook_failures_total', 'Alerts the webhook did not get, by reason', ['reason']);

  /** Serialised at enqueue time, so a payload that cannot be serialised fails in alert(), not in a retry loop. */
  const queue: { kind: string; breaker: string | null; body: string }[] = [];
  let draining: Promise<void> | null = null;
  let closed = false;
  /** Aborts the attempt or backoff in progress (used by close). */
  const abort = new AbortController();

  const fail = (reason: WebhookFailure, p: { kind: string; breaker: string | null }, error: string) => {
    failures.inc({ reason });
    log.warn({ alert: p.kind, breaker: p.breaker, reason, err: error }, 'alert webhook delivery failed');
  };

  /** One POST. Returns null on success, else why it failed and whether a retry may help. */
  const attempt = async (body: string): Promise<{ reason: WebhookFailure; retry: boolean; error: string } | null> => {
    const signal = AbortSignal.any([abort.signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const res = await doFetch(opts.webhookUrl!, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal,
      });
      await res.arrayBuffer(); // drain so the connection is reused
      if (res.ok) return null;
      const error = `HTTP ${res.status}`;
      return res.status >= 500 ? { reason: 'http_5xx', retry: true, error } : { reason: 'http_4xx', retry: false, error };
    } catch (e) {
      const err = e as Error;
      const timedOut = err.name === 'TimeoutError' || (err.name === 'AbortError' && !abort.signal.aborted);
      if (abort.signal.aborted) return { reason: 'closed', retry: false, error: 'sink closed' };
      return timedOut
        ? { reason: 'timeout', retry: true, error: `no answer within ${timeoutMs}ms` }
        : { reason: 'network', retry: true, error: String((err.cause as Error | undefined)?.message ?? err.message) };
    }
  };

  const backoff = (ms: number) =>
    new Promise<void>((resolve) => {
      // Not unref'd: retries are few and short, and someone awaiting flush() must see it resolve; close() cuts it short.
      const timer = setTimeout(done, ms);
      abort.signal.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        abort.signal.removeEventListener('abort', done);
        resolve();
      }
    });

  const deliver = async (p: (typeof queue)[number]): Promise<void> => {
    for (let i = 0; ; i++) {
      const r = await attempt(p.body);
      if (r === null) return;
      if (!r.retry || i >= retries || abort.signal.aborted) return fail(abort.signal.aborted ? 'closed' : r.reason, p, r.error);
      await backoff(retryBaseMs * 2 ** i);
    }
  };

  const drain = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      if (abort.signal.aborted) fail('closed', p, 'sink closed');
      else await deliver(p);
    }
    draining = null;
  };

  const flush = async (): Promise<void> => {
    while (draining) await draining;
  };

  return {
    flush,
    alert(a) {
      try {
        const fields = { alert: a.kind, severity: a.severity, breaker: a.breaker, detail: a.detail, at: a.at };
        if (a.severity === 'critical') log.error(fields, a.message);
        else if (a.severity === 'warning') log.warn(fields, a.message);
        else log.info(fields, a.message);
        alerts.inc({ kind: a.kind, severity: a.severity });
        if (!opts.webhookUrl || closed) return;
        const p = alertPayload(opts.sidecarId, a);
        queue.push({ kind: p.kind, breaker: p.breaker, body: JSON.stringify(p) });
        while (queue.length > maxQueue) fail('dropped', queue.shift()!, `queue over ${maxQueue}`);
        draining ??= drain().catch((err: unknown) => {
          draining = null;
          log.error({ err }, 'alert webhook loop failed');
        });
      } catch (err) {
        // An alert must never take down the caller (e.g. a detail that cannot be serialised).
        log.error({ err, alert: a?.kind }, 'alert could not be raised');
      }
    },
    async close() {
      closed = true;
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
      await Promise.race([flush(), deadline]);
      clearTimeout(timer);
      abort.abort();
      await flush();
    },
  };
}
