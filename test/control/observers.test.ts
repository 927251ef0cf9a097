/**
 * A running sidecar's observers end to end, from the options a user would pass to `pg-cutover start`:
 * CloudWatch CPUUtilization (a local double of the AWS API) feeds the target-CPU breaker; when it opens, the
 * scale command runs with the reading in its environment and the alert webhook hears about both; the proxy's
 * counters and breaker states are published to CloudWatch.
 */
import t from 'tap';
import http from 'node:http';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { cloudWatchDouble } from '../helpers/aws-cloudwatch.js';
import { startProxy } from '../helpers/proxy.js';

process.removeAllListeners('warning'); // the SDK warns about Node 20 support on every client
process.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
process.env.AWS_SECRET_ACCESS_KEY = 'secret';

t.test('high target CPU: breaker opens, scale command runs, webhook alerted, metrics published', async (t) => {
  const cw = await cloudWatchDouble(t);
  cw.state.cpu = [[30, 95]];
  const alerts: Record<string, unknown>[] = [];
  const hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      alerts.push(JSON.parse(body) as Record<string, unknown>);
      res.end('{}');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => hook.close(() => r())));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pg-cutover-scale-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'scaled');

  const p = await startProxy(t, 'postgres://app:app@127.0.0.1:1/app', 'postgres://app:app@127.0.0.1:2/app', {
    state: 'READS_50PCT_AURORA',
    timeScale: '0.001', // the CPU breaker's 10 min hold becomes 600 ms
    awsRegion: 'us-east-1',
    awsEndpoint: cw.endpoint,
    targetClusterId: 'aurora-target',
    cloudwatchNamespace: 'PgCutoverTest',
    cloudwatchIntervalMs: 1000,
    alertWebhook: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`,
    scaleCommand: `echo "$PGCUTOVER_BREAKER $PGCUTOVER_CPU_PERCENT $PGCUTOVER_THRESHOLD $PGCUTOVER_TARGET" > '${out}'`,
  });
  let scaled = '';
  for (let i = 0; i < 100 && !scaled; i++) {
    await new Promise((r) => setTimeout(r, 100));
    scaled = await fs.readFile(out, 'utf8').catch(() => '');
  }
  t.equal(scaled.trim(), 'target-cpu 95 80 127.0.0.1:2', 'the scale command ran with the reading');
  t.ok(p.controller.breakers.isOpen('target-cpu'), 'the target-CPU breaker is open');
  for (let i = 0; i < 50 && !alerts.some((a) => a.kind === 'scale-hook'); i++) await new Promise((r) => setTimeout(r, 100));
  t.match(alerts, [{ kind: 'breaker-open', breaker: 'target-cpu', severity: 'warning' }], 'the breaker opening was alerted');
  t.ok(alerts.some((a) => a.kind === 'scale-hook'), 'the scale hook run was alerted');
  const metrics = await (await fetch(`${p.adminUrl}/metrics`)).text();
  t.match(metrics, /pgcutover_alerts_total\{kind="breaker-open",severity="warning"\} 1/, 'alerts are counted in /metrics');

  const gets = cw.calls.filter((c) => c.target.endsWith('GetMetricData'));
  t.ok(gets.length >= 1, 'CPUUtilization was read from CloudWatch');
  t.match(JSON.stringify(gets[0].body), /DBClusterIdentifier.*aurora-target/, 'for the configured cluster');
  for (let i = 0; i < 30 && !cw.calls.some((c) => c.target.endsWith('PutMetricData')); i++) await new Promise((r) => setTimeout(r, 100));
  const put = cw.calls.find((c) => c.target.endsWith('PutMetricData'));
  t.ok(put, 'metrics were published to CloudWatch');
  t.equal(put?.body.Namespace, 'PgCutoverTest');
  t.match(JSON.stringify(put?.body.MetricData), /"Sidecar"/, 'with the sidecar as a dimension');

  // Forward transitions wait while a breaker is open (DESIGN.md: no open breaker).
  const o = await p.controller.transition({ to: 'READS_100PCT_AURORA', reason: 'test', by: 'test' });
  t.notOk(o.ok, 'a forward transition is refused while the CPU breaker is open');
});

t.test('bad observer options are refused at start with a reason', async (t) => {
  const { loadStartConfig } = await import('../../src/config/load.js');
  const base = { source: 'postgres://a@127.0.0.1:1/a', target: 'postgres://a@127.0.0.1:2/a' };
  const r1 = loadStartConfig({ ...base, subscription: 's', dmsTaskArn: 'arn:aws:dms:us-east-1:1:task:X' }, {});
  t.notOk(r1.ok);
  t.match(r1.ok ? [] : r1.errors, [/exclusive/]);
  const r2 = loadStartConfig({ ...base, targetClusterId: 'a', targetInstanceId: 'b' }, {});
  t.notOk(r2.ok);
  const r3 = loadStartConfig({ ...base, cloudwatchIntervalMs: '5' }, {});
  t.match(r3.ok ? [] : r3.errors, [/cloudwatch-interval-ms: must be at least 1000/]);
  const r4 = loadStartConfig({ ...base, lagProbe: 'maybe' }, {});
  t.match(r4.ok ? [] : r4.errors, [/lag-probe: expected true or false/]);
});
