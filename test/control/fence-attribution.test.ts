/**
 * The fence's own refusals are not target faults (issue 14 gap): a link this sidecar's write hold retired, or a
 * target the databases record as fenced (another sidecar's rollback), does not feed the error-rate breaker; the
 * same faults on an unfenced target do, and start the rollback. Fake clock, real Controller and breakers.
 */
import t from 'tap';
import { isTargetFault } from '../../src/domain/attribution.js';
import { DEFAULT_CONTROL_CONFIG, scaleControlConfig } from '../../src/domain/control-config.js';
import { Controller } from '../../src/control/controller.js';
import { MemoryStore } from '../../src/control/memory-store.js';
import { ProxyStats } from '../../src/proxy/stats.js';

t.test('attribution: 57P01 and a lost connection on a fenced target are the fence at work', async (t) => {
  t.equal(isTargetFault('57P01', { backend: 'target' }), true, 'a termination on an unfenced target counts');
  t.equal(isTargetFault('57P01', { backend: 'target', fenced: true }), false);
  t.equal(isTargetFault('connection', { backend: 'target', fenced: true }), false);
  t.equal(isTargetFault('25006', { backend: 'target' }), false, 'a refusal is never a server fault');
  t.equal(isTargetFault('42501', { backend: 'target', sourceResult: 'ok', fenced: true }), false, 'a fenced privilege refusal the source did not give is not counted either');
});

t.test('controller: target faults while the databases record the target as fenced do not trip the breaker', async (t) => {
  let clock = 1_000_000;
  let fenced = true;
  const store = new MemoryStore({ initial: { state: 'WRITES_TO_AURORA', version: 1, since: clock, reason: 'x', readPercent: 100 }, now: () => clock });
  const stats = new ProxyStats();
  const ctl = new Controller({
    store,
    config: scaleControlConfig(DEFAULT_CONTROL_CONFIG, 0.001),
    stats,
    sidecarId: 'a',
    runGate: async () => ({ gate: 1, passed: true, at: clock, ms: 0, criteria: [] }),
    rollback: {
      drainTarget: async () => ({ waitedMs: 0, cancelled: 0 }),
      restoreSourceAfterWrites: async () => {
        throw new Error('not in this test');
      },
      pauseReplication: async () => false,
    },
    targetFenced: () => fenced,
    now: () => clock,
    tickMs: 3_600_000,
  });
  t.teardown(() => ctl.close());
  const burst = (ticks: number) => {
    for (let i = 0; i < ticks; i++) {
      stats.statements.target += 100;
      stats.backendFaults.target += 100;
      clock += 20;
      ctl.tick();
    }
  };
  burst(100);
  const er = () => ctl.breakers.readings().find((b) => b.name === 'error-rate')!;
  t.not(er().status, 'open', 'the breaker stays closed while the target is recorded as fenced');
  t.equal(ctl.snapshot().state, 'WRITES_TO_AURORA', 'no rollback');
  fenced = false;
  burst(100);
  t.equal(er().status, 'open', 'the same faults on an unfenced target trip it');
  t.equal(ctl.snapshot().state, 'ROLLBACK', 'and start the rollback');
  await ctl.rollbackDone();
});
