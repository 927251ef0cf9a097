import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dmsMonitor } from '../../src/replication/dms-monitor.js';
import { watchReplication } from '../../src/replication/monitor.js';
import type { ReplicationState } from '../../src/domain/replication-machine.js';

process.removeAllListeners('warning'); // the SDK warns about Node 20 support on every client
const ARN = 'arn:aws:dms:us-east-1:123456789012:task:TASKRESOURCEID';
const INSTANCE_ARN = 'arn:aws:dms:us-east-1:123456789012:rep:INSTRES';

interface Call {
  target: string;
  contentType: string;
  authorization: string;
  body: Record<string, unknown>;
}

/** A local double of the two AWS JSON APIs the monitor uses: DMS (JSON 1.1) and CloudWatch (JSON 1.0). */
function awsDouble() {
  const calls: Call[] = [];
  const task: Record<string, unknown> = {
    ReplicationTaskArn: ARN,
    ReplicationTaskIdentifier: 'orders-task',
    ReplicationInstanceArn: INSTANCE_ARN,
    MigrationType: 'full-load-and-cdc',
    Status: 'ready',
    ReplicationTaskStats: { FullLoadProgressPercent: 0, TablesErrored: 0 },
  };
  const latency = { source: [] as number[], target: [] as number[] };
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
      calls.push({ target, contentType: String(req.headers['content-type']), authorization: String(req.headers.authorization ?? ''), body });
      const reply = (status: number, payload: unknown, type: string) => {
        res.writeHead(status, { 'content-type': type });
        res.end(JSON.stringify(payload));
      };
      const dmsReply = (payload: unknown) => reply(200, payload, 'application/x-amz-json-1.1');
      const op = target.split('.')[1];
      if (target.startsWith('AmazonDMSv20160101.')) {
        switch (op) {
          case 'DescribeReplicationTasks': {
            const f = (body.Filters as { Name: string; Values: string[] }[])[0]!;
            return dmsReply({ ReplicationTasks: f.Name === 'replication-task-arn' && f.Values.includes(ARN) ? [task] : [] });
          }
          case 'DescribeReplicationInstances':
            return dmsReply({ ReplicationInstances: [{ ReplicationInstanceArn: INSTANCE_ARN, ReplicationInstanceIdentifier: 'dms-instance-1' }] });
          case 'StopReplicationTask':
            Object.assign(task, { Status: 'stopped', StopReason: 'Stop Reason NORMAL' });
            return dmsReply({ ReplicationTask: task });
          case 'StartReplicationTask':
            Object.assign(task, { Status: 'running', StopReason: undefined });
            return dmsReply({ ReplicationTask: task });
          default:
            return reply(400, { __type: 'InvalidAction', message: `unknown ${target}` }, 'application/x-amz-json-1.1');
        }
      }
      if (target === 'GraniteServiceVersion20100801.GetMetricData') {
        const now = Date.now() / 1000;
        const series = (id: string, vals: number[]) => ({
          Id: id,
          Label: id,
          // Oldest first on purpose: the monitor must pick the newest by timestamp.
          Timestamps: vals.map((_, i) => now - 60 * (vals.length - 1 - i)),
          Values: vals,
          StatusCode: 'Complete',
        });
        return reply(200, { MetricDataResults: [series('source', latency.source), series('target', latency.target)] }, 'application/x-amz-json-1.0');
      }
      return reply(400, { __type: 'UnknownOperation', message: target }, 'application/x-amz-json-1.0');
    });
  });
  return { server, calls, task, latency };
}

const double = awsDouble();
await new Promise<void>((r) => double.server.listen(0, '127.0.0.1', () => r()));
t.teardown(() => new Promise<void>((r) => double.server.close(() => r())));
const endpoint = `http://127.0.0.1:${(double.server.address() as AddressInfo).port}`;
const aws = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } };

t.test('task status and CloudWatch latency drive the replication states in order', async (t) => {
  const mon = dmsMonitor({ taskArn: ARN, aws });
  const seen: ReplicationState[] = [];
  const watch = watchReplication(mon, {
    intervalMs: 60_000,
    config: { caughtUpLagSeconds: 10, caughtUpForMs: 0, failLagSeconds: 60 },
    onObservation: (o, step) => {
      if (step.transition) seen.push(step.state);
      t.comment(`${step.state}: ${o.detail}${o.error ? ` error: ${o.error}` : ''}`);
    },
  });
  t.teardown(() => watch.stop());
  const task = double.task;
  const stats = task.ReplicationTaskStats as Record<string, unknown>;

  t.equal(await watch.poll(), 'NOT_STARTED', 'ready, never started');
  Object.assign(task, { Status: 'running' });
  Object.assign(stats, { FullLoadProgressPercent: 40, FullLoadStartDate: Date.now() / 1000 });
  t.equal(await watch.poll(), 'FULL_LOAD_RUNNING', 'running at 40%');
  stats.FullLoadProgressPercent = 100;
  t.equal(await watch.poll(), 'FULL_LOAD_COMPLETE', 'loaded, CDC not reporting yet');
  double.latency.source = [30, 2];
  double.latency.target = [45, 12];
  t.equal(await watch.poll(), 'CDC_ACTIVE', 'CDC latency reported (12 s, above the caught-up bar)');
  t.equal(watch.last()?.lagSeconds, 12, 'lag is the newest CDCLatencyTarget datapoint, not the older 45');
  double.latency.target = [12, 3];
  t.equal(await watch.poll(), 'CDC_CAUGHT_UP', 'lag 3 s');
  double.latency.target = [3, 90];
  t.equal(await watch.poll(), 'REPLICATION_FAILED', 'lag 90 s > 60 s');
  double.latency.target = [90, 4];
  t.equal(await watch.poll(), 'CDC_ACTIVE', 'recovered');
  Object.assign(task, { Status: 'failed', LastFailureMessage: 'Last Error ODBC general error. Task error notification received' });
  t.equal(await watch.poll(), 'REPLICATION_FAILED', 'task failed');
  t.match(watch.last()?.error, /DMS task failed: Last Error ODBC general error/);
  Object.assign(task, { Status: 'running', LastFailureMessage: undefined });
  t.same(seen, ['FULL_LOAD_RUNNING', 'FULL_LOAD_COMPLETE', 'CDC_ACTIVE', 'CDC_CAUGHT_UP', 'REPLICATION_FAILED', 'CDC_ACTIVE', 'REPLICATION_FAILED']);

  const cw = double.calls.filter((c) => c.target.endsWith('GetMetricData'));
  t.ok(cw.length > 0);
  const q = (cw[0]!.body.MetricDataQueries as { MetricStat: { Metric: { Namespace: string; MetricName: string; Dimensions: { Name: string; Value: string }[] } } }[]);
  t.same(q.map((x) => x.MetricStat.Metric.MetricName), ['CDCLatencySource', 'CDCLatencyTarget']);
  t.same(q[0]!.MetricStat.Metric.Namespace, 'AWS/DMS');
  t.same(q[0]!.MetricStat.Metric.Dimensions, [
    { Name: 'ReplicationInstanceIdentifier', Value: 'dms-instance-1' },
    { Name: 'ReplicationTaskIdentifier', Value: 'TASKRESOURCEID' },
  ], 'dimensions: the instance identifier looked up once, the task resource id from the ARN');
  t.equal(double.calls.filter((c) => c.target.endsWith('DescribeReplicationInstances')).length, 1, 'instance looked up once');
  t.equal(cw[0]!.contentType, 'application/x-amz-json-1.0', 'CloudWatch speaks JSON 1.0 in this SDK version');
  t.match(double.calls[0]!.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/dms\/aws4_request/, 'requests are SigV4-signed');
});

t.test('pause and resume call StopReplicationTask and StartReplicationTask(resume-processing)', async (t) => {
  const mon = dmsMonitor({ taskArn: ARN, aws, instanceIdentifier: 'dms-instance-1' });
  await mon.pause();
  t.equal((await mon.describe()).status, 'stopped');
  const stopped = await mon.observe();
  t.equal(stopped.lagSeconds, null, 'a stopped task has no current lag');
  t.notOk(stopped.error, 'an operator stop is not an error');
  await mon.resume();
  t.equal((await mon.describe()).status, 'running');
  const start = double.calls.filter((c) => c.target.endsWith('StartReplicationTask')).at(-1)!;
  t.same(start.body, { ReplicationTaskArn: ARN, StartReplicationTaskType: 'resume-processing' });
});

t.test('an unknown task is an observation failure, which the watcher turns into an error after 3 in a row', async (t) => {
  const mon = dmsMonitor({ taskArn: 'arn:aws:dms:us-east-1:123456789012:task:NOPE', aws, instanceIdentifier: 'x' });
  await t.rejects(mon.observe(), /not found/);
  const watch = watchReplication(mon, { intervalMs: 60_000, initial: 'CDC_ACTIVE', failuresBeforeError: 3 });
  t.teardown(() => watch.stop());
  t.equal(await watch.poll(), 'CDC_ACTIVE');
  t.equal(await watch.poll(), 'CDC_ACTIVE');
  t.equal(await watch.poll(), 'REPLICATION_FAILED');
  t.match(watch.last()?.error, /monitor failed 3 times: DMS task .* not found/);
});

t.test('pg-cutover start --dms-task-arn: DMS lag feeds the lag breaker; a rollback stops the task', async (t) => {
  process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
  process.env.AWS_SECRET_ACCESS_KEY = 'secret';
  Object.assign(double.task, { Status: 'running', StopReason: undefined, ReplicationTaskStats: { FullLoadProgressPercent: 100, TablesLoaded: 3, TablesErrored: 0 } });
  double.latency.source = [2];
  double.latency.target = [90];
  const { startProxy } = await import('../helpers/proxy.js');
  const p = await startProxy(t, 'postgres://app:app@127.0.0.1:1/app', 'postgres://app:app@127.0.0.1:2/app', {
    state: 'READS_50PCT_AURORA',
    dmsTaskArn: ARN,
    awsEndpoint: endpoint,
    awsRegion: 'us-east-1',
    lagProbe: 'false',
    timeScale: '0.00001',
  });
  const lag = () => p.controller.breakers.readings().find((b) => b.name === 'replication-lag');
  for (let i = 0; i < 50 && lag()?.value !== 90; i++) await new Promise((r) => setTimeout(r, 100));
  t.equal(lag()?.value, 90, 'the lag breaker reads CDCLatencyTarget (90 s)');
  const health = (await (await fetch(`${p.adminUrl}/healthz`)).json()) as { replication: { mode: string; state: string } };
  t.equal(health.replication.mode, 'dms', '/healthz shows the DMS replication runtime');
  const metrics = await (await fetch(`${p.adminUrl}/metrics`)).text();
  t.match(metrics, /pgcutover_replication_state\{state="CDC_ACTIVE"\} 1|pgcutover_replication_state\{state="REPLICATION_FAILED"\} 1/, 'replication state exported');
  const stopsBefore = double.calls.filter((c) => c.target.endsWith('StopReplicationTask')).length;
  const rb = await p.controller.rollback('test', 'test');
  t.ok(rb.ok, 'rollback accepted');
  await p.controller.rollbackDone();
  t.equal(double.calls.filter((c) => c.target.endsWith('StopReplicationTask')).length, stopsBefore + 1, 'rollback step 5 stopped the DMS task');
  const audit = (await p.controller['d'].store.audit(50)) as { kind: string; reason?: string; detail?: { paused?: boolean } }[];
  t.match(audit.find((a) => a.reason === '5 replication paused'), { detail: { paused: true } }, 'audited as paused');
});
