/** The project layer's pure parts: derived phases, conditions, the execution log, history retention, charts. */
import t from 'tap';
import { derivePhase, PROJECT_PHASES, type ProjectFacts } from '../../src/project/phases.js';
import { evaluateConditions, p99Streak, type ConditionInput } from '../../src/project/conditions.js';
import { buildExecutionLog, gateEntry, lessonEntry, phaseEntry } from '../../src/project/log.js';
import { MemoryHistory, type HistorySample } from '../../src/project/history.js';
import { diffCounts } from '../../src/project/recorder.js';
import { judgeStability, lastSnapshot } from '../../src/replication/final-gate.js';
import { retentionCrossings } from '../../src/replication/slot-advancer.js';
import { buildCharts } from '../../src/project/report/charts.js';
import { STATE_MEANING, meaningFor } from '../../src/domain/guarantees.js';
import { CUTOVER_STATES } from '../../src/domain/states.js';
import type { AuditEntry } from '../../src/domain/audit.js';

const base: ProjectFacts = { cutover: 'SOURCE_PRIMARY', replication: null, gates: {}, rollbacks: 0, decommissioned: false, activity: false };
const phase = (f: Partial<ProjectFacts>) => derivePhase({ ...base, ...f }).phase;

t.test('the project state is derived from the facts, through every phase', async (t) => {
  const seen = [
    phase({}),
    phase({ activity: true }),
    phase({ gates: { 1: { passed: true, at: 1 } } }),
    phase({ gates: { 1: { passed: true, at: 1 } }, replication: 'NOT_STARTED' }),
    phase({ replication: 'FULL_LOAD_RUNNING' }),
    phase({ replication: 'CDC_CAUGHT_UP' }),
    phase({ replication: 'CDC_CAUGHT_UP', gates: { 2: { passed: true, at: 1 } } }),
    phase({ rollbacks: 1 }),
    phase({ cutover: 'READS_50PCT_AURORA' }),
    phase({ cutover: 'SHADOW_WRITES' }),
    phase({ cutover: 'WRITES_TO_AURORA' }),
    phase({ cutover: 'WRITES_TO_AURORA', gates: { 3: { passed: true, at: 1 } } }),
    phase({ cutover: 'SOURCE_READ_ONLY' }),
    phase({ cutover: 'CUTOVER_COMPLETE' }),
    phase({ cutover: 'CUTOVER_COMPLETE', decommissioned: true }),
    phase({ cutover: 'ROLLBACK' }),
  ];
  t.same(seen, PROJECT_PHASES, 'each phase reached from its facts, in the seed\'s order');
  t.equal(phase({ replication: 'CDC_ACTIVE', gates: { 2: { passed: false, at: 1 } } }), 'CDC_ACTIVE', 'a failed gate 2 stays in CDC_ACTIVE');
  t.equal(phase({ cutover: 'SOURCE_PRIMARY', rollbacks: 2, gates: { 2: { passed: true, at: 1 } } }), 'PHASE_3_ACTIVE', 'ROLLBACK → PHASE_3_ACTIVE');
  t.match(derivePhase({ ...base, cutover: 'CUTOVER_COMPLETE', gates: { final: { passed: true, at: 1 } } }).why, /decommission is next/);
  t.equal(meaningFor('CUTOVER_COMPLETE', { snapshot: true, finalPassed: true, decommissioned: false }).remaining.length, 1, 'only decommission left');
  t.match(meaningFor('CUTOVER_COMPLETE', { snapshot: true, finalPassed: true, decommissioned: true }).remaining[0], /retire the source/);
  for (const s of CUTOVER_STATES) t.ok(STATE_MEANING[s].guarantees.length > 0 && STATE_MEANING[s].remaining.length > 0, `${s} says what it guarantees and what is left`);
});

t.test('p99 streak: consecutive recent days under the bound', async (t) => {
  const d = (day: number, p99Ms: number | null, backend: 'source' | 'target' = 'target') => ({ day, backend, p99Ms, units: 10 });
  t.equal(p99Streak([d(1, 10), d(2, 10), d(3, 10)], 'target', 30), 3);
  t.equal(p99Streak([d(1, 10), d(2, 40), d(3, 10), d(4, 12)], 'target', 30), 2, 'a slow day ends it');
  t.equal(p99Streak([d(1, 10), d(3, 10)], 'target', 30), 1, 'a day without data ends it');
  t.equal(p99Streak([d(1, 10, 'source')], 'target', 30), 0);
});

t.test('conditions', async (t) => {
  const input: ConditionInput = {
    integrity: { source: 'final gate', passed: false, failedChecks: ['checksum public.ledger'], at: 0 },
    daily: Array.from({ length: 14 }, (_, i) => ({ day: i, backend: 'target' as const, p99Ms: 5, units: 1 })),
    streakDays: 14, p99BoundMs: 30, decommissioned: null,
    breakers: [{ name: 'replication-lag', action: 'pause-forward', status: 'open', open: true, value: 90, threshold: 60, since: 0, detail: '' } as never],
    trips: [{ name: 'replication-lag', at: 1 }], baselineErrorRate: 0.001, currentErrorRate: 0.08, errorDelta: 0.05,
  };
  const c = evaluateConditions(input);
  const by = (l: readonly { name: string; status: string }[], n: string) => l.find((x) => x.name.startsWith(n))?.status;
  t.equal(by(c.success, 'data integrity'), 'not-met');
  t.equal(by(c.success, 'p99 < 30 ms'), 'met', '14 days in a row');
  t.equal(by(c.failure, 'data loss detected'), 'met');
  t.equal(by(c.failure, 'replication lag'), 'met');
  t.equal(by(c.failure, 'application errors'), 'met', '8% > 0.1% + 5%');
  const ok = evaluateConditions({ ...input, integrity: { ...input.integrity!, passed: true, failedChecks: [] }, breakers: [], currentErrorRate: 0.01, decommissioned: { at: 5 } });
  t.equal(by(ok.success, 'zero data loss'), 'met');
  t.equal(by(ok.success, 'old cluster'), 'met');
  t.equal(by(ok.failure, 'application errors'), 'not-met');
});

t.test('the execution log is built from audit records', async (t) => {
  const audit: AuditEntry[] = [
    phaseEntry(1, 's', 'GATE_2', null, 'gate 2 passed'),
    { at: 2, by: 'operator:x', kind: 'transition', from: 'SOURCE_PRIMARY', to: 'READS_10PCT_AURORA', forced: true, reason: 'weekend window', detail: { skipped: ['gate 2'] } },
    phaseEntry(3, 's', 'READS_MIGRATING', 'GATE_2', 'READS_10PCT_AURORA'),
    gateEntry(4, 's', 3, false, [{ name: 'shadowed', measured: 1, threshold: 10, passed: false }]),
    { at: 5, by: 'breaker:error-rate', kind: 'transition', from: 'READS_10PCT_AURORA', to: 'ROLLBACK', reason: 'error rate 3%' },
    lessonEntry(6, 'operator:y', 'warm the target cache first'),
  ];
  const l = buildExecutionLog(audit.reverse());
  t.same(l.phases.map((p) => p.phase), ['GATE_2', 'READS_MIGRATING']);
  t.equal(l.phases[1]!.gates[0]!.gate, 3, 'gate attempts belong to the phase they ran in');
  t.same(l.deviations.map((d) => d.what), ['forced SOURCE_PRIMARY → READS_10PCT_AURORA (skipped: gate 2)']);
  t.equal(l.rollbacks[0]!.cause, 'error rate 3%');
  t.equal(l.lessons[0]!.text, 'warm the target cache first');
  t.match(l.phases[1]!.notes.join(' '), /rollback from READS_10PCT_AURORA/);
});

t.test('final gate judgements', async (t) => {
  const DAY = 86_400_000;
  const moved: AuditEntry = { at: 0, by: 'x', kind: 'transition', to: 'WRITES_TO_AURORA' };
  t.ok(judgeStability([moved], 91 * DAY, 90 * DAY).passed, '91 days on the target, no rollback');
  t.notOk(judgeStability([moved], 30 * DAY, 90 * DAY).passed, '30 days is not enough');
  t.notOk(judgeStability([moved, { at: 50 * DAY, by: 'x', kind: 'transition', to: 'ROLLBACK' }], 100 * DAY, 90 * DAY).passed, 'a rollback in the window');
  t.notOk(judgeStability([], 100 * DAY, 90 * DAY).passed, 'writes never moved');
  t.equal(lastSnapshot([{ at: 1, by: 'x', kind: 'snapshot', detail: { ok: false, location: 'a', error: 'boom' } }, { at: 2, by: 'x', kind: 'snapshot', detail: { ok: true, location: 'b', bytes: 3, sha256: 'f' } }])?.location, 'b');
});

t.test('slot retention crossings alert once each way', async (t) => {
  const alerting = new Set<'source' | 'target'>();
  t.same(retentionCrossings(alerting, { source: 2000, target: 10 }, 1000), { above: ['source'], below: [] });
  alerting.add('source');
  t.same(retentionCrossings(alerting, { source: 3000, target: 10 }, 1000), { above: [], below: [] }, 'still above: no repeat');
  t.same(retentionCrossings(alerting, { source: 10, target: null }, 1000), { above: [], below: ['source'] });
});

const sample = (at: number, state: HistorySample['state'] = 'SOURCE_PRIMARY'): HistorySample => ({
  at, state, readPercent: 0, p99: { source: { read: 1, write: 2 }, target: { read: null, write: null } }, errorRate: 0, lagSeconds: 0.1, shadowMatchRate: null, slotRetainedBytes: { source: 100, target: null },
});

t.test('history is bounded: recent samples at full rate, older ones downsampled', async (t) => {
  const h = new MemoryHistory({ fineMax: 10, coarseEvery: 5, coarseMax: 4, dailyMax: 2 });
  for (let i = 0; i < 100; i++) await h.append(sample(i));
  const all = await h.samples();
  t.same(all.slice(-10).map((s) => s.at), [90, 91, 92, 93, 94, 95, 96, 97, 98, 99]);
  t.same(all.slice(0, -10).map((s) => s.at), [80, 85], 'older: every 5th (the last 4 kept: 80..95), before the fine series');
  for (let d = 0; d < 6; d++) await h.putDaily({ day: d, backend: 'target', p99Ms: 1, units: 1 });
  t.same((await h.daily()).map((x) => x.day), [2, 3, 4, 5], 'days bounded too');
  t.same([...diffCounts(Float64Array.from([3, 5]), Float64Array.from([1, 2]))], [2, 3]);
  t.same([...diffCounts(Float64Array.from([1, 0]), Float64Array.from([1, 2]))], [1, 0], 'a reset histogram counts from zero');
});

t.test('charts draw recorded data and say when there is none', async (t) => {
  const th = { errorRate: 0.01, baselineDelta: 0.05, baselineErrorRate: 0.001, slotAlertBytes: 1 << 30 };
  const empty = buildCharts([], th);
  t.equal(empty.length, 8);
  for (const c of empty) t.match(c.svg, /no data recorded yet/, `${c.id} empty`);
  const charts = buildCharts([sample(0), sample(1000, 'READS_10PCT_AURORA'), sample(2000, 'ROLLBACK')], th);
  const timeline = charts.find((c) => c.id === 'state-timeline')!.svg;
  t.equal((timeline.match(/class="segment"/g) ?? []).length, 3, 'one segment per state run');
  t.match(charts.find((c) => c.id === 'replication-lag')!.svg, /breaker 60 s[\s\S]*|caught up < 10 s/);
  t.match(charts.find((c) => c.id === 'p99-read')!.svg, /<polyline class="series"/);
  t.notMatch(charts.map((c) => c.svg).join(''), /<script|href=/, 'no script, no link');
});
