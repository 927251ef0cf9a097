/**
 * Samples the running sidecar into the history store every interval: state, read split, p99 per backend and
 * kind (from the proxy's latency histograms, diffed per interval), error rate in the interval, replication
 * lag, shadow match rate, slot retention; and the day's p99 per backend, persisted as it grows, for the
 * "p99 < 30 ms for 14 consecutive days" streak. The day is 24 h × --time-scale.
 */
import { quantileOfCounts, type LatencyHistogram, type UnitLatency } from '../proxy/latency.js';
import type { CutoverState } from '../domain/states.js';
import type { DailyP99, HistorySample, HistoryStore } from './history.js';
import { ROLES, type Role } from '../domain/role.js';

export interface RecorderSources {
  state(): CutoverState;
  readPercent(): number;
  latency: UnitLatency;
  /** Cumulative statements and server-side failures through the proxy (both backends). */
  counters(): { statements: number; faults: number };
  lagSeconds(): number | null;
  /** Cumulative shadow comparisons and mismatches; null without a shadow service. */
  shadow(): { compared: number; mismatched: number } | null;
  slots(): { source: number | null; target: number | null };
}

type Key = 'source.read' | 'source.write' | 'target.read' | 'target.write';
const KEYS: readonly Key[] = ['source.read', 'source.write', 'target.read', 'target.write'];

function histogram(l: UnitLatency, k: Key): LatencyHistogram {
  const [b, kind] = k.split('.') as [Role, 'read' | 'write'];
  return l[b][kind];
}

/** cur − prev per bucket; a histogram that was reset since (a bucket went down) counts from zero. */
export function diffCounts(cur: Float64Array, prev: Float64Array | undefined): Float64Array {
  if (!prev) return cur;
  for (let i = 0; i < cur.length; i++) if (cur[i]! < prev[i]!) return cur;
  return cur.map((v, i) => v - prev[i]!);
}

export class HistoryRecorder {
  private prev = new Map<Key, Float64Array>();
  private prevCounters: { statements: number; faults: number } | null = null;
  private day: { n: number; source: Float64Array; target: Float64Array } | null = null;

  constructor(private readonly src: RecorderSources, private readonly store: HistoryStore, private readonly dayMs: number) {}

  /** One sample now; returns it (also appended to the store). */
  async sample(at: number): Promise<HistorySample> {
    const interval = new Map<Key, Float64Array>();
    for (const k of KEYS) {
      const cur = histogram(this.src.latency, k).copyCounts();
      interval.set(k, diffCounts(cur, this.prev.get(k)));
      this.prev.set(k, cur);
    }
    const p99 = (k: Key) => round(quantileOfCounts(interval.get(k)!, 0.99));
    const c = this.src.counters();
    const pc = this.prevCounters;
    this.prevCounters = c;
    const dStmts = pc && c.statements >= pc.statements ? c.statements - pc.statements : c.statements;
    const dFaults = pc && c.faults >= pc.faults ? c.faults - pc.faults : c.faults;
    const sh = this.src.shadow();
    const s: HistorySample = {
      at,
      state: this.src.state(),
      readPercent: this.src.readPercent(),
      p99: { source: { read: p99('source.read'), write: p99('source.write') }, target: { read: p99('target.read'), write: p99('target.write') } },
      errorRate: dStmts > 0 ? dFaults / dStmts : null,
      lagSeconds: this.src.lagSeconds(),
      shadowMatchRate: sh && sh.compared > 0 ? (sh.compared - sh.mismatched) / sh.compared : null,
      slotRetainedBytes: this.src.slots(),
    };
    await this.store.append(s);
    await this.addToDay(at, interval);
    return s;
  }

  private async addToDay(at: number, interval: Map<Key, Float64Array>): Promise<void> {
    const n = Math.floor(at / this.dayMs);
    if (this.day?.n !== n) this.day = { n, source: new Float64Array(interval.get('source.read')!.length), target: new Float64Array(interval.get('source.read')!.length) };
    const d = this.day;
    for (const k of KEYS) {
      const into = k.startsWith('source') ? d.source : d.target;
      const add = interval.get(k)!;
      for (let i = 0; i < into.length; i++) into[i] += add[i]!;
    }
    for (const backend of ROLES) {
      const counts = d[backend];
      const units = counts.reduce((a, b) => a + b, 0);
      if (units === 0) continue;
      const row: DailyP99 = { day: n, backend, p99Ms: round(quantileOfCounts(counts, 0.99)), units };
      await this.store.putDaily(row);
    }
  }
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v * 1000) / 1000;
}
