/**
 * The write switchover's commit re-judges the guards (a breaker that opened, the store, a rollback meanwhile), but
 * the gates' freshness counts as of the request: the switchover's own steps (drain, fence, catch-up) must not age
 * gate 3 past its window. At a demo's time scale the window (a day × scale) was shorter than those steps, and every
 * switchover was undone at its last step ("gate 3 passed 2s ago, older than 1s"). Fake clock, real Controller.
 */
import t from 'tap';
import { DEFAULT_CONTROL_CONFIG, scaleControlConfig } from '../../src/domain/control-config.js';
import { Controller } from '../../src/control/controller.js';
import { MemoryStore } from '../../src/control/memory-store.js';
import { ProxyStats } from '../../src/proxy/stats.js';

function setup(stepsMs: number) {
  let clock = 1_000_000;
  const store = new MemoryStore({ initial: { state: 'SHADOW_WRITES', version: 4, since: clock, reason: 'x', readPercent: 100 }, now: () => clock });
  let ran = 0;
  const ctl = new Controller({
    store,
    // A day is 1 s: the gates' freshness window.
    config: scaleControlConfig(DEFAULT_CONTROL_CONFIG, 1 / 86_400),
    stats: new ProxyStats(),
    sidecarId: 'a',
    runGate: async (n) => ({ gate: n, passed: true, at: clock, ms: 0, criteria: [] }),
    rollback: {
      drainTarget: async () => ({ waitedMs: 0, cancelled: 0 }),
      restoreSourceAfterWrites: async () => {
        throw new Error('not in this test');
      },
      pauseReplication: async () => false,
    },
    switchover: async (commit) => {
      ran++;
      clock += stepsMs; // hold, drain, fence, wait for the target, sequences, reverse replication
      try {
        await commit();
        return { ok: true };
      } catch (e) {
        return { ok: false, error: (e as Error).message };
      }
    },
    now: () => clock,
    tickMs: 3_600_000,
  });
  return { ctl, tick: (ms: number) => void (clock += ms), ran: () => ran };
}

t.test('a switchover longer than the freshness window commits when gate 3 was fresh at the request', async (t) => {
  const s = setup(5_000);
  t.teardown(() => s.ctl.close());
  await s.ctl.gate(3);
  s.tick(200);
  const o = await s.ctl.transition({ to: 'WRITES_TO_AURORA', reason: 'test', by: 'test' });
  t.ok(o.ok, o.ok ? 'committed' : o.reason);
  t.equal(s.ctl.snapshot().state, 'WRITES_TO_AURORA');
});

t.test('a gate 3 already stale at the request is refused before the switchover runs', async (t) => {
  const s = setup(5_000);
  t.teardown(() => s.ctl.close());
  await s.ctl.gate(3);
  s.tick(1_500);
  const o = await s.ctl.transition({ to: 'WRITES_TO_AURORA', reason: 'test', by: 'test' });
  t.notOk(o.ok);
  t.match(!o.ok && o.reason, /gate 3 passed .* older than/);
  t.equal(s.ran(), 0, 'no database step ran');
  t.equal(s.ctl.snapshot().state, 'SHADOW_WRITES');
});
