/** The walkthrough's live split: read from Prometheus text, differenced between samples (a state change resets the per-state units), printed. */
import t from 'tap';
import { formatSplit, parseSplit, splitSince } from '../../src/demo/walk-io.js';

const metrics = (sr: number, sw: number, tr: number, tw: number, ss: number, ts: number) => `# HELP pgcutover_units_in_state x
# TYPE pgcutover_units_in_state gauge
pgcutover_units_in_state{backend="source",kind="read"} ${sr}
pgcutover_units_in_state{backend="source",kind="write"} ${sw}
pgcutover_units_in_state{backend="target",kind="read"} ${tr}
pgcutover_units_in_state{backend="target",kind="write"} ${tw}
pgcutover_statements_total{backend="source"} ${ss}
pgcutover_statements_total{backend="target"} ${ts}
pgcutover_unit_latency_seconds{backend="source",kind="read",quantile="0.99"} 0.002
`;

t.test('parse, difference and format', async (t) => {
  const a = parseSplit(metrics(90, 100, 10, 0, 800, 10));
  t.same(a, { source: { read: 90, write: 100 }, target: { read: 10, write: 0 }, statements: { source: 800, target: 10 } });
  t.equal(formatSplit(a), 'reads 10.0% to the target (10 of 100) · writes: source 100, target 0 · statements: source 800, target 10');
  const b = parseSplit(metrics(140, 200, 60, 0, 1600, 60));
  t.same(splitSince(b, a), { source: { read: 50, write: 100 }, target: { read: 50, write: 0 }, statements: { source: 800, target: 50 } }, 'the difference of two samples in one state');
  const c = parseSplit(metrics(0, 3, 5, 0, 1700, 65));
  t.same(splitSince(c, b).source, { read: 0, write: 3 }, 'after a state change (counters reset) the new state\'s own counts');
  t.same(splitSince(c, b).statements, { source: 100, target: 5 }, 'statements are cumulative: always differenced');
  t.match(formatSplit(parseSplit(metrics(0, 0, 0, 0, 5, 900))), /^not classified in this state .* statements: source 5, target 900$/, 'states that route everything to one side show statements');
  t.same(parseSplit(''), { source: { read: 0, write: 0 }, target: { read: 0, write: 0 }, statements: { source: 0, target: 0 } }, 'no metrics: zeros');
});
