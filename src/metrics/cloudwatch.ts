/**
 * CloudWatch both ways: a publisher that sends our own metrics with PutMetricData every interval,
 * and the target's AWS/RDS CPUUtilization for the target-cpu breaker
 * (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.AuroraMonitoring.Metrics.html).
 * AWS failures are logged and returned as values; nothing here throws into the control loop.
 */
import { CloudWatchClient, GetMetricDataCommand, PutMetricDataCommand, type StandardUnit } from '@aws-sdk/client-cloudwatch';
import { Counter, type Registry } from 'prom-client';
import { log } from '../support/log.js';
import type { ProxyStats } from '../proxy/stats.js';
import type { BreakerReading } from '../domain/breaker.js';
import { ROLES } from '../domain/role.js';

export interface CloudWatchAwsSettings {
  /** Default AWS_REGION, else us-east-1. */
  region?: string;
  /** Override the service endpoint (tests point it at a local double). */
  endpoint?: string;
  /** Default: the SDK's provider chain (env, profile, instance/task role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** SDK attempts per call, retries included. Default 3 (the SDK's). */
  maxAttempts?: number;
  /** Per-request socket timeout; the SDK has none by default, so a black-holed endpoint would hang. Default 10000. */
  requestTimeoutMs?: number;
}

export interface Dimension {
  readonly Name: string;
  readonly Value: string;
}

export interface CloudWatchDatum {
  readonly MetricName: string;
  readonly Value: number;
  readonly Unit: StandardUnit;
  /** Added to the publisher's own dimensions. */
  readonly Dimensions?: readonly Dimension[];
}

export function cloudWatchClient(a: CloudWatchAwsSettings = {}): CloudWatchClient {
  const ms = a.requestTimeoutMs ?? 10_000;
  return new CloudWatchClient({
    region: a.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(a.endpoint ? { endpoint: a.endpoint } : {}),
    ...(a.credentials ? { credentials: a.credentials } : {}),
    ...(a.maxAttempts ? { maxAttempts: a.maxAttempts } : {}),
    // Without throwOnRequestTimeout this smithy version only warns on a request timeout and keeps waiting.
    requestHandler: { requestTimeout: ms, connectionTimeout: Math.min(ms, 5_000), throwOnRequestTimeout: true },
  });
}

const errorText = (e: unknown): string => {
  const err = e as Error & { $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  return `${err.name}: ${err.message}${status ? ` (HTTP ${status})` : ''}`;
};

// ---------------------------------------------------------------- datums

/** A copy of ProxyStats' counters (ProxyStats itself is mutated in place). */
export type ProxyCounters = { readonly [K in keyof ProxyStats]: ProxyStats[K] };

export function snapshotStats(s: ProxyStats): ProxyCounters {
  return structuredClone({ ...s });
}

/** `targetFallbacks` → `TargetFallbacks`. */
const metricName = (key: string): string => key[0]!.toUpperCase() + key.slice(1);

/**
 * Per-interval Count datums from two snapshots (prev null: since the process started).
 * CloudWatch sums Counts over a period, so we send deltas, not the ever-growing totals.
 */
export function proxyDatums(cur: ProxyCounters, prev: ProxyCounters | null): CloudWatchDatum[] {
  const delta = (c: number, p: number | undefined) => (p === undefined || c < p ? c : c - p);
  const count = (MetricName: string, Value: number, Dimensions?: Dimension[]): CloudWatchDatum => ({ MetricName, Value, Unit: 'Count', ...(Dimensions ? { Dimensions } : {}) });
  const out: CloudWatchDatum[] = [count('ClientsActive', cur.clientsActive)];
  const scalars = ['clientsAccepted', 'clientsRejected', 'authFailures', 'protocolErrors', 'targetFallbacks', 'targetDiverted'] as const;
  for (const key of scalars) out.push(count(metricName(key), delta(cur[key], prev?.[key])));
  const perBackend = ['statements', 'errors', 'backendFaults', 'connectFailures'] as const;
  for (const key of perBackend) {
    const name = metricName(key);
    for (const b of ROLES) out.push(count(name, delta(cur[key][b], prev?.[key][b]), [{ Name: 'Backend', Value: b }]));
  }
  // Target readers (--target-readers): their faults and fallbacks, and each one's lag at the last sample.
  const readers = Object.entries(cur.readerLagMs);
  if (readers.length > 0) {
    for (const key of ['readerFaults', 'readerFallbacks', 'readerConnectFailures'] as const) out.push(count(metricName(key), delta(cur[key], prev?.[key])));
    for (const [reader, ms] of readers) if (Number.isFinite(ms)) out.push({ MetricName: 'TargetReaderLag', Value: ms, Unit: 'Milliseconds', Dimensions: [{ Name: 'Reader', Value: reader }] });
  }
  return out;
}

/** BreakerOpen (1/0) for every breaker, and BreakerValue where it has a measurement. */
export function breakerDatums(readings: readonly BreakerReading[]): CloudWatchDatum[] {
  const out: CloudWatchDatum[] = [];
  for (const r of readings) {
    const Dimensions = [{ Name: 'Breaker', Value: r.name }];
    out.push({ MetricName: 'BreakerOpen', Value: r.open ? 1 : 0, Unit: 'None', Dimensions });
    if (r.value !== null && Number.isFinite(r.value)) out.push({ MetricName: 'BreakerValue', Value: r.value, Unit: 'None', Dimensions });
  }
  return out;
}

// ---------------------------------------------------------------- publisher

export interface CloudWatchPublisherOptions {
  client?: CloudWatchClient;
  aws?: CloudWatchAwsSettings;
  /** Default 'PgCutover'. */
  namespace?: string;
  /** On every datum, e.g. [{ Name: 'Sidecar', Value: id }]. */
  dimensions: readonly Dimension[];
  /** Default 60000 (CloudWatch's standard resolution). 0: no timer, only publishNow. */
  intervalMs?: number;
  /** Called once per publish; deltas are the caller's job (see proxyDatums). */
  read: () => CloudWatchDatum[];
  /** Counts pgcutover_cloudwatch_publish_failures_total here. */
  registry?: Registry;
}

export type PublishResult = { ok: true; count: number } | { ok: false; error: string };

export interface CloudWatchPublisher {
  publishNow(): Promise<PublishResult>;
  /** Stops the timer and waits for a publish in flight (no final publish). */
  stop(): Promise<void>;
}

/** PutMetricData takes at most 1000 datums per request (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricData.html). */
export const MAX_DATUMS_PER_PUT = 1000;

export function createCloudWatchPublisher(opts: CloudWatchPublisherOptions): CloudWatchPublisher {
  const cw = opts.client ?? cloudWatchClient(opts.aws);
  const namespace = opts.namespace ?? 'PgCutover';
  const existing = opts.registry?.getSingleMetric('pgcutover_cloudwatch_publish_failures_total');
  const failures =
    existing instanceof Counter
      ? existing
      : new Counter({ name: 'pgcutover_cloudwatch_publish_failures_total', help: 'PutMetricData calls that failed', registers: opts.registry ? [opts.registry] : [] });
  let inFlight: Promise<PublishResult> | null = null;

  const publish = async (): Promise<PublishResult> => {
    let datums: CloudWatchDatum[];
    try {
      datums = opts.read();
    } catch (e) {
      log.error({ err: e }, 'cloudwatch: reading the metrics failed');
      return { ok: false, error: `read: ${(e as Error).message}` };
    }
    const timestamp = new Date();
    const metricData = datums.map((d) => ({
      MetricName: d.MetricName,
      Value: d.Value,
      Unit: d.Unit,
      Timestamp: timestamp,
      Dimensions: [...opts.dimensions, ...(d.Dimensions ?? [])],
    }));
    for (let i = 0; i < metricData.length; i += MAX_DATUMS_PER_PUT) {
      try {
        await cw.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: metricData.slice(i, i + MAX_DATUMS_PER_PUT) }));
      } catch (e) {
        failures.inc();
        const error = errorText(e);
        log.warn({ namespace, sent: i, total: metricData.length, err: error }, 'cloudwatch: PutMetricData failed');
        return { ok: false, error };
      }
    }
    return { ok: true, count: metricData.length };
  };

  const publishNow = (): Promise<PublishResult> => {
    // One publish at a time: a slow AWS must not pile up requests every interval.
    inFlight ??= publish().finally(() => (inFlight = null));
    return inFlight;
  };

  const intervalMs = opts.intervalMs ?? 60_000;
  const timer = intervalMs > 0 ? setInterval(() => void publishNow(), intervalMs) : null;
  timer?.unref();

  return {
    publishNow,
    async stop() {
      if (timer) clearInterval(timer);
      if (inFlight) await inFlight;
    },
  };
}

// ---------------------------------------------------------------- target CPU

export interface CpuSourceOptions {
  client?: CloudWatchClient;
  aws?: CloudWatchAwsSettings;
  /** Aurora cluster: dimension DBClusterIdentifier. One of this or dbInstanceIdentifier is required. */
  dbClusterIdentifier?: string;
  /** With a cluster: only the WRITER's (or READERs') CPU. Default: all instances of the cluster. */
  role?: 'WRITER' | 'READER';
  /** An RDS instance: dimension DBInstanceIdentifier. */
  dbInstanceIdentifier?: string;
  /** Default 60 (RDS publishes CPUUtilization per minute). */
  periodSeconds?: number;
  /** How far back to look for the newest datapoint. Default 10 min. */
  windowMs?: number;
  now?: () => number;
}

export interface CpuSource {
  /** Newest CPUUtilization Average (percent), or null when CloudWatch has none or cannot be reached. */
  read(): Promise<number | null>;
}

export function createCpuSource(opts: CpuSourceOptions): CpuSource {
  const dims: Dimension[] = opts.dbClusterIdentifier
    ? [{ Name: 'DBClusterIdentifier', Value: opts.dbClusterIdentifier }, ...(opts.role ? [{ Name: 'Role', Value: opts.role }] : [])]
    : opts.dbInstanceIdentifier
      ? [{ Name: 'DBInstanceIdentifier', Value: opts.dbInstanceIdentifier }]
      : [];
  if (dims.length === 0) throw new TypeError('createCpuSource needs dbClusterIdentifier or dbInstanceIdentifier');
  const cw = opts.client ?? cloudWatchClient(opts.aws);
  const now = opts.now ?? Date.now;
  const what = dims.map((d) => `${d.Name}=${d.Value}`).join(',');

  return {
    async read() {
      const end = now();
      try {
        const out = await cw.send(new GetMetricDataCommand({
          StartTime: new Date(end - (opts.windowMs ?? 600_000)),
          EndTime: new Date(end),
          ScanBy: 'TimestampDescending',
          MetricDataQueries: [{
            Id: 'cpu',
            MetricStat: { Metric: { Namespace: 'AWS/RDS', MetricName: 'CPUUtilization', Dimensions: dims }, Period: opts.periodSeconds ?? 60, Stat: 'Average' },
          }],
        }));
        // Newest by timestamp; do not rely on ScanBy being honoured.
        const r = out.MetricDataResults?.find((x) => x.Id === 'cpu');
        const ts = r?.Timestamps ?? [];
        const vs = r?.Values ?? [];
        let best: { at: number; v: number } | null = null;
        for (let i = 0; i < Math.min(ts.length, vs.length); i++) {
          const at = new Date(ts[i]!).getTime();
          if (Number.isFinite(vs[i]) && (!best || at > best.at)) best = { at, v: vs[i]! };
        }
        return best ? best.v : null;
      } catch (e) {
        log.warn({ metric: 'AWS/RDS CPUUtilization', dimensions: what, err: errorText(e) }, 'cloudwatch: reading target CPU failed');
        return null;
      }
    },
  };
}

export interface CpuWatch {
  /** Read once now and hand the sample to onSample (also what the timer does). */
  poll(): Promise<number | null>;
  stop(): void;
}

/** Polls `source` every `intervalMs` (first poll at once) and feeds e.g. BreakerSet.observeCpu. */
export function startCpuWatch(opts: { source: CpuSource; intervalMs?: number; onSample: (percent: number | null) => void }): CpuWatch {
  let stopped = false;
  let inFlight: Promise<number | null> | null = null;
  const poll = (): Promise<number | null> => {
    inFlight ??= opts.source
      .read()
      .then((v) => {
        if (!stopped) {
          try {
            opts.onSample(v);
          } catch (err) {
            log.error({ err }, 'cpu watch: onSample threw');
          }
        }
        return v;
      })
      .finally(() => (inFlight = null));
    return inFlight;
  };
  const timer = setInterval(() => void poll(), opts.intervalMs ?? 60_000);
  timer.unref();
  void poll();
  return {
    poll,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
