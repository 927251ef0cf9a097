import t from 'tap';
import { cloudWatchDouble } from '../helpers/aws-cloudwatch.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import {
  breakerDatums, createCloudWatchPublisher, createCpuSource, proxyDatums, snapshotStats, startCpuWatch, type CloudWatchDatum,
} from '../../src/metrics/cloudwatch.js';
import { ProxyStats } from '../../src/proxy/stats.js';
import { BreakerSet } from '../../src/domain/breaker.js';

process.removeAllListeners('warning'); // the SDK warns about Node 20 support on every client


const credentials = { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' };
const awsAt = (endpoint: string) => ({ endpoint, region: 'us-east-1', credentials, maxAttempts: 2, requestTimeoutMs: 2000 });

t.test('proxyDatums sends per-interval deltas and the current client count', async (t) => {
  const stats = new ProxyStats();
  stats.clientsActive = 3;
  stats.statements.source = 100;
  stats.statements.target = 40;
  stats.errors.target = 2;
  stats.targetFallbacks = 1;
  const first = snapshotStats(stats);
  const d1 = proxyDatums(first, null);
  const find = (ds: CloudWatchDatum[], name: string, backend?: string) =>
    ds.find((d) => d.MetricName === name && (backend === undefined || d.Dimensions?.[0]?.Value === backend))?.Value;
  t.equal(find(d1, 'Statements', 'source'), 100, 'first interval: everything since start');
  t.equal(find(d1, 'ClientsActive'), 3);
  stats.statements.source = 130;
  stats.statements.target = 40;
  stats.errors.target = 5;
  stats.clientsActive = 1;
  stats.targetFallbacks = 4;
  const d2 = proxyDatums(snapshotStats(stats), first);
  t.equal(find(d2, 'Statements', 'source'), 30);
  t.equal(find(d2, 'Statements', 'target'), 0);
  t.equal(find(d2, 'Errors', 'target'), 3);
  t.equal(find(d2, 'TargetFallbacks'), 3);
  t.equal(find(d2, 'ClientsActive'), 1, 'a gauge, not a delta');
  t.ok(d2.every((d) => d.Unit === 'Count'));
  t.equal(first.statements.source, 100, 'the snapshot is a copy');
  t.notOk(d2.some((d) => d.MetricName === 'TargetReaderLag' || d.MetricName === 'ReaderFaults'), 'no reader datums without --target-readers');
  stats.readerLagMs['r1:5432'] = 120;
  stats.readerFaults = 2;
  const d3 = proxyDatums(snapshotStats(stats), null);
  t.same(d3.find((d) => d.MetricName === 'TargetReaderLag'), { MetricName: 'TargetReaderLag', Value: 120, Unit: 'Milliseconds', Dimensions: [{ Name: 'Reader', Value: 'r1:5432' }] }, 'each reader\'s lag');
  t.equal(find(d3, 'ReaderFaults'), 2);
  t.same(
    d2.filter((d) => d.MetricName === 'BackendFaults').map((d) => d.Dimensions),
    [[{ Name: 'Backend', Value: 'source' }], [{ Name: 'Backend', Value: 'target' }]],
  );
});

t.test('the publisher puts our metrics with the sidecar and breaker dimensions', async (t) => {
  const cw = await cloudWatchDouble(t);
  const breakers = new BreakerSet({ now: () => 0 });
  breakers.observeCpu(85, 0);
  breakers.evaluate(11 * 60_000); // above 80% for 11 minutes: open
  const stats = new ProxyStats();
  stats.statements.target = 7;
  const registry = new Registry();
  const pub = createCloudWatchPublisher({
    aws: awsAt(cw.endpoint),
    dimensions: [{ Name: 'Sidecar', Value: 'sc-1' }],
    intervalMs: 0,
    registry,
    read: () => [...proxyDatums(snapshotStats(stats), null), ...breakerDatums(breakers.readings())],
  });
  t.teardown(() => pub.stop());
  const r = await pub.publishNow();
  t.same(r, { ok: true, count: 15 + 4 + 2 }, '15 proxy datums, 4 BreakerOpen, 2 BreakerValue (CPU, replication-error)');
  const call = cw.calls.at(-1)!;
  t.equal(call.target, 'GraniteServiceVersion20100801.PutMetricData');
  t.equal(call.contentType, 'application/x-amz-json-1.0');
  t.match(call.authorization, /^AWS4-HMAC-SHA256 Credential=AKIDTEST\/\d{8}\/us-east-1\/monitoring\/aws4_request/, 'SigV4 for the monitoring service');
  t.equal(call.body.Namespace, 'PgCutover');
  const data = call.body.MetricData as { MetricName: string; Value: number; Unit: string; Dimensions: { Name: string; Value: string }[]; Timestamp: number }[];
  t.same(data.find((d) => d.MetricName === 'Statements' && d.Dimensions[1]?.Value === 'target'), {
    MetricName: 'Statements', Value: 7, Unit: 'Count', Timestamp: data[0]!.Timestamp,
    Dimensions: [{ Name: 'Sidecar', Value: 'sc-1' }, { Name: 'Backend', Value: 'target' }],
  });
  t.ok(Math.abs(data[0]!.Timestamp - Date.now() / 1000) < 60, 'timestamps are epoch seconds, now');
  const open = data.filter((d) => d.MetricName === 'BreakerOpen').map((d) => [d.Dimensions[1]!.Value, d.Value, d.Unit]);
  t.same(open, [['error-rate', 0, 'None'], ['replication-lag', 0, 'None'], ['target-cpu', 1, 'None'], ['replication-error', 0, 'None']]);
  t.same(data.filter((d) => d.MetricName === 'BreakerValue').map((d) => [d.Dimensions[1]!.Value, d.Value]), [['target-cpu', 85], ['replication-error', 0]], 'unmeasured breakers send no value');
});

t.test('more than 1000 datums go in batches of 1000 (gzipped by the SDK)', async (t) => {
  const cw = await cloudWatchDouble(t);
  const many: CloudWatchDatum[] = Array.from({ length: 2500 }, (_, i) => ({ MetricName: `M${i}`, Value: i, Unit: 'Count' }));
  const pub = createCloudWatchPublisher({ aws: awsAt(cw.endpoint), namespace: 'Test', dimensions: [], intervalMs: 0, read: () => many });
  t.same(await pub.publishNow(), { ok: true, count: 2500 });
  const puts = cw.calls.filter((c) => c.target.endsWith('PutMetricData'));
  t.same(puts.map((c) => (c.body.MetricData as unknown[]).length), [1000, 1000, 500]);
  t.equal(puts[0]!.contentEncoding, 'gzip', 'large bodies arrive compressed');
  t.equal((puts[2]!.body.MetricData as { MetricName: string }[])[499]!.MetricName, 'M2499');
  await pub.stop();
});

t.test('publish failures are values, logged and counted', async (t) => {
  const cw = await cloudWatchDouble(t);
  cw.state.fail = true;
  const registry = new Registry();
  const pub = createCloudWatchPublisher({ aws: awsAt(cw.endpoint), dimensions: [], intervalMs: 0, registry, read: () => [{ MetricName: 'X', Value: 1, Unit: 'Count' }] });
  const r = await pub.publishNow();
  t.equal(r.ok, false);
  t.match(r, { error: /injected failure \(HTTP 500\)/ });
  t.equal(cw.calls.length, 2, 'the SDK retried a 500 once (maxAttempts 2)');
  t.match(await registry.metrics(), 'pgcutover_cloudwatch_publish_failures_total 1');
  const bad = createCloudWatchPublisher({ aws: awsAt(cw.endpoint), dimensions: [], intervalMs: 0, read: () => { throw new Error('no stats'); } });
  t.same(await bad.publishNow(), { ok: false, error: 'read: no stats' });
  await pub.stop();
});

t.test('the publisher publishes on its interval and stops', async (t) => {
  const cw = await cloudWatchDouble(t);
  const pub = createCloudWatchPublisher({ aws: awsAt(cw.endpoint), dimensions: [], intervalMs: 50, read: () => [{ MetricName: 'X', Value: 1, Unit: 'Count' }] });
  while (cw.calls.length < 2) await new Promise((r) => setTimeout(r, 20));
  await pub.stop();
  const n = cw.calls.length;
  await new Promise((r) => setTimeout(r, 150));
  t.equal(cw.calls.length, n, 'no publish after stop');
});

t.test('the CPU source reads the newest AWS/RDS CPUUtilization average', async (t) => {
  const cw = await cloudWatchDouble(t);
  const src = createCpuSource({ aws: awsAt(cw.endpoint), dbClusterIdentifier: 'orders-aurora', role: 'WRITER' });
  cw.state.cpu = [[300, 55], [60, 91.5], [180, 70]]; // not in time order on purpose
  t.equal(await src.read(), 91.5, 'the datapoint from a minute ago');
  const q = cw.calls.at(-1)!.body as { StartTime: number; EndTime: number; MetricDataQueries: { MetricStat: Record<string, unknown> }[] };
  t.same(q.MetricDataQueries[0]!.MetricStat, {
    Metric: { Namespace: 'AWS/RDS', MetricName: 'CPUUtilization', Dimensions: [{ Name: 'DBClusterIdentifier', Value: 'orders-aurora' }, { Name: 'Role', Value: 'WRITER' }] },
    Period: 60,
    Stat: 'Average',
  });
  t.equal(q.EndTime - q.StartTime, 600, 'looks back 10 minutes');

  const inst = createCpuSource({ aws: awsAt(cw.endpoint), dbInstanceIdentifier: 'orders-1', periodSeconds: 300 });
  cw.state.cpu = [];
  t.equal(await inst.read(), null, 'no datapoints: null');
  const iq = cw.calls.at(-1)!.body as { MetricDataQueries: { MetricStat: { Metric: { Dimensions: unknown }; Period: number } }[] };
  t.same(iq.MetricDataQueries[0]!.MetricStat.Metric.Dimensions, [{ Name: 'DBInstanceIdentifier', Value: 'orders-1' }]);
  t.equal(iq.MetricDataQueries[0]!.MetricStat.Period, 300);

  cw.state.fail = true;
  t.equal(await src.read(), null, 'a 500 is null, not an exception');
  t.throws(() => createCpuSource({ aws: awsAt(cw.endpoint) }), /needs dbClusterIdentifier or dbInstanceIdentifier/);
});

t.test('an unreachable CloudWatch is null for the CPU source and an error value for the publisher', async (t) => {
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const endpoint = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise<void>((r) => probe.close(() => r()));
  t.equal(await createCpuSource({ aws: awsAt(endpoint), dbClusterIdentifier: 'c' }).read(), null);
  const pub = createCloudWatchPublisher({ aws: awsAt(endpoint), dimensions: [], intervalMs: 0, read: () => [{ MetricName: 'X', Value: 1, Unit: 'Count' }] });
  t.match(await pub.publishNow(), { ok: false, error: /ECONNREFUSED/ });

  // Accepts and never answers: the client's request timeout ends the wait (the SDK sets none by default).
  const silent = http.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    silent.closeAllConnections();
    return new Promise<void>((r) => silent.close(() => r()));
  });
  const quiet = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  // The server never answers: that read() returns at all shows the request timeout ended the wait.
  const cpu = await createCpuSource({ aws: { ...awsAt(quiet), maxAttempts: 1, requestTimeoutMs: 200 }, dbClusterIdentifier: 'c' }).read();
  t.equal(cpu, null, 'gave up after the request timeout');
});

t.test('startCpuWatch feeds samples to the breaker', async (t) => {
  const cw = await cloudWatchDouble(t);
  cw.state.cpu = [[60, 88]];
  const breakers = new BreakerSet({ now: () => Date.now() });
  const samples: (number | null)[] = [];
  const watch = startCpuWatch({
    source: createCpuSource({ aws: awsAt(cw.endpoint), dbInstanceIdentifier: 'orders-1' }),
    intervalMs: 60_000,
    onSample: (v) => {
      samples.push(v);
      breakers.observeCpu(v);
    },
  });
  t.teardown(() => watch.stop());
  while (samples.length === 0) await new Promise((r) => setTimeout(r, 10));
  t.same(samples, [88], 'polled once at start');
  cw.state.cpu = [];
  t.equal(await watch.poll(), null);
  t.same(samples, [88, null]);
  const cpu = breakers.evaluate().readings.find((r) => r.name === 'target-cpu')!;
  t.equal(cpu.value, 88, 'a null sample keeps the last measurement');
  watch.stop();
  cw.state.cpu = [[60, 50]];
  await watch.poll();
  t.same(samples, [88, null], 'no samples delivered after stop');
});
