import t from 'tap';
import { DEFAULT_CUTOVER_CONFIG, DEFAULT_CONTROL_CONFIG, scaleControlConfig } from '../../src/domain/control-config.js';
import {
  CUTOVER_EVENTS,
  decideTransition,
  effectiveReadPercent,
  targetOf,
  transitionAudit,
  type CutoverSnapshot,
  type TransitionContext,
  type TransitionRequest,
} from '../../src/domain/cutover-machine.js';
import { CUTOVER_STATES, STATE_POLICY, parseState, type CutoverState } from '../../src/domain/states.js';

const H = 3_600_000;
const T0 = 1_700_000_000_000;

function snap(state: CutoverState, since = T0, readPercent = STATE_POLICY[state].readPercent, version = 7): CutoverSnapshot {
  return { state, version, since, reason: 'test', readPercent };
}

/** Every guard satisfied: long stable, gates passed after `since`, no breakers. */
function okCtx(now = T0 + 30 * 24 * H, over: Partial<TransitionContext> = {}): TransitionContext {
  return {
    now,
    gates: { 2: { passed: true, at: now - 1000 }, 3: { passed: true, at: now - 1000 } },
    breakers: [{ name: 'error-rate', open: false }],
    config: DEFAULT_CUTOVER_CONFIG,
    ...over,
  };
}

const req = (to: string, more: Partial<TransitionRequest> = {}): TransitionRequest => ({ to, reason: 'because', by: 'test', ...more });

// The legal transitions, written out independently of the implementation's table.
const FORWARD: [CutoverState, CutoverState][] = [
  ['SOURCE_PRIMARY', 'READS_10PCT_AURORA'],
  ['READS_10PCT_AURORA', 'READS_50PCT_AURORA'],
  ['READS_50PCT_AURORA', 'READS_100PCT_AURORA'],
  ['READS_100PCT_AURORA', 'SHADOW_WRITES'],
  ['SHADOW_WRITES', 'WRITES_TO_AURORA'],
  ['WRITES_TO_AURORA', 'SOURCE_READ_ONLY'],
  ['SOURCE_READ_ONLY', 'CUTOVER_COMPLETE'],
];
function expected(from: CutoverState, to: CutoverState): 'ok' | 'already-in-state' | 'illegal-transition' {
  if (from === to) return 'already-in-state';
  if (FORWARD.some(([a, b]) => a === from && b === to)) return 'ok';
  if (to === 'ROLLBACK') return 'ok';
  return 'illegal-transition';
}

t.test('every (state, target state) pair, with and without force', async (t) => {
  let n = 0;
  for (const from of CUTOVER_STATES) {
    for (const to of CUTOVER_STATES) {
      for (const force of [false, true]) {
        const d = decideTransition(snap(from), req(to, { force }), okCtx());
        const want = expected(from, to);
        t.equal(d.ok ? 'ok' : d.code, want, `${from} → ${to}${force ? ' (force)' : ''}`);
        if (d.ok) {
          t.equal(d.next.state, to);
          t.equal(d.next.version, 8);
          t.equal(d.forced, false, 'nothing to force when every guard passes');
        } else t.match(d.reason, /\S/, 'a refusal says why');
        n++;
      }
    }
  }
  t.equal(n, 9 * 9 * 2);
});

t.test('ROLLBACK → SOURCE_PRIMARY only as rollback-complete', async (t) => {
  const s = snap('ROLLBACK', T0, 0);
  const plain = decideTransition(s, req('SOURCE_PRIMARY'), okCtx());
  t.match(plain, { ok: false, code: 'illegal-transition', reason: /rollback-complete/ });
  const forced = decideTransition(s, req('SOURCE_PRIMARY', { force: true }), okCtx());
  t.match(forced, { ok: false, code: 'illegal-transition' }, 'force does not make it legal');
  const done = decideTransition(s, req('SOURCE_PRIMARY', { event: 'rollback-complete' }), okCtx());
  t.match(done, { ok: true, event: 'rollback-complete', next: { state: 'SOURCE_PRIMARY', readPercent: 0 } });
  const wrongEvent = decideTransition(snap('READS_10PCT_AURORA'), req('READS_50PCT_AURORA', { event: 'rollback' }), okCtx());
  t.match(wrongEvent, { ok: false, code: 'illegal-transition', reason: /'advance'/ });
});

t.test('every (state, event) pair', async (t) => {
  const want: Record<CutoverState, Record<(typeof CUTOVER_EVENTS)[number], CutoverState | null>> = {
    SOURCE_PRIMARY: { advance: 'READS_10PCT_AURORA', rollback: 'ROLLBACK', 'rollback-complete': null },
    READS_10PCT_AURORA: { advance: 'READS_50PCT_AURORA', rollback: 'ROLLBACK', 'rollback-complete': null },
    READS_50PCT_AURORA: { advance: 'READS_100PCT_AURORA', rollback: 'ROLLBACK', 'rollback-complete': null },
    READS_100PCT_AURORA: { advance: 'SHADOW_WRITES', rollback: 'ROLLBACK', 'rollback-complete': null },
    SHADOW_WRITES: { advance: 'WRITES_TO_AURORA', rollback: 'ROLLBACK', 'rollback-complete': null },
    WRITES_TO_AURORA: { advance: 'SOURCE_READ_ONLY', rollback: 'ROLLBACK', 'rollback-complete': null },
    SOURCE_READ_ONLY: { advance: 'CUTOVER_COMPLETE', rollback: 'ROLLBACK', 'rollback-complete': null },
    CUTOVER_COMPLETE: { advance: null, rollback: 'ROLLBACK', 'rollback-complete': null },
    ROLLBACK: { advance: null, rollback: null, 'rollback-complete': 'SOURCE_PRIMARY' },
  };
  for (const s of CUTOVER_STATES) {
    for (const e of CUTOVER_EVENTS) {
      const to = targetOf(s, e);
      t.equal(to, want[s][e], `${s} + ${e}`);
      if (to) {
        const d = decideTransition(snap(s, T0, s === 'ROLLBACK' ? 0 : STATE_POLICY[s].readPercent), req(to, { event: e }), okCtx());
        t.ok(d.ok, `${s} + ${e} → ${to} is taken when guards pass`);
      }
    }
  }
});

t.test('minimum stable time per stage, on a fake clock', async (t) => {
  const needs: [CutoverState, number][] = [
    ['READS_10PCT_AURORA', 24 * H],
    ['READS_50PCT_AURORA', 48 * H],
    ['READS_100PCT_AURORA', 72 * H],
    ['WRITES_TO_AURORA', 24 * H],
    ['SOURCE_READ_ONLY', 7 * 24 * H],
  ];
  for (const [state, need] of needs) {
    const to = targetOf(state, 'advance')!;
    const early = decideTransition(snap(state), req(to), okCtx(T0 + need - 1));
    t.match(early, { ok: false, code: 'guard-failed', reason: /min-stable/ }, `${state}: 1ms early`);
    if (!early.ok) t.ok(early.guards?.some((g) => g.guard === 'min-stable' && !g.ok));
    t.match(decideTransition(snap(state), req(to), okCtx(T0 + need)), { ok: true }, `${state}: on time`);
  }
  // SHADOW_WRITES waits for gate 3, not a clock; SOURCE_PRIMARY for gate 2.
  const justGated = okCtx(T0 + 1, { gates: { 2: { passed: true, at: T0 + 1 }, 3: { passed: true, at: T0 + 1 } } });
  t.match(decideTransition(snap('SHADOW_WRITES'), req('WRITES_TO_AURORA'), justGated), { ok: true });
  t.match(decideTransition(snap('SOURCE_PRIMARY'), req('READS_10PCT_AURORA'), justGated), { ok: true });

  const demo = scaleControlConfig(DEFAULT_CONTROL_CONFIG, 1 / 3600).cutover;
  t.equal(demo.minStableForMs.READS_10PCT_AURORA, 24_000, 'scaled for a demo: 24h becomes 24s');
  const ctx = okCtx(T0 + 24_000, { config: demo });
  t.match(decideTransition(snap('READS_10PCT_AURORA'), req('READS_50PCT_AURORA'), ctx), { ok: true });
});

t.test('gates: gate 2 before READS_10PCT, gate 3 before WRITES_TO_AURORA', async (t) => {
  const now = T0 + 100 * H;
  const cases: [string, TransitionContext['gates'][2], RegExp | null][] = [
    ['never run', undefined, /gate 2 has not been run/],
    ['failed', { passed: false, at: now - 1000 }, /gate 2 failed/],
    ['passed before the state was entered', { passed: true, at: T0 - 1 }, /before SOURCE_PRIMARY was entered/],
    ['stale', { passed: true, at: now - 25 * H }, /older than/],
    ['passed recently', { passed: true, at: now - 1000 }, null],
  ];
  for (const [name, g2, err] of cases) {
    const d = decideTransition(snap('SOURCE_PRIMARY'), req('READS_10PCT_AURORA'), okCtx(now, { gates: { 2: g2 } }));
    if (err) t.match(d, { ok: false, code: 'guard-failed', reason: err }, `gate 2 ${name}`);
    else t.match(d, { ok: true }, `gate 2 ${name}`);
  }
  const noGate3 = decideTransition(snap('SHADOW_WRITES'), req('WRITES_TO_AURORA'), okCtx(now, { gates: { 2: { passed: true, at: now } } }));
  t.match(noGate3, { ok: false, code: 'guard-failed', reason: /gate-3: gate 3 has not been run/ });
  const gate2Only = decideTransition(snap('READS_10PCT_AURORA'), req('READS_50PCT_AURORA'), okCtx(now, { gates: {} }));
  t.match(gate2Only, { ok: true }, 'other steps need no gate');
});

t.test('open breakers pause forward steps, never a rollback', async (t) => {
  const ctx = okCtx(undefined, { breakers: [{ name: 'replication-lag', open: true }, { name: 'target-cpu', open: false }] });
  t.match(decideTransition(snap('READS_10PCT_AURORA'), req('READS_50PCT_AURORA'), ctx), {
    ok: false,
    code: 'guard-failed',
    reason: /open breakers: replication-lag/,
  });
  t.match(decideTransition(snap('READS_10PCT_AURORA'), req('ROLLBACK'), ctx), { ok: true });
});

t.test('force skips guards, records it, needs a reason, cannot skip an unreachable store', async (t) => {
  const ctx = okCtx(T0 + H, { gates: {}, breakers: [{ name: 'error-rate', open: true }] });
  const d = decideTransition(snap('READS_10PCT_AURORA'), req('READS_50PCT_AURORA', { force: true, reason: 'CAB approved' }), ctx);
  t.ok(d.ok);
  if (d.ok) {
    t.equal(d.forced, true);
    t.same(d.skipped.map((g) => g.guard).sort(), ['min-stable', 'no-open-breaker']);
    const audit = transitionAudit(snap('READS_10PCT_AURORA'), d, req('READS_50PCT_AURORA', { force: true, reason: 'CAB approved' }));
    t.match(audit, { kind: 'transition', from: 'READS_10PCT_AURORA', to: 'READS_50PCT_AURORA', forced: true, reason: 'CAB approved', version: 8 });
    t.match(audit.detail, { event: 'advance', skipped: [{ guard: /./ }, { guard: /./ }] });
  }
  t.match(decideTransition(snap('READS_10PCT_AURORA'), req('READS_50PCT_AURORA', { force: true, reason: ' ' }), ctx), {
    ok: false,
    code: 'reason-required',
  });
  const degraded = okCtx(undefined, { storeDegraded: true });
  t.match(decideTransition(snap('READS_10PCT_AURORA'), req('READS_50PCT_AURORA', { force: true }), degraded), {
    ok: false,
    code: 'guard-failed',
    reason: /store-healthy/,
  });
  t.match(decideTransition(snap('READS_10PCT_AURORA'), req('ROLLBACK'), degraded), { ok: true }, 'rollback while degraded');
});

t.test('rollback needs a reason and ramps reads down', async (t) => {
  t.match(decideTransition(snap('READS_50PCT_AURORA'), req('ROLLBACK', { reason: undefined }), okCtx()), { ok: false, code: 'reason-required' });
  const ramp = DEFAULT_CUTOVER_CONFIG.rollbackReadRampMs;
  const now = T0 + 10 * H;
  const d = decideTransition(snap('READS_50PCT_AURORA'), req('ROLLBACK', { reason: 'error-rate breaker' }), okCtx(now));
  t.ok(d.ok);
  if (!d.ok) return;
  const rb = d.next;
  t.match(rb, { state: 'ROLLBACK', since: now, readPercent: 50, reason: 'error-rate breaker' });
  t.equal(effectiveReadPercent(rb, now, ramp), 50);
  t.equal(effectiveReadPercent(rb, now + ramp / 2, ramp), 25);
  t.equal(effectiveReadPercent(rb, now + ramp, ramp), 0);
  t.equal(effectiveReadPercent(rb, now + 2 * ramp, ramp), 0);
  t.equal(effectiveReadPercent(rb, now + 1, 0), 0, 'no ramp: reads move at once');
  t.equal(effectiveReadPercent(snap('READS_10PCT_AURORA'), now, ramp), 10);

  const early = decideTransition(rb, req('SOURCE_PRIMARY', { event: 'rollback-complete' }), okCtx(now + ramp / 2));
  t.match(early, { ok: false, code: 'guard-failed', reason: /25\.0% of reads still go to the target/ });
  t.match(decideTransition(rb, req('SOURCE_PRIMARY', { event: 'rollback-complete' }), okCtx(now + ramp)), { ok: true });
  t.match(decideTransition(rb, req('SOURCE_PRIMARY', { event: 'rollback-complete', force: true }), okCtx(now + 1)), { ok: true, forced: true });

  // A rollback from inside a ramp is not possible (already in ROLLBACK) and says so.
  t.match(decideTransition(rb, req('ROLLBACK'), okCtx(now + 1)), { ok: false, code: 'already-in-state' });
});

t.test('state names', async (t) => {
  t.same(parseState('reads_10pct_aurora'), { ok: true, state: 'READS_10PCT_AURORA' });
  t.same(parseState(' Shadow-Writes '), { ok: true, state: 'SHADOW_WRITES' });
  const bad = parseState('READS_20PCT');
  t.match(bad, { ok: false, code: 'unknown-state', reason: /"READS_20PCT".*SOURCE_PRIMARY, READS_10PCT_AURORA.*ROLLBACK/ });
  t.match(parseState(42), { ok: false, reason: /a number/ });
  t.match(decideTransition(snap('SOURCE_PRIMARY'), req('nope'), okCtx()), { ok: false, code: 'unknown-state' });
  t.match(decideTransition({ ...snap('SOURCE_PRIMARY'), state: 'BOGUS' as CutoverState }, req('ROLLBACK'), okCtx()), {
    ok: false,
    code: 'unknown-state',
  });
});
