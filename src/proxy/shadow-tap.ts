/**
 * The proxy's side of shadowing (STYLE.md 6; PgDog's mirror is fed a copy of the traffic): a client session
 * offers each unit it sends to the source, and the source's replies, to whatever implements this. The shadow
 * service (src/shadow/shadower.ts) does, structurally: it decides what to sample and runs the shadow on its own
 * target connections, never in the forwarding path. The proxy imports nothing from src/shadow/.
 */

/** The session's settings to replay on a shadow connection first, built only when a unit is sampled. */
export type TapPrelude = string[] | (() => string[]);

/** The session's named statements (a shadow re-Parses those a sampled unit uses). */
export type TapNamed = ReadonlyMap<string, { text: string; parse: Buffer }>;

/** One shadowed transaction or dark read: copies of the client's frames to the source and of the source's replies. */
export interface TapTransaction {
  clientFrame(type: number, buf: Buffer, start: number, end: number): void;
  sourceData(chunk: Buffer): void;
  /** Its unit (or transaction) ended on the source. */
  finish(): void;
}

export interface ShadowTap {
  /** Share of idle-session reads to the source sampled for a dark read (0: none). */
  readonly darkReadRate: number;
  /**
   * A write unit in SHADOW_WRITES: a lock-step shadow transaction, or null when not sampled. `role`: the role
   * the client's session runs as on the backends (its own login), which the shadow acts as too; null when
   * the session uses the backend URL's login.
   */
  begin(prelude: TapPrelude, named: TapNamed, role: string | null): TapTransaction | null;
  /** A read unit to an idle source: a dark read, or null when not sampled. */
  beginRead(prelude: TapPrelude, named: TapNamed, role: string | null): TapTransaction | null;
}
