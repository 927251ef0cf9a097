import t from 'tap';
import { DEFAULT_REPLICATION_CONFIG as C } from '../../src/domain/control-config.js';
import {
  INITIAL_REPLICATION_MEMORY,
  nextReplicationState,
  type ReplicationMemory,
  type ReplicationObservation,
  type ReplicationState,
} from '../../src/domain/replication-machine.js';

const MIN = 60_000;

/** Feed observations one by one; return the states and transitions seen. */
function run(obs: ReplicationObservation[], start: ReplicationState = 'NOT_STARTED') {
  let state = start;
  let memory: ReplicationMemory = INITIAL_REPLICATION_MEMORY;
  const states: ReplicationState[] = [];
  const transitions: { from: string; to: string; expected: boolean; reason: string }[] = [];
  for (const o of obs) {
    const step = nextReplicationState(state, o, memory, C);
    state = step.state;
    memory = step.memory;
    states.push(state);
    if (step.transition) transitions.push(step.transition);
  }
  return { state, states, transitions };
}

t.test('the happy path: full load, CDC, caught up after an hour under 10s', async (t) => {
  const obs: ReplicationObservation[] = [
    { phase: 'not-started', lagSeconds: null, now: 0 },
    { phase: 'full-load', lagSeconds: null, now: 1 },
    { phase: 'full-load-complete', lagSeconds: null, now: 2 },
    { phase: 'cdc', lagSeconds: 30, now: 3 },
    { phase: 'cdc', lagSeconds: 5, now: 10 * MIN },
    { phase: 'cdc', lagSeconds: 4, now: 69 * MIN },
    { phase: 'cdc', lagSeconds: 3, now: 70 * MIN },
  ];
  const r = run(obs);
  t.same(r.states, ['NOT_STARTED', 'FULL_LOAD_RUNNING', 'FULL_LOAD_COMPLETE', 'CDC_ACTIVE', 'CDC_ACTIVE', 'CDC_ACTIVE', 'CDC_CAUGHT_UP']);
  t.ok(r.transitions.every((x) => x.expected));
});

t.test('a lag spike restarts the caught-up hour; an unmeasured sample does not', async (t) => {
  const r = run([
    { phase: 'cdc', lagSeconds: 2, now: 0 },
    { phase: 'cdc', lagSeconds: null, now: 30 * MIN },
    { phase: 'cdc', lagSeconds: 2, now: 60 * MIN },
    { phase: 'cdc', lagSeconds: 15, now: 61 * MIN },
    { phase: 'cdc', lagSeconds: 2, now: 62 * MIN },
    { phase: 'cdc', lagSeconds: 2, now: 121 * MIN },
    { phase: 'cdc', lagSeconds: 2, now: 122 * MIN },
  ], 'CDC_ACTIVE');
  t.same(r.states, ['CDC_ACTIVE', 'CDC_ACTIVE', 'CDC_CAUGHT_UP', 'CDC_ACTIVE', 'CDC_ACTIVE', 'CDC_ACTIVE', 'CDC_CAUGHT_UP']);
  t.match(r.transitions[1], { from: 'CDC_CAUGHT_UP', to: 'CDC_ACTIVE', reason: /lag 15s/, expected: true });
});

t.test('any state fails on an error or lag over 60s; recovery goes to CDC_ACTIVE', async (t) => {
  for (const start of ['NOT_STARTED', 'FULL_LOAD_RUNNING', 'FULL_LOAD_COMPLETE', 'CDC_ACTIVE', 'CDC_CAUGHT_UP'] as const) {
    const step = nextReplicationState(start, { phase: 'full-load', lagSeconds: null, error: 'task stopped', now: 1 }, INITIAL_REPLICATION_MEMORY, C);
    t.match(step, { state: 'REPLICATION_FAILED', transition: { from: start, reason: /task stopped/, expected: true } });
  }
  const r = run([
    { phase: 'cdc', lagSeconds: 61, now: 0 },
    { phase: 'cdc', lagSeconds: 61, now: 1 },
    { phase: 'cdc', lagSeconds: 2, now: 2 },
  ], 'CDC_CAUGHT_UP');
  t.same(r.states, ['REPLICATION_FAILED', 'REPLICATION_FAILED', 'CDC_ACTIVE']);
  t.match(r.transitions, [{ to: 'REPLICATION_FAILED', reason: /lag 61s > 60s/ }, { to: 'CDC_ACTIVE', reason: /resolved/, expected: true }]);
  // Lag of exactly 60s is not over the limit.
  t.equal(nextReplicationState('CDC_ACTIVE', { phase: 'cdc', lagSeconds: 60, now: 0 }, INITIAL_REPLICATION_MEMORY, C).state, 'CDC_ACTIVE');
});

t.test('a monitor that starts late skips forward; going back is flagged', async (t) => {
  const late = nextReplicationState('NOT_STARTED', { phase: 'cdc', lagSeconds: 1, now: 0 }, INITIAL_REPLICATION_MEMORY, C);
  t.match(late, { state: 'CDC_ACTIVE', transition: { expected: true } });
  const reload = nextReplicationState('CDC_ACTIVE', { phase: 'full-load', lagSeconds: null, now: 0 }, INITIAL_REPLICATION_MEMORY, C);
  t.match(reload, { state: 'FULL_LOAD_RUNNING', transition: { expected: false } });
  const same = nextReplicationState('CDC_ACTIVE', { phase: 'cdc', lagSeconds: 20, now: 0 }, INITIAL_REPLICATION_MEMORY, C);
  t.equal(same.transition, null);
});

t.test('a paused subscription is PAUSED (not lag, not a failure), and resumes to CDC_ACTIVE', async (t) => {
  const r = run([
    { phase: 'cdc', lagSeconds: 0, now: 0 },
    { phase: 'paused', lagSeconds: null, now: 1000 },
    { phase: 'paused', lagSeconds: null, now: 120_000 },
    { phase: 'cdc', lagSeconds: 2, now: 130_000 },
  ], 'CDC_ACTIVE');
  t.same(r.states, ['CDC_ACTIVE', 'PAUSED', 'PAUSED', 'CDC_ACTIVE']);
  t.match(r.transitions, [
    { from: 'CDC_ACTIVE', to: 'PAUSED', expected: true, reason: /paused.*pg-cutover replicate resume/ },
    { from: 'PAUSED', to: 'CDC_ACTIVE', expected: true, reason: /resumed/ },
  ]);
});
