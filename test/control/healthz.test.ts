/**
 * /healthz is honest (issue 17: it said ok with both backends unreachable and with replication failed).
 * A real sidecar in front of PostgreSQL 14 and 15 through fault relays: 503 degraded with the reason
 * while a backend does not answer (down from the start, half-open, reset), 200 ok once it does again.
 */
import t from 'tap';
import { startPg, freePort } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { startFaultRelay } from '../helpers/fault-relay.js';
import { until } from '../helpers/wait.js';
import { healthVerdict } from '../../src/control/backend-probe.js';

const [source, target] = await Promise.all([startPg(t, 14), startPg(t, 15)]);

interface Health {
  code: number;
  status: string;
  reasons: string[];
  backends: Record<string, { ok: boolean | null }>;
}
const health = async (adminUrl: string): Promise<Health> => {
  const r = await fetch(`${adminUrl}/healthz`, { signal: AbortSignal.timeout(5000) });
  return { code: r.status, ...((await r.json()) as Omit<Health, 'code'>) };
};

t.test('both backends unreachable from the start: 503 with both reasons', async (t) => {
  const [p1, p2] = [await freePort(), await freePort()];
  const p = await startProxy(t, `postgresql://postgres:postgres@127.0.0.1:${p1}/postgres`, `postgresql://postgres:postgres@127.0.0.1:${p2}/postgres`, { healthProbeMs: 100, connectTimeoutMs: 500 });
  const h = await until('both probed', async () => {
    const x = await health(p.adminUrl);
    return x.backends.source?.ok === false && x.backends.target?.ok === false ? x : null;
  });
  t.equal(h.code, 503);
  t.equal(h.status, 'degraded');
  t.match(h.reasons, [/^source unreachable: .*ECONNREFUSED/, /^target unreachable: .*ECONNREFUSED/]);
});

t.test('target half-open, then reset, then back: degraded while it is, ok after', async (t) => {
  const relay = await startFaultRelay(t, { host: '127.0.0.1', port: target.port });
  const p = await startProxy(t, source.url(), relay.url(target.url()), { healthProbeMs: 100, connectTimeoutMs: 500 });
  const ok = await until('ok', async () => ((await health(p.adminUrl)).code === 200 ? true : null));
  t.ok(ok, '200 ok with both up');
  t.same((await health(p.adminUrl)).reasons, []);
  relay.set('half-open');
  const h = await until('degraded on a half-open target', async () => {
    const x = await health(p.adminUrl);
    return x.code === 503 ? x : null;
  });
  t.match(h, { status: 'degraded', reasons: [/^target unreachable/] }, 'a target that stopped answering');
  t.notMatch(h.reasons.join(), /source/, 'the source is fine');
  relay.set('reset');
  await until('still degraded while connections are reset', async () => ((await health(p.adminUrl)).backends.target?.ok === false ? true : null));
  relay.set('pass');
  await until('ok again', async () => ((await health(p.adminUrl)).code === 200 ? true : null));
  t.pass('200 ok after the target answers again');
});

t.test('the verdict: replication failed and a lost store are degraded too', async (t) => {
  const up = { ok: true, at: 1 };
  t.same(healthVerdict({ store: { degraded: false }, backends: { source: up, target: up }, replication: { state: 'CDC_ACTIVE' } }), { status: 'ok', reasons: [] });
  t.same(healthVerdict({ store: { degraded: false }, backends: { source: up, target: up }, replication: { state: 'REPLICATION_FAILED', replicationError: 'slot missing' } }), {
    status: 'degraded',
    reasons: ['replication failed: slot missing'],
  });
  t.same(healthVerdict({ store: { degraded: true, reason: 'ECONNREFUSED' }, backends: {}, replication: null }), { status: 'degraded', reasons: ['shared store unreachable: ECONNREFUSED'] });
  t.same(healthVerdict({ store: { degraded: false }, backends: { source: { ok: null, at: null } }, replication: null }).reasons, ['source not probed yet']);
});
