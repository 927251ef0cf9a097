/** Gate 3's criteria from the proxy's counters and the shadow service's evidence, and the latency histogram. */
import t from 'tap';
import { DEFAULT_GATE3, gate3 } from '../../src/wiring/gates.js';
import { LatencyHistogram } from '../../src/proxy/latency.js';
import { ProxyStats } from '../../src/proxy/stats.js';
import { ShadowStats, type Shadower } from '../../src/shadow/shadower.js';
import type { ProxyServer } from '../../src/proxy/server.js';

t.test('LatencyHistogram quantiles are within a bucket (~19%) of the truth', async (t) => {
  const h = new LatencyHistogram();
  t.equal(h.quantile(0.99), null, 'no observations, no quantile');
  for (let i = 1; i <= 1000; i++) h.record(i / 100); // 0.01 .. 10 ms
  const p50 = h.quantile(0.5)!;
  const p99 = h.quantile(0.99)!;
  t.ok(p50 >= 5 && p50 <= 5 * 1.19, `p50 ${p50}`);
  t.ok(p99 >= 9.9 && p99 <= 9.9 * 1.19, `p99 ${p99}`);
  h.record(1e9);
  t.ok(h.quantile(1)! > 1000, 'huge values land in the last bucket');
  h.reset();
  t.equal(h.count, 0);
});

const at = Date.parse('2026-11-25T00:00:00Z');
const proxyWith = (stats: ProxyStats) => ({ stats }) as unknown as ProxyServer;
const shadowerWith = (st: ShadowStats) => ({ stats: st, writes: true }) as unknown as Shadower;
const byName = (r: ReturnType<typeof gate3>) => Object.fromEntries(r.criteria.map((c) => [c.name, c]));

t.test('gate 3 passes with enough clean evidence and fails naming each criterion otherwise', async (t) => {
  const stats = new ProxyStats();
  stats.statements.target = 10_000;
  for (let i = 0; i < 1000; i++) stats.latency.target.read.record(2);
  const st = new ShadowStats();
  st.shadowed = 200;
  st.compared = 400;
  st.matched = 400;
  st.latencyMs = Array.from({ length: 400 }, () => 3);
  const cfg = { ...DEFAULT_GATE3, minShadowed: 100 };
  const ok = gate3(cfg, proxyWith(stats), shadowerWith(st), { passed: true, at: at - 3600_000 }, at);
  t.ok(ok.passed, JSON.stringify(ok.criteria.filter((c) => !c.passed)));

  const stale = byName(gate3(cfg, proxyWith(stats), shadowerWith(st), { passed: true, at: at - 25 * 3600_000 }, at));
  t.notOk(stale['gate 2 (counts, checksums) passed'].passed, 'a gate 2 older than a day does not count');
  t.notOk(byName(gate3(cfg, proxyWith(stats), shadowerWith(st), undefined, at))['gate 2 (counts, checksums) passed'].passed, 'gate 2 never run');

  const slow = new ProxyStats();
  slow.statements.target = 100;
  for (let i = 0; i < 100; i++) slow.latency.target.read.record(i < 95 ? 2 : 80);
  st.latencyMs = Array.from({ length: 100 }, (_, i) => (i < 95 ? 3 : 50));
  const r = byName(gate3(cfg, proxyWith(slow), shadowerWith(st), { passed: true, at }, at));
  t.notOk(r['target read p99 (ms)'].passed, `read p99 ${r['target read p99 (ms)'].measured} fails < 30`);
  t.notOk(r['target write p99 (ms)'].passed, `write p99 ${r['target write p99 (ms)'].measured} fails < 20`);

  const none = byName(gate3(cfg, proxyWith(new ProxyStats()), null, undefined, at));
  t.notOk(none['shadow writes active'].passed);
  t.notOk(none['target read p99 (ms)'].passed, 'no reads measured is no evidence');
  t.match(String(none['target read p99 (ms)'].detail), /not measured/);

  st.mismatched.value = 1;
  t.notOk(byName(gate3(cfg, proxyWith(stats), shadowerWith(st), { passed: true, at }, at))['unexplained shadow mismatches'].passed, 'one unexplained mismatch fails the gate');
});
