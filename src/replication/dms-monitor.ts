/**
 * Monitor for AWS DMS: DescribeReplicationTasks for status and FullLoadProgressPercent, CloudWatch
 * GetMetricData for CDCLatencySource/CDCLatencyTarget (seconds, AWS/DMS namespace:
 * https://docs.aws.amazon.com/dms/latest/userguide/CHAP_Monitoring.html#CHAP_Monitoring.Metrics.Task),
 * and Stop/StartReplicationTask to pause and resume (rollback step 5).
 */
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DatabaseMigrationServiceClient, DescribeReplicationInstancesCommand, DescribeReplicationTasksCommand,
  StartReplicationTaskCommand, StopReplicationTaskCommand, type ReplicationTask,
} from '@aws-sdk/client-database-migration-service';
import type { Observation, ReplicationMonitor } from './monitor.js';
import { arnResourceId, dmsPhase } from './dms-phase.js';

export interface AwsClientSettings {
  region?: string;
  /** Override the service endpoint (tests point it at a local double). */
  endpoint?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

export interface DmsMonitorOptions {
  taskArn: string;
  aws?: AwsClientSettings;
  /** Prebuilt clients (they win over `aws`). */
  dms?: DatabaseMigrationServiceClient;
  cloudwatch?: CloudWatchClient;
  /** CloudWatch ReplicationInstanceIdentifier; looked up from the task's instance ARN when absent. */
  instanceIdentifier?: string;
  /** CloudWatch ReplicationTaskIdentifier; default the task ARN's resource id. */
  taskMetricId?: string;
  /** How far back to look for latency datapoints. Default 10 min. */
  latencyWindowMs?: number;
  /** Metric period. Default 60 s (DMS publishes per minute). */
  periodSeconds?: number;
  now?: () => number;
}

export interface DmsTaskStatus {
  readonly arn: string;
  readonly identifier: string | undefined;
  readonly status: string;
  readonly migrationType: string | undefined;
  readonly fullLoadProgressPercent: number | undefined;
  readonly stopReason: string | undefined;
  readonly lastFailureMessage: string | undefined;
  readonly instanceArn: string | undefined;
}

export interface DmsMonitor extends ReplicationMonitor {
  describe(): Promise<DmsTaskStatus>;
  /** Latest CDCLatencySource and CDCLatencyTarget (seconds); null where CloudWatch has none. */
  latency(): Promise<{ source: number | null; target: number | null }>;
  /** StopReplicationTask. */
  pause(): Promise<void>;
  /** StartReplicationTask with `resume-processing`. */
  resume(): Promise<void>;
}

function clientConfig(a: AwsClientSettings = {}) {
  return {
    region: a.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(a.endpoint ? { endpoint: a.endpoint } : {}),
    ...(a.credentials ? { credentials: a.credentials } : {}),
    // Without a request timeout a black-holed endpoint hangs the monitor for good; this SDK version also needs
    // throwOnRequestTimeout, or it only warns and keeps waiting.
    requestHandler: { requestTimeout: 10_000, connectionTimeout: 5_000, throwOnRequestTimeout: true },
  };
}

function view(t: ReplicationTask): DmsTaskStatus {
  return {
    arn: t.ReplicationTaskArn ?? '',
    identifier: t.ReplicationTaskIdentifier,
    status: t.Status ?? 'unknown',
    migrationType: t.MigrationType,
    fullLoadProgressPercent: t.ReplicationTaskStats?.FullLoadProgressPercent,
    stopReason: t.StopReason,
    lastFailureMessage: t.LastFailureMessage,
    instanceArn: t.ReplicationInstanceArn,
  };
}

export function dmsMonitor(opts: DmsMonitorOptions): DmsMonitor {
  const dms = opts.dms ?? new DatabaseMigrationServiceClient(clientConfig(opts.aws));
  const cw = opts.cloudwatch ?? new CloudWatchClient(clientConfig(opts.aws));
  const now = opts.now ?? Date.now;
  let instanceId = opts.instanceIdentifier;

  const describeRaw = async (): Promise<ReplicationTask> => {
    const out = await dms.send(new DescribeReplicationTasksCommand({
      Filters: [{ Name: 'replication-task-arn', Values: [opts.taskArn] }],
      WithoutSettings: true,
    }));
    const task = out.ReplicationTasks?.[0];
    if (!task) throw new Error(`DMS task ${opts.taskArn} not found`);
    return task;
  };

  const instanceIdentifier = async (instanceArn: string | undefined): Promise<string | undefined> => {
    if (instanceId || !instanceArn) return instanceId;
    const out = await dms.send(new DescribeReplicationInstancesCommand({
      Filters: [{ Name: 'replication-instance-arn', Values: [instanceArn] }],
    }));
    instanceId = out.ReplicationInstances?.[0]?.ReplicationInstanceIdentifier;
    return instanceId;
  };

  const latencyFor = async (instanceArn: string | undefined) => {
    const inst = await instanceIdentifier(instanceArn);
    const dims = [
      ...(inst ? [{ Name: 'ReplicationInstanceIdentifier', Value: inst }] : []),
      { Name: 'ReplicationTaskIdentifier', Value: opts.taskMetricId ?? arnResourceId(opts.taskArn) },
    ];
    const end = now();
    const q = (Id: string, MetricName: string) => ({
      Id,
      MetricStat: { Metric: { Namespace: 'AWS/DMS', MetricName, Dimensions: dims }, Period: opts.periodSeconds ?? 60, Stat: 'Maximum' },
    });
    const out = await cw.send(new GetMetricDataCommand({
      StartTime: new Date(end - (opts.latencyWindowMs ?? 600_000)),
      EndTime: new Date(end),
      ScanBy: 'TimestampDescending',
      MetricDataQueries: [q('source', 'CDCLatencySource'), q('target', 'CDCLatencyTarget')],
    }));
    // Newest datapoint of each series; do not trust the server's order.
    const latest = (id: string): number | null => {
      const r = out.MetricDataResults?.find((x) => x.Id === id);
      const ts = r?.Timestamps ?? [];
      const vs = r?.Values ?? [];
      let best: { at: number; v: number } | null = null;
      for (let i = 0; i < Math.min(ts.length, vs.length); i++) {
        const at = new Date(ts[i]!).getTime();
        if (!best || at > best.at) best = { at, v: vs[i]! };
      }
      return best ? best.v : null;
    };
    return { source: latest('source'), target: latest('target') };
  };

  return {
    kind: 'dms',
    async describe() {
      return view(await describeRaw());
    },
    async latency() {
      return latencyFor((await describeRaw()).ReplicationInstanceArn);
    },
    async pause() {
      await dms.send(new StopReplicationTaskCommand({ ReplicationTaskArn: opts.taskArn }));
    },
    async resume() {
      await dms.send(new StartReplicationTaskCommand({ ReplicationTaskArn: opts.taskArn, StartReplicationTaskType: 'resume-processing' }));
    },
    async observe(): Promise<Observation> {
      const task = await describeRaw();
      const v = view(task);
      const lat = await latencyFor(task.ReplicationInstanceArn);
      const has = lat.source !== null || lat.target !== null;
      const p = dmsPhase({
        status: v.status,
        migrationType: v.migrationType,
        fullLoadProgressPercent: v.fullLoadProgressPercent,
        fullLoadStarted: task.ReplicationTaskStats?.FullLoadStartDate !== undefined,
        tablesErrored: task.ReplicationTaskStats?.TablesErrored,
        stopReason: v.stopReason,
        lastFailureMessage: v.lastFailureMessage,
      }, has);
      // CDCLatencyTarget is measured from the source commit, so it already contains the source's part.
      const lagSeconds = p.streaming && has ? Math.max(lat.source ?? 0, lat.target ?? 0) : null;
      const detail = `task ${v.identifier ?? v.arn} ${v.status}${v.stopReason ? ` (${v.stopReason})` : ''}, full load ${v.fullLoadProgressPercent ?? 0}%, ` +
        `CDC latency source ${lat.source ?? '?'}s target ${lat.target ?? '?'}s`;
      return { phase: p.phase, lagSeconds, lagBytes: null, now: now(), detail, ...(p.error ? { error: p.error } : {}) };
    },
  };
}
