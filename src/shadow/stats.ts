/**
 * Counters of the shadow service. Write shadows feed gate 3 (shadowed, compared, mismatched, unexplained);
 * dark reads and apply-mode outcomes have their own counters so they never move gate 3.
 */
import { EXPLAINED, MISMATCH_CLASSES, type Difference, type MismatchClass } from './compare.js';
import type { ApplyOutcome } from './shadow-tx.js';

export type ShadowKind = 'write' | 'read';

export interface MismatchRecord {
  at: string;
  /** A write shadow (gate 3) or a dark read. */
  kind: ShadowKind;
  cls: MismatchClass;
  explained: boolean;
  fingerprint: string;
  statement: number;
  source: Difference['source'];
  shadow: Difference['shadow'];
}

function zeroClasses(): Record<MismatchClass, number> {
  return Object.fromEntries(MISMATCH_CLASSES.map((c) => [c, 0])) as Record<MismatchClass, number>;
}

function unexplainedOf(m: Record<MismatchClass, number>): number {
  let n = 0;
  for (const c of MISMATCH_CLASSES) if (!EXPLAINED.has(c)) n += m[c];
  return n;
}

/** Dark reads: reads sent to the source, sampled and run on the target too (DESIGN.md, "Dark reads"). */
export class DarkReadStats {
  sampled = 0;
  shadowed = 0;
  compared = 0;
  matched = 0;
  abandoned = 0;
  /** Dark reads abandoned because the target refused SET ROLE to the client's role (see ShadowContext.role). */
  roleRefused = 0;
  readonly mismatched = zeroClasses();
  /** 'target-down': no shadow connection because the target cannot be reached (the read ran on the source). */
  readonly notShadowed = { 'not-sampled': 0, 'pool-exhausted': 0, 'target-down': 0 };

  get unexplained(): number {
    return unexplainedOf(this.mismatched);
  }
}

/** Apply mode: what became of each shadowed write transaction on the target (see ApplyOutcome). */
export class ApplyStats {
  committed = 0;
  partial = 0;
  'rolled-back' = 0;
  lost = 0;

  count(o: ApplyOutcome): void {
    this[o]++;
  }
}

export class ShadowStats {
  sampled = 0;
  shadowed = 0;
  matched = 0;
  compared = 0;
  abandoned = 0;
  /** Shadows abandoned because the target refused SET ROLE to the client's role (see ShadowContext.role). */
  roleRefused = 0;
  readonly mismatched = zeroClasses();
  readonly notShadowed = { 'not-sampled': 0, 'pool-exhausted': 0, 'lag-budget': 0, 'target-down': 0 };
  targetErrors = 0;
  latencyMs: number[] = [];
  readonly darkReads = new DarkReadStats();
  readonly apply = new ApplyStats();

  get unexplained(): number {
    return unexplainedOf(this.mismatched);
  }
}
