/**
 * The one runner of the control procedures (src/replication/procedure.ts) with fake steps and a fake clock:
 * order and timing records, undo in reverse of only the steps that started (each only what its own run
 * created), the point of no return going forward, a blocked step leaving everything as is, and the same table
 * run again after it (resume).
 */
import t from 'tap';
import { runProcedure, type Procedure, type ProcedureStep } from '../../src/replication/procedure.js';

type S = 'a' | 'b' | 'c' | 'd' | 'undo-b' | 'undo-c' | 'undo-d' | 'abort' | 'finish' | 'unlock';

function table(fail: Partial<Record<S, () => Error>>, opts: { noReturnAt?: S; created?: { c: boolean } } = {}) {
  let clock = 0;
  const ran: string[] = [];
  const act = (name: S, ms: number) => async () => {
    ran.push(name);
    clock += ms;
    const f = fail[name];
    if (f) {
      const e = f();
      delete fail[name];
      throw e;
    }
    return `${name} done`;
  };
  const step = (name: 'a' | 'b' | 'c' | 'd', undo?: S): ProcedureStep<S> => ({
    name,
    run: act(name, 10),
    ...(undo ? { undo: { name: undo, run: act(undo, 1), ...(name === 'c' && opts.created ? { when: () => opts.created!.c } : {}) } } : {}),
    ...(opts.noReturnAt === name ? { noReturn: true } : {}),
  });
  const p: Procedure<S> = {
    steps: [step('a'), step('b', 'undo-b'), step('c', 'undo-c'), step('d', 'undo-d')],
    abort: [{ name: 'abort', run: act('abort', 1) }],
    finish: [{ name: 'finish', run: act('finish', 1) }],
    always: [{ name: 'unlock', run: act('unlock', 1) }],
    blocked: (e) => (e as { code?: string }).code === 'ECONNREFUSED',
  };
  return { p, ran, now: () => clock };
}
const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

t.test('runs the steps in order, then the always-steps; each recorded with its time', async (t) => {
  const { p, ran, now } = table({});
  const out = await runProcedure(p, now);
  t.equal(out.kind, 'done');
  t.same(ran, ['a', 'b', 'c', 'd', 'unlock']);
  t.same(out.steps.map((r) => [r.step, r.ok, r.startedAt, r.ms]), [['a', true, 0, 10], ['b', true, 10, 10], ['c', true, 20, 10], ['d', true, 30, 10], ['unlock', true, 40, 1]]);
  t.equal(out.steps[0]!.detail, 'a done');
});

t.test('a failure undoes, in reverse, only the steps that started; then abort and always', async (t) => {
  const { p, ran, now } = table({ c: () => new Error('boom') });
  const out = await runProcedure(p, now);
  t.match(out, { kind: 'undone', failedStep: 'c', error: 'boom' });
  t.same(ran, ['a', 'b', 'c', 'undo-c', 'undo-b', 'abort', 'unlock'], 'd never ran, so undo-d never runs');
});

t.test('an undo runs only for what its own run created; a failing undo is recorded and the rest go on', async (t) => {
  const { p, ran, now } = table({ d: () => new Error('boom'), 'undo-b': () => new Error('undo failed') }, { created: { c: false } });
  const out = await runProcedure(p, now);
  t.same(ran, ['a', 'b', 'c', 'd', 'undo-d', 'undo-b', 'abort', 'unlock'], 'c created nothing: no undo-c');
  t.same(out.steps.find((r) => r.step === 'undo-b'), { step: 'undo-b', ok: false, startedAt: 41, ms: 1, error: 'undo failed' });
});

t.test('from the point of no return on, a failure goes forward (finish), never back', async (t) => {
  const { p, ran, now } = table({ d: () => refused() }, { noReturnAt: 'c' });
  const out = await runProcedure(p, now);
  t.match(out, { kind: 'forward', failedStep: 'd' }, 'even an unreachable database: the source already has every write');
  t.same(ran, ['a', 'b', 'c', 'd', 'finish', 'unlock']);
});

t.test('a blocked step leaves everything as is; the same table run again resumes and finishes', async (t) => {
  const fail = { c: refused };
  const { p, ran, now } = table(fail, { noReturnAt: 'd' });
  const out = await runProcedure(p, now);
  t.match(out, { kind: 'blocked', failedStep: 'c', error: /ECONNREFUSED/ });
  t.same(ran, ['a', 'b', 'c'], 'no undo, no abort, not even the unlock: the run still holds what it took');
  ran.length = 0;
  const again = await runProcedure(p, now);
  t.equal(again.kind, 'done', 'resumed once the database answers');
  t.same(ran, ['a', 'b', 'c', 'd', 'unlock']);
});

t.test('with a retry policy a blocked step is waited out and run again in place, each attempt recorded', async (t) => {
  const { p, ran, now } = table({});
  const seen: string[] = [];
  const waits: number[] = [];
  let blockedAgain = 2;
  const out = await runProcedure<S>({
    ...p,
    steps: p.steps.map((s) => (s.name === 'c' ? { ...s, run: async () => (blockedAgain-- > 0 ? Promise.reject(refused()) : s.run()) } : s)),
    retry: { delayMs: (n) => n * 100, sleep: async (ms) => void waits.push(ms), onBlocked: (step, n) => void seen.push(`blocked ${step} ${n}`), proceed: () => true },
    onRecord: (r) => void seen.push(`${r.step} ${r.ok ? 'ok' : 'FAIL'}`),
  }, now);
  t.equal(out.kind, 'done');
  t.same(waits, [100, 200], 'one wait per blocked attempt, from the policy');
  t.same(seen, ['a ok', 'b ok', 'c FAIL', 'blocked c 1', 'c FAIL', 'blocked c 2', 'c ok', 'd ok', 'unlock ok'], 'every record and attempt, as made, in order');
  t.same(ran.filter((x) => x === 'a'), ['a'], 'the steps before the blocked one are not run again');
});

t.test('a retry policy that says the run no longer applies ends it as blocked, nothing undone', async (t) => {
  const { p, ran, now } = table({ c: refused });
  const out = await runProcedure<S>({ ...p, retry: { delayMs: () => 1, sleep: async () => undefined, proceed: () => false } }, now);
  t.match(out, { kind: 'blocked', failedStep: 'c' });
  t.same(ran, ['a', 'b', 'c']);
});

t.test('a mayFail step is recorded as failed and the procedure goes on; fields a step returns are kept as data', async (t) => {
  const { p, ran, now } = table({ b: () => new Error('drain timed out') });
  const steps = p.steps.map((s) => (s.name === 'b' ? { ...s, mayFail: true } : s.name === 'd' ? { ...s, run: async () => ({ cancelled: 2 }) } : s));
  const out = await runProcedure<S>({ ...p, steps }, now);
  t.equal(out.kind, 'done');
  t.same(ran, ['a', 'b', 'c', 'unlock'], 'no undo: the failure did not stop the run');
  t.match(out.steps.find((r) => r.step === 'b'), { ok: false, error: 'drain timed out' });
  t.match(out.steps.find((r) => r.step === 'd'), { ok: true, data: { cancelled: 2 } });
});
