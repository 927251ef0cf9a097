import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createAlertSink, type Alert } from '../../src/control/alerts.js';

/** A webhook receiver whose answer each test scripts: a status, or 'hang' (never answers). */
async function receiver(t: { teardown: (fn: () => unknown) => void }) {
  const bodies: Record<string, unknown>[] = [];
  const state = { answer: (_n: number): number | 'hang' => 200 };
  const hung: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      bodies.push({ ...(JSON.parse(raw) as Record<string, unknown>), _contentType: req.headers['content-type'] });
      const a = state.answer(bodies.length);
      if (a === 'hang') return void hung.push(res);
      res.writeHead(a).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    for (const res of hung) res.destroy();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return { url, bodies, state, hung };
}

const AT = Date.UTC(2024, 4, 1, 12, 0, 0);
const cpuOpen: Alert = {
  kind: 'breaker-open',
  severity: 'critical',
  breaker: 'target-cpu',
  message: 'target CPU above 80% for 10m',
  detail: { value: 93.5, threshold: 80 },
  at: AT,
};

t.test('every alert is counted; with a webhook it is POSTed as JSON', async (t) => {
  const hook = await receiver(t);
  const registry = new Registry();
  const sink = createAlertSink({ webhookUrl: hook.url, sidecarId: 'sc-1', registry });
  sink.alert(cpuOpen);
  sink.alert({ kind: 'breaker-closed', severity: 'info', breaker: 'target-cpu', message: 'target CPU back below 80%', at: AT + 60_000 });
  await sink.flush();
  t.same(hook.bodies, [
    {
      sidecar: 'sc-1', kind: 'breaker-open', severity: 'critical', breaker: 'target-cpu', message: 'target CPU above 80% for 10m',
      detail: { value: 93.5, threshold: 80 }, at: '2024-05-01T12:00:00.000Z', _contentType: 'application/json',
    },
    {
      sidecar: 'sc-1', kind: 'breaker-closed', severity: 'info', breaker: 'target-cpu', message: 'target CPU back below 80%',
      detail: {}, at: '2024-05-01T12:01:00.000Z', _contentType: 'application/json',
    },
  ], 'delivered in order, with the sidecar and an ISO time');
  const text = await registry.metrics();
  t.match(text, 'pgcutover_alerts_total{kind="breaker-open",severity="critical"} 1');
  t.match(text, 'pgcutover_alerts_total{kind="breaker-closed",severity="info"} 1');
  t.notMatch(text, /pgcutover_alert_webhook_failures_total\{/, 'no failures');
  await sink.close();
});

t.test('without a webhook alerts are still counted', async (t) => {
  const registry = new Registry();
  const sink = createAlertSink({ sidecarId: 'sc-1', registry });
  sink.alert({ kind: 'rollback', severity: 'critical', message: 'rollback started', at: AT });
  await sink.flush();
  t.match(await registry.metrics(), 'pgcutover_alerts_total{kind="rollback",severity="critical"} 1');
  // A second sink on the same registry shares the counters instead of failing to register.
  createAlertSink({ sidecarId: 'sc-2', registry }).alert({ kind: 'rollback', severity: 'critical', message: 'again', at: AT });
  t.match(await registry.metrics(), 'pgcutover_alerts_total{kind="rollback",severity="critical"} 2');
});

t.test('a 500 is retried with backoff; a 400 is not', async (t) => {
  const hook = await receiver(t);
  const registry = new Registry();
  const sink = createAlertSink({ webhookUrl: hook.url, sidecarId: 'sc-1', registry, retryBaseMs: 20 });
  hook.state.answer = (n) => (n <= 2 ? 500 : 200);
  sink.alert(cpuOpen);
  await sink.flush();
  t.equal(hook.bodies.length, 3, 'two 500s, then delivered');
  t.notMatch(await registry.metrics(), /pgcutover_alert_webhook_failures_total\{/);

  hook.state.answer = () => 503;
  sink.alert(cpuOpen);
  await sink.flush();
  t.equal(hook.bodies.length, 6, 'first attempt and two retries');
  t.match(await registry.metrics(), 'pgcutover_alert_webhook_failures_total{reason="http_5xx"} 1');

  hook.state.answer = () => 400;
  sink.alert(cpuOpen);
  await sink.flush();
  t.equal(hook.bodies.length, 7, 'a 4xx is the receiver refusing the payload: no retry');
  t.match(await registry.metrics(), 'pgcutover_alert_webhook_failures_total{reason="http_4xx"} 1');
});

t.test('an unreachable webhook is a counted network failure', async (t) => {
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const registry = new Registry();
  const sink = createAlertSink({ webhookUrl: `http://127.0.0.1:${port}/`, sidecarId: 'sc-1', registry, retryBaseMs: 10 });
  sink.alert(cpuOpen);
  await sink.flush();
  t.match(await registry.metrics(), 'pgcutover_alert_webhook_failures_total{reason="network"} 1');
});

t.test('a webhook that never answers does not block alert(); it times out', async (t) => {
  const hook = await receiver(t);
  hook.state.answer = () => 'hang';
  const registry = new Registry();
  const sink = createAlertSink({ webhookUrl: hook.url, sidecarId: 'sc-1', registry, webhookTimeoutMs: 150, retries: 1, retryBaseMs: 10 });
  // alert() is synchronous: it queues and returns, whatever the webhook does.
  for (let i = 0; i < 10; i++) t.equal(sink.alert({ ...cpuOpen, message: `alert ${i}` }), undefined);
  sink.alert(cpuOpen);
  // The webhook never answers: close() resolving at all shows it gave up by its own timeout.
  await sink.close();
  const text = await registry.metrics();
  t.match(text, /pgcutover_alert_webhook_failures_total\{reason="closed"\} \d+/, 'what was left was dropped at close');
  t.match(text, 'pgcutover_alerts_total{kind="breaker-open",severity="critical"} 11', 'still counted');

  const slow = createAlertSink({ webhookUrl: hook.url, sidecarId: 'sc-1', registry, webhookTimeoutMs: 100, retries: 1, retryBaseMs: 10 });
  slow.alert(cpuOpen);
  await slow.flush();
  t.match(await registry.metrics(), 'pgcutover_alert_webhook_failures_total{reason="timeout"} 1', 'two attempts timed out: one failure');
});

t.test('the queue is bounded: beyond 100 waiting alerts the oldest are dropped', async (t) => {
  const hook = await receiver(t);
  hook.state.answer = (n) => (n === 1 ? 'hang' : 200);
  const registry = new Registry();
  const sink = createAlertSink({ webhookUrl: hook.url, sidecarId: 'sc-1', registry, webhookTimeoutMs: 2000 });
  for (let i = 0; i < 150; i++) sink.alert({ ...cpuOpen, message: `alert ${i}` });
  while (hook.hung.length === 0) await new Promise((r) => setTimeout(r, 5));
  hook.hung[0]!.writeHead(200).end();
  await sink.flush();
  const messages = hook.bodies.map((b) => b.message);
  t.equal(messages.length, 101, 'the one in flight and the newest 100');
  t.equal(messages[0], 'alert 0');
  t.equal(messages[1], 'alert 50', 'alerts 1..49 were dropped');
  t.equal(messages.at(-1), 'alert 149');
  t.match(await registry.metrics(), 'pgcutover_alert_webhook_failures_total{reason="dropped"} 49');
  t.match(await registry.metrics(), 'pgcutover_alerts_total{kind="breaker-open",severity="critical"} 150');
});

t.test('alert() never throws, even on a detail that cannot be serialised', async (t) => {
  const hook = await receiver(t);
  const registry = new Registry();
  const sink = createAlertSink({ webhookUrl: hook.url, sidecarId: 'sc-1', registry });
  t.doesNotThrow(() => sink.alert({ ...cpuOpen, detail: { big: 10n } }));
  sink.alert(cpuOpen);
  await sink.flush();
  t.equal(hook.bodies.length, 1, 'the unserialisable one is logged and counted, not sent; the next one is');
  t.match(await registry.metrics(), 'pgcutover_alerts_total{kind="breaker-open",severity="critical"} 2');
});
