/**
 * Issue 16, item 8: `pg-cutover demo --walkthrough` end to end on the embedded pair under its built-in TPC-B-like
 * load through the proxy. Every stage is reached without --force (the audit log shows no forced step or
 * deviation); the target fault trips the error-rate breaker and the rollback runs by itself; forward replication
 * is PAUSED with since and why, `replicate resume` brings it back without an apply error, gate 2 passes again
 * and the walk goes forward; every acknowledged write is on both sides and the checksums are equal.
 * (item 3 of the walkthrough brief: the resume after a rollback, end to end.) A smaller time scale than the
 * CLI's default keeps it short; the outcome, not the timing, is asserted.
 */
import t from 'tap';
import { runWalkthrough } from '../../src/demo/walkthrough.js';
import { walkOperator } from '../../src/cli/walk-tools.js';

const lines: string[] = [];
// Gate 3's p99 bounds (30/20 ms) are production latency objectives: on a shared 2-core CI machine they would make
// this a timing assertion (measured here: the source's own write p99 23 ms beside a target's 20.02 ms). They are
// still measured and printed; the bounds are raised for the test only.
const r = await runWalkthrough({
  scale: 2000, listen: '127.0.0.1:0', admin: '127.0.0.1:0', timeScale: '0.00002', tps: 100, rps: 100,
  sidecar: { gate3ReadP99Ms: '1000', gate3WriteP99Ms: '1000' },
  say: (m) => void lines.push(m),
}, walkOperator);
const text = lines.join('\n');
if (!r.ok) t.comment(text);

t.ok(r.ok, `the walkthrough passed${r.failure ? `: ${r.failure}` : ''}`);
t.same(r.states, [
  'SOURCE_PRIMARY', 'READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES', 'WRITES_TO_AURORA',
  'SOURCE_READ_ONLY', 'CUTOVER_COMPLETE', 'ROLLBACK', 'SOURCE_PRIMARY', 'READS_10PCT_AURORA',
], 'every stage reached, then the rollback and forward again');
t.notMatch(text, /\$ pg-cutover [^\n]*--force/, 'no command used --force');
t.notMatch(text, /\(forced\)/, 'no transition was forced');
t.match(text, /forced transitions and deviations in the audit log: 0/);
for (const s of ['CDC_ACTIVE', 'CDC_CAUGHT_UP', 'PAUSED']) t.ok(r.replicationStates.includes(s), `replication ${s} shown (${r.replicationStates.join(' → ')})`);
t.same(r.gates.filter((g) => g.gate !== '1'), [{ gate: '2', passed: true }, { gate: '3', passed: true }, { gate: '2', passed: true }], 'gates 2, 3 and 2 again passed');
t.match(text, /gate 1: (PASSED|FAILED)[\s\S]*round trip p99/, 'gate 1 ran and printed its measured values');
t.match(text, /live split in READS_50PCT_AURORA: reads \d+\.\d% to the target/, 'the live read split is printed');

const f = r.fault!;
t.ok(f?.ok, `the fault run completed${f?.failure ? `: ${f.failure}` : ''}`);
t.match(f.breaker ?? '', /^breaker:error-rate/, 'the error-rate breaker started the rollback');
t.match(f.paused?.why ?? '', /resume with pg-cutover replicate resume/, `forward replication PAUSED since ${f.paused?.since}, saying how to resume`);
t.match(text, /transition to READS_10PCT_AURORA refused[^\n]*replication PAUSED[^\n]*pg-cutover replicate resume/, 'a forward step while paused is refused, naming the resume command');
t.equal(f.applyErrorsAfterResume, 0, 'resumed without an apply error (no duplicate key)');
t.equal(f.gate2AfterResume, true, 'gate 2 passes after the resume');

const z = r.zeroLoss!;
t.ok(z.acked > 500, `${z.acked} acknowledged write transactions`);
t.equal(z.replicaCaughtUp, true, 'the target applied everything the source flushed');
t.equal(z.lost, 0, 'every acknowledged write is on both sides');
t.equal(z.balancesAddUp, true, 'the TPC-B balances add up on both sides');
t.equal(z.checksumsEqual, true, `checksums equal${z.differing.length ? ` except ${z.differing.join(', ')}` : ''}`);
t.comment(`walkthrough: ${r.seconds} s, ${z.acked} acknowledged, ${r.load.inDoubt} in doubt, client errors ${JSON.stringify(r.load.errors)}, rollback ${f.tripMs} ms after the cut`);
