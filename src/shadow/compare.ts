/**
 * Pure comparison of a unit's results on the source and on the shadow (DESIGN.md, "Compare" and "Explain").
 */
import type { StatementResult, UnitResult } from './results.js';
import { SqlState } from '../protocol/sqlstate.js';

export const MISMATCH_CLASSES = [
  'error-on-target-only',
  'error-on-source-only',
  'sqlstate',
  'row-count',
  'value',
  // explained: do not count against gate 3
  'lag-suspect',
  'shadow-lock-timeout',
  'abandoned',
] as const;
export type MismatchClass = (typeof MISMATCH_CLASSES)[number];

export const EXPLAINED: ReadonlySet<MismatchClass> = new Set(['lag-suspect', 'shadow-lock-timeout', 'abandoned']);

export interface Difference {
  cls: MismatchClass;
  /** Index of the first differing statement in the unit. */
  statement: number;
  source: StatementResult | null;
  shadow: StatementResult | null;
}

/** 55P03 lock_not_available: the shadow gave way to a lock (lock_timeout), by design. */
const LOCK_TIMEOUT = SqlState.LockNotAvailable;

/** The first difference between the two sides' results; a lock timeout on the shadow is explained as such. */
export function compareUnits(src: UnitResult, shd: UnitResult): Difference | null {
  const n = Math.max(src.length, shd.length);
  for (let i = 0; i < n; i++) {
    const a = src[i] ?? null;
    const b = shd[i] ?? null;
    const d = compareOne(a, b);
    if (d === null) continue;
    if (b !== null && !b.ok && b.sqlstate === LOCK_TIMEOUT) return { cls: 'shadow-lock-timeout', statement: i, source: a, shadow: b };
    return { cls: d, statement: i, source: a, shadow: b };
  }
  return null;
}

function compareOne(a: StatementResult | null, b: StatementResult | null): MismatchClass | null {
  if (a === null || b === null) return a === null ? 'error-on-source-only' : 'error-on-target-only';
  if (a.ok && !b.ok) return 'error-on-target-only';
  if (!a.ok && b.ok) return 'error-on-source-only';
  if (!a.ok && !b.ok) return a.sqlstate === b.sqlstate ? null : 'sqlstate';
  if (a.tag !== b.tag || a.rows !== b.rows) return 'row-count';
  if (a.hash !== b.hash) return 'value';
  return null;
}
