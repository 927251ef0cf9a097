/**
 * The rollback runner with fake hooks and a fake clock: a step 3 blocked by an unreachable database is retried
 * with backoff (the lock token carried from attempt to attempt) until it succeeds; it stops when the state moved
 * on meanwhile (an operator adopted); any other failure halts at once.
 */
import t from 'tap';
import { MemoryStore } from '../../src/control/memory-store.js';
import { RollbackBlocked, retryDelay, runRollback, type RollbackHooks } from '../../src/control/rollback-runner.js';
import type { CutoverSnapshot } from '../../src/domain/cutover-machine.js';

const from: CutoverSnapshot = { state: 'WRITES_TO_AURORA', version: 5, since: 0, reason: 'x', readPercent: 100 };
const at: CutoverSnapshot = { state: 'ROLLBACK', version: 6, since: 0, reason: 'breaker', readPercent: 100 };

function setup(outcomes: ('blocked' | 'ok' | 'fail')[]) {
  let clock = 1000;
  const store = new MemoryStore({ initial: at, now: () => clock });
  const tokens: (string | null)[] = [];
  const slept: number[] = [];
  let finished = 0;
  const hooks: RollbackHooks = {
    drainTarget: async () => ({ waitedMs: 0, cancelled: 0 }),
    async restoreSourceAfterWrites(_revert, token) {
      tokens.push(token);
      const o = outcomes.shift() ?? 'ok';
      if (o === 'blocked') throw new RollbackBlocked('target unreachable: connect ECONNREFUSED', 'tok-1');
      if (o === 'fail') throw new Error('wait-source-applied: refused');
      return { done: true };
    },
    pauseReplication: async () => true,
  };
  const run = {
    from,
    at,
    hooks,
    store,
    by: 'a',
    rampMs: 0,
    now: () => clock,
    retry: { firstMs: 100, maxMs: 350 },
    sleep: async (ms: number) => {
      slept.push(ms);
      clock += ms;
    },
    finish: async () => ((finished++), { ok: true }),
    revert: async () => true,
  };
  return { run, store, tokens, slept, finished: () => finished, advance: (ms: number) => (clock += ms) };
}

t.test('retryDelay doubles up to the cap', async (t) => {
  t.same([1, 2, 3, 4, 5].map((n) => retryDelay({ firstMs: 100, maxMs: 350 }, n)), [100, 200, 350, 350, 350]);
});

t.test('blocked three times, then the database answers: the rollback completes with the same lock token', async (t) => {
  const s = setup(['blocked', 'blocked', 'blocked', 'ok']);
  await runRollback(s.run);
  t.same(s.tokens, [null, 'tok-1', 'tok-1', 'tok-1'], 'the claimed lock is carried to every retry');
  t.same(s.slept, [100, 200, 350], 'backoff on the (fake) clock');
  t.equal(s.finished(), 1, 'finished to SOURCE_PRIMARY');
  const reasons = (await s.store.audit(100)).map((e) => e.reason);
  t.equal(reasons.filter((r) => r === '3 blocked, retrying').length, 3, 'each blocked attempt audited');
  t.ok(reasons.includes('6 rollback complete'));
});

t.test('the state moved on while it waited (operator adopted): the run stops, nothing finished', async (t) => {
  const s = setup(['blocked', 'ok']);
  const sleep = s.run.sleep;
  s.run.sleep = async (ms) => {
    await sleep(ms);
    await s.store.compareAndSet(6, { ...at, state: 'WRITES_TO_AURORA', version: 7 }, { at: 0, by: 'op', kind: 'override', reason: 'adopt' });
  };
  await runRollback(s.run);
  t.equal(s.tokens.length, 1, 'no second attempt');
  t.equal(s.finished(), 0);
  t.ok((await s.store.audit(100)).some((e) => e.reason === '3 abandoned: the state moved on'));
});

t.test('a failure that is not an unreachable database halts in ROLLBACK at once', async (t) => {
  const s = setup(['fail']);
  await runRollback(s.run);
  t.same(s.slept, []);
  t.equal(s.finished(), 0);
  t.equal(s.store.current().state, 'ROLLBACK');
});

t.test('every step and every attempt is audited in order, with its timestamps and fields', async (t) => {
  const s = setup(['blocked', 'ok']);
  await runRollback(s.run);
  const steps = (await s.store.audit(100)).filter((e) => e.kind === 'rollback-step');
  t.same(steps.map((e) => [e.reason, e.detail?.ok]), [
    ['1 writes off the target (state published)', true],
    ['2 drain in-flight target transactions', true],
    ['3 reverse replication drained, sequences synced, source unfenced', false],
    ['3 blocked, retrying', undefined],
    ['3 reverse replication drained, sequences synced, source unfenced', true],
    ['4 reads ramped back to the source', true],
    ['5 replication paused', true],
    ['6 rollback complete', true],
  ]);
  t.match(steps[0]!.detail, { from: 'WRITES_TO_AURORA', version: 6, reason: 'breaker', started: Number, ended: Number });
  t.match(steps[2]!.detail, { ok: false, error: /target unreachable/ });
  t.match(steps[3]!.detail, { attempt: 1, retryInMs: 100, lockClaimed: true });
  t.match(steps[4]!.detail, { ok: true, done: true });
  t.match(steps[7]!.detail, { toSourcePrimary: true });
});

t.test('writes never moved: step 3 restores nothing; a failed drain is audited and the run goes on', async (t) => {
  const s = setup([]);
  s.run.from = { ...from, state: 'READS_50PCT_AURORA' };
  s.run.hooks = { ...s.run.hooks, drainTarget: async () => Promise.reject(new Error('1 still open')) };
  await runRollback(s.run);
  t.same(s.tokens, [], 'the source was never restored: it never stopped being the writer');
  t.equal(s.finished(), 1);
  const steps = (await s.store.audit(100)).filter((e) => e.kind === 'rollback-step');
  t.same(steps.map((e) => (e.reason ?? '').slice(0, 1)), ['1', '2', '3', '4', '5', '6']);
  t.match(steps[1]!.detail, { ok: false, error: '1 still open' });
  t.equal(steps[2]!.reason, '3 no writes had moved to the target: nothing to restore');
});

t.test('a failure after the state was put back (writes stay on the target) ends the run, nothing finished', async (t) => {
  const s = setup([]);
  let reverted = 0;
  s.run.revert = async () => ((reverted++), true);
  s.run.hooks = {
    ...s.run.hooks,
    async restoreSourceAfterWrites(revert) {
      await revert();
      throw new Error('fence-target: permission denied');
    },
  };
  await runRollback(s.run);
  t.equal(reverted, 1);
  t.equal(s.finished(), 0);
  const reasons = (await s.store.audit(100)).filter((e) => e.kind === 'rollback-step').map((e) => (e.reason ?? '').slice(0, 1));
  t.same(reasons, ['1', '2', '3'], 'steps 4 to 6 never ran');
});
