/**
 * Unleash flags → one desired cutover state (DESIGN.md "Unleash"). Pure: feature definitions in,
 * a FlagReading out, and a FlagReading → desired state. The binding (unleash.ts) feeds it the
 * definitions the real `unleash-client` holds; the control plane runs the result through the
 * state machine's guards, so a flag can ask for a step but never force one.
 *
 * The flags are global settings of the migration, not per-user features: we read their
 * definitions (enabled, strategies, variants) instead of evaluating them for a context, so every
 * sidecar derives the same value. Strategy constraints and segments are therefore not evaluated.
 */
import type { CutoverState } from '../domain/states.js';

/** Logical flag → the Unleash feature name that carries it. */
export interface FlagNames {
  readonly readsPct: string;
  readonly shadowWrites: string;
  readonly writesToAurora: string;
  readonly killSwitch: string;
}

export const DEFAULT_FLAG_NAMES: FlagNames = {
  readsPct: 'cutover.reads-pct',
  shadowWrites: 'cutover.shadow-writes',
  writesToAurora: 'cutover.writes-to-aurora',
  killSwitch: 'cutover.kill-switch',
};

/** What the four flags said at one moment. */
export interface FlagReading {
  /** Percentage of reads requested on the target (raw, 0..100), or null when the flag is off, absent or unreadable. */
  readonly readsPct: number | null;
  /** Where readsPct came from. */
  readonly readsPctFrom: 'variant' | 'rollout' | 'enabled' | null;
  readonly shadowWrites: boolean;
  readonly writesToAurora: boolean;
  readonly killSwitch: boolean;
  /** `server`: fetched from Unleash; `backup`: the client's backup file (Unleash unreachable at start); `none`: nothing yet. */
  readonly source: 'server' | 'backup' | 'none';
  /** Epoch ms the reading was taken. */
  readonly at: number;
  /** Flag definitions we could not interpret (bad payload, rollout out of range); they count as off. */
  readonly problems: readonly string[];
}

/** The subset of Unleash's FeatureInterface we read (structural, so tests can pass plain objects). */
export interface FlagDefinition {
  readonly name: string;
  readonly enabled: boolean;
  readonly strategies?: readonly {
    readonly name: string;
    readonly parameters?: Readonly<Record<string, unknown>>;
    readonly variants?: readonly VariantLike[];
  }[];
  readonly variants?: readonly VariantLike[];
}

interface VariantLike {
  readonly name: string;
  readonly weight: number;
  readonly payload?: { readonly type: string; readonly value: string };
}

export const EMPTY_READING: FlagReading = {
  readsPct: null,
  readsPctFrom: null,
  shadowWrites: false,
  writesToAurora: false,
  killSwitch: false,
  source: 'none',
  at: 0,
  problems: [],
};

/** Strategy name → the parameter holding its percentage (unleash-client's strategy/*.js). */
const ROLLOUT_PARAM: Readonly<Record<string, string>> = {
  flexibleRollout: 'rollout',
  gradualRolloutRandom: 'percentage',
  gradualRolloutUserId: 'percentage',
  gradualRolloutSessionId: 'percentage',
};

type Pct = { ok: true; pct: number; from: 'variant' | 'rollout' | 'enabled' } | { ok: false; problem: string } | null;

/**
 * The percentage a flag carries: the payload of its heaviest variant (feature-level or
 * strategy-level) when it has variants; else the largest rollout percentage of its rollout
 * strategies (Unleash enables a feature when any strategy matches, so the largest one is the
 * exposure); else 100 when it is simply on. null when the flag is off or absent.
 */
export function flagPercent(def: FlagDefinition | undefined): Pct {
  if (!def || !def.enabled) return null;
  const strategies = def.strategies ?? [];
  const variants = [...(def.variants ?? []), ...strategies.flatMap((s) => s.variants ?? [])];
  if (variants.length > 0) {
    const heaviest = variants.reduce((a, b) => (b.weight > a.weight ? b : a));
    const pct = parsePercent(heaviest.payload?.value);
    if (pct === null) {
      return { ok: false, problem: `${def.name}: variant ${JSON.stringify(heaviest.name)} payload ${JSON.stringify(heaviest.payload?.value ?? null)} is not a percentage 0..100` };
    }
    return { ok: true, pct, from: 'variant' };
  }
  let best: number | null = null;
  for (const s of strategies) {
    const param = ROLLOUT_PARAM[s.name];
    if (param === undefined) continue;
    const pct = parsePercent(s.parameters?.[param]);
    if (pct === null) {
      return { ok: false, problem: `${def.name}: strategy ${s.name} ${param}=${JSON.stringify(s.parameters?.[param] ?? null)} is not a percentage 0..100` };
    }
    best = best === null ? pct : Math.max(best, pct);
  }
  if (best !== null) return { ok: true, pct: best, from: 'rollout' };
  // Enabled with the `default` strategy, or with none (Unleash then enables it for everyone).
  return { ok: true, pct: 100, from: 'enabled' };
}

/** "10", 10, "10%", " 50 " → number; anything else, or outside 0..100, → null. */
function parsePercent(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 && v <= 100 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*%?\s*$/.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  return n <= 100 ? n : null;
}

/** A boolean flag is on when it is enabled and not limited to 0% by its rollout. */
function flagOn(def: FlagDefinition | undefined, problems: string[]): boolean {
  const p = flagPercent(def);
  if (p === null) return false;
  if (!p.ok) {
    problems.push(p.problem);
    return false;
  }
  return p.pct > 0;
}

/** Reads the four flags from a definition lookup (the client's `getFeatureToggleDefinition`). */
export function readFlags(
  lookup: (name: string) => FlagDefinition | undefined,
  names: FlagNames,
  source: FlagReading['source'],
  at: number,
): FlagReading {
  const problems: string[] = [];
  const reads = flagPercent(lookup(names.readsPct));
  if (reads !== null && !reads.ok) problems.push(reads.problem);
  const readsOk = reads !== null && reads.ok ? reads : null;
  return {
    readsPct: readsOk ? readsOk.pct : null,
    readsPctFrom: readsOk ? readsOk.from : null,
    shadowWrites: flagOn(lookup(names.shadowWrites), problems),
    writesToAurora: flagOn(lookup(names.writesToAurora), problems),
    killSwitch: flagOn(lookup(names.killSwitch), problems),
    source,
    at,
    problems,
  };
}

/** Read stages by percentage, highest first. */
const READ_STAGES: readonly (readonly [number, CutoverState])[] = [
  [100, 'READS_100PCT_AURORA'],
  [50, 'READS_50PCT_AURORA'],
  [10, 'READS_10PCT_AURORA'],
  [0, 'SOURCE_PRIMARY'],
];

/** The read stage for a percentage, rounding down to the nearest stage (37 → READS_10PCT_AURORA). */
export function readStageFor(pct: number): CutoverState {
  for (const [at, state] of READ_STAGES) if (pct >= at) return state;
  return 'SOURCE_PRIMARY';
}

/**
 * The one state the flags ask for, strongest flag first: kill switch → ROLLBACK, writes-to-aurora
 * → WRITES_TO_AURORA, shadow-writes → SHADOW_WRITES, reads-pct → its read stage. All off → null
 * (the flags ask for nothing).
 */
export function desiredState(flags: FlagReading): { state: CutoverState; reason: string } | null {
  if (flags.killSwitch) return { state: 'ROLLBACK', reason: 'unleash: kill switch on' };
  if (flags.writesToAurora) return { state: 'WRITES_TO_AURORA', reason: 'unleash: writes-to-aurora on' };
  if (flags.shadowWrites) return { state: 'SHADOW_WRITES', reason: 'unleash: shadow-writes on' };
  if (flags.readsPct !== null) {
    const state = readStageFor(flags.readsPct);
    const from = flags.readsPctFrom ? ` (${flags.readsPctFrom})` : '';
    const rounded = READ_STAGES.some(([at]) => at === flags.readsPct) ? '' : `, rounded down to ${state}`;
    return { state, reason: `unleash: reads-pct ${flags.readsPct}%${from}${rounded}` };
  }
  return null;
}
