/**
 * Pure routing decisions (DESIGN.md, "Cutover state machine"): which backend a unit of client work goes to.
 * A unit is one simple Query, or the extended-protocol messages up to Sync, decided only when the session
 * is outside a transaction with no reply owed; inside one, everything follows the backend it began on.
 */
import type { Classification } from './classify.js';
import type { Role } from '../domain/role.js';


export interface RoutePolicy {
  /** Reads sent to the target, 0..100. */
  readPercent: number;
  writesTo: Role;
  /** Writes are shadowed on the target (SHADOW_WRITES). */
  shadow?: boolean;
  /** The source is fenced read-only for applications (WRITES_TO_AURORA onward). */
  sourceFenced?: boolean;
}

/** What the unit's statements add up to. */
export interface UnitSummary {
  /** Any statement that is not a plain read (writes, BEGIN READ WRITE, SET, ...) sends the unit to the writer. */
  write: boolean;
  /** A routing hint from a leading comment, honoured for reads only. */
  hint?: Role;
  /** The unit pins the session (temp table, LISTEN, session advisory lock). */
  pins: boolean;
  /** Its only non-reads are session statements (SET, PREPARE, LISTEN…): no data changed, no read-your-writes wait. */
  sessionOnly?: boolean;
}

export interface SessionView {
  pinnedTo: Role | null;
  /**
   * May a read go to the non-writer now (read-your-writes by LSN, staleness bound: ./freshness.ts)? Asked
   * only for a read the split or a hint would send there.
   */
  fresh(now: number): boolean;
  /** A read was kept on the writer because the other side had not applied the session's writes yet. */
  redirected?(): void;
  split: 'random' | 'session-hash';
  /** Stable 0..100 value from the session, for session-hash splitting. */
  sessionPoint: number;
}

/** Combines per-statement classifications; `multi` strings are already folded by the classifier. */
export function summarize(cs: readonly Classification[]): UnitSummary {
  let write = false;
  let hint: Role | undefined;
  let pins = false;
  let data = false;
  for (const c of cs) {
    if (c.cls !== 'read' && c.cls !== 'session') data = true;
    if (c.pins) pins = true;
    switch (c.cls) {
      case 'read':
        if (c.hint && hint === undefined) hint = c.hint;
        break;
      case 'tx-begin':
        if (!c.readOnlyTx) write = true;
        break;
      case 'write':
      case 'tx-end':
      case 'tx-other':
      case 'session':
        write = true;
        break;
      default: {
        const never: never = c.cls;
        throw new Error(`unknown statement class ${String(never)}`);
      }
    }
  }
  return { write, hint: write ? undefined : hint, pins, sessionOnly: write && !data };
}

/**
 * The backend for a unit. `rand` is in [0, 1): injected so tests can drive the split.
 * Order: pinned session → writer for writes → hint or percentage split, kept on the writer while the other
 * side has not applied the session's last write (or is staler than the bound).
 */
export function routeUnit(u: UnitSummary, p: RoutePolicy, s: SessionView, now: number, rand: number): Role {
  if (s.pinnedTo !== null) return s.pinnedTo;
  if (u.write || u.pins) return p.writesTo;
  const want = u.hint ?? splitRole(p, s, rand);
  if (want !== p.writesTo && !s.fresh(now)) {
    s.redirected?.();
    return p.writesTo;
  }
  return want;
}

function splitRole(p: RoutePolicy, s: SessionView, rand: number): Role {
  if (p.readPercent <= 0) return 'source';
  if (p.readPercent >= 100) return 'target';
  const point = s.split === 'random' ? rand * 100 : s.sessionPoint;
  return point < p.readPercent ? 'target' : 'source';
}

/**
 * States whose decision does not depend on the statement (DESIGN.md, "Classify by shape, and only when it
 * matters"): everything goes to one backend, so the forwarding path skips classification.
 */
export function uniformRole(p: RoutePolicy): Role | null {
  if (p.readPercent <= 0 && p.writesTo === 'source') return 'source';
  if (p.readPercent >= 100 && p.writesTo === 'target') return 'target';
  return null;
}

/** A stable 0..100 point for a session (FNV-1a of its key), for session-hash splitting. */
export function sessionPoint(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return ((h >>> 0) % 10000) / 100;
}
