import t from 'tap';
import { DEFAULT_CUTOVER_CONFIG } from '../../src/domain/control-config.js';
import type { CutoverSnapshot, TransitionContext } from '../../src/domain/cutover-machine.js';
import { MemoryStore } from '../../src/control/memory-store.js';
import { requestTransition } from '../../src/control/transition.js';

const T0 = 1_700_000_000_000;

function ctxAt(now: number) {
  return (): TransitionContext => ({ now, gates: { 2: { passed: true, at: now } }, breakers: [], config: DEFAULT_CUTOVER_CONFIG });
}

t.test('compare-and-set, subscribers and audit in one process', async (t) => {
  let now = T0;
  const store = new MemoryStore({ now: () => now });
  t.match(store.current(), { state: 'SOURCE_PRIMARY', version: 0, since: T0 });
  const seen: CutoverSnapshot[] = [];
  const off = store.subscribe((s) => seen.push(s));
  store.subscribe(() => {
    throw new Error('a broken subscriber does not stop the others');
  });

  now += 1000;
  const r = await requestTransition(store, { to: 'reads_10pct_aurora', by: 'op' }, ctxAt(now));
  t.match(r, { ok: true, event: 'advance', local: false, next: { state: 'READS_10PCT_AURORA', version: 1, since: now, readPercent: 10 } });
  t.equal(seen.length, 1);

  const stale = await store.compareAndSet(0, { ...store.current(), version: 1 }, { at: now, by: 'x', kind: 'transition' });
  t.match(stale, { ok: false, code: 'version-conflict', current: { version: 1 } });
  const invalid = await store.compareAndSet(1, { ...store.current(), version: 3 }, { at: now, by: 'x', kind: 'transition' });
  t.match(invalid, { ok: false, code: 'invalid' });

  await store.appendAudit({ at: now, by: 'runner', kind: 'rollback-step', reason: 'step' });
  t.same((await store.audit()).map((e) => e.kind), ['transition', 'rollback-step']);
  t.same((await store.audit(1)).map((e) => e.kind), ['rollback-step']);
  t.same(await store.audit(0), []);
  off();
  t.match(store.health(), { degraded: false, pendingLocal: false });
});

t.test('two sidecars tripping at once: exactly one rollback is committed', async (t) => {
  const store = new MemoryStore({ initial: { state: 'READS_50PCT_AURORA', version: 4, since: T0, reason: 'x', readPercent: 50 } });
  const now = T0 + 60_000;
  const [a, b] = await Promise.all([
    requestTransition(store, { to: 'ROLLBACK', by: 'sidecar-a', reason: 'error-rate breaker' }, ctxAt(now)),
    requestTransition(store, { to: 'ROLLBACK', by: 'sidecar-b', reason: 'error-rate breaker' }, ctxAt(now)),
  ]);
  t.match(a, { ok: true, next: { state: 'ROLLBACK', version: 5, readPercent: 50 } });
  t.match(b, { ok: false, code: 'already-in-state', current: { state: 'ROLLBACK', version: 5 } });
  t.equal((await store.audit()).filter((e) => e.to === 'ROLLBACK').length, 1);
});

t.test('refusals come back with the reason and the guards', async (t) => {
  const store = new MemoryStore({ initial: { state: 'READS_10PCT_AURORA', version: 1, since: T0, reason: 'x', readPercent: 10 } });
  const r = await requestTransition(store, { to: 'READS_50PCT_AURORA', by: 'op' }, ctxAt(T0 + 1000));
  t.match(r, { ok: false, code: 'guard-failed', reason: /min-stable/, guards: [{ guard: 'store-healthy', ok: true }, { guard: 'min-stable', ok: false }] });
  t.match(await requestTransition(store, { to: 'CUTOVER_COMPLETE', by: 'op' }, ctxAt(T0)), { ok: false, code: 'illegal-transition' });
  t.equal(store.current().version, 1, 'nothing changed');
});
