import type { Role } from './role.js';
/**
 * The cutover states of shared/DESIGN.md ("Cutover state machine") and what each one means for
 * routing. Pure data: the router, the proxy and the admin API read these tables; nothing here
 * does I/O.
 */

/** Every cutover state, forward order first, ROLLBACK last. */
export const CUTOVER_STATES = [
  'SOURCE_PRIMARY',
  'READS_10PCT_AURORA',
  'READS_50PCT_AURORA',
  'READS_100PCT_AURORA',
  'SHADOW_WRITES',
  'WRITES_TO_AURORA',
  'SOURCE_READ_ONLY',
  'CUTOVER_COMPLETE',
  'ROLLBACK',
] as const;
export type CutoverState = (typeof CUTOVER_STATES)[number];

/** The forward path, one step at a time. ROLLBACK is not on it. */
export const FORWARD_PATH: readonly CutoverState[] = CUTOVER_STATES.slice(0, 8);

export interface StatePolicy {
  /** Percentage (0..100) of reads sent to the target. In ROLLBACK this is the ramp's start, see `effectiveReadPercent`. */
  readonly readPercent: number;
  /** Where application writes go. */
  readonly writesTo: Role;
  /** Lock-step shadow of writes to the target (DESIGN.md "Shadow writes"). */
  readonly shadow: boolean;
  /** The source is fenced read-only for application roles (DESIGN.md "Fencing"). */
  readonly sourceFenced: boolean;
}

/** DESIGN.md's table, row for row. */
export const STATE_POLICY: { readonly [S in CutoverState]: StatePolicy } = {
  SOURCE_PRIMARY: { readPercent: 0, writesTo: 'source', shadow: false, sourceFenced: false },
  READS_10PCT_AURORA: { readPercent: 10, writesTo: 'source', shadow: false, sourceFenced: false },
  READS_50PCT_AURORA: { readPercent: 50, writesTo: 'source', shadow: false, sourceFenced: false },
  READS_100PCT_AURORA: { readPercent: 100, writesTo: 'source', shadow: false, sourceFenced: false },
  SHADOW_WRITES: { readPercent: 100, writesTo: 'source', shadow: true, sourceFenced: false },
  WRITES_TO_AURORA: { readPercent: 100, writesTo: 'target', shadow: false, sourceFenced: true },
  SOURCE_READ_ONLY: { readPercent: 100, writesTo: 'target', shadow: false, sourceFenced: true },
  CUTOVER_COMPLETE: { readPercent: 100, writesTo: 'target', shadow: false, sourceFenced: true },
  // Reads ramp down from where they were (the snapshot's readPercent) to 0 over rollbackReadRampMs.
  ROLLBACK: { readPercent: 0, writesTo: 'source', shadow: false, sourceFenced: false },
};

const BY_UPPER: ReadonlyMap<string, CutoverState> = new Map(CUTOVER_STATES.map((s) => [s, s]));

export function isCutoverState(x: unknown): x is CutoverState {
  return typeof x === 'string' && BY_UPPER.has(x);
}

export type ParseStateResult = { ok: true; state: CutoverState } | { ok: false; code: 'unknown-state'; reason: string };

/**
 * Parse an operator's state name: case-insensitive, `-` accepted for `_`, surrounding space
 * ignored (`reads_10pct_aurora`, `Shadow-Writes`). An unknown name yields a reason that lists
 * every valid state.
 */
export function parseState(name: unknown): ParseStateResult {
  if (typeof name === 'string') {
    const found = BY_UPPER.get(name.trim().toUpperCase().replace(/-/g, '_'));
    if (found) return { ok: true, state: found };
  }
  const shown = typeof name === 'string' ? JSON.stringify(name) : `a ${name === null ? 'null' : typeof name}`;
  return {
    ok: false,
    code: 'unknown-state',
    reason: `unknown cutover state ${shown}; valid states: ${CUTOVER_STATES.join(', ')}`,
  };
}
