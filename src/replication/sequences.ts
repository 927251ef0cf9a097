/**
 * Sequence sync. Logical replication does not carry sequence values
 * (https://www.postgresql.org/docs/15/logical-replication-restrictions.html), so the side taking
 * over writes must have its sequences set from the side that had them, or its next INSERT reuses a
 * key (measured: 23505 on the first insert). `headroom` sets them ahead instead, for shadow writes
 * on a replica (DESIGN.md "Shadow writes", point 2).
 */
import type { Db } from './control-conn.js';

export interface SequenceValue {
  readonly schema: string;
  readonly name: string;
  /** Last value handed out (or cached ahead); null when never used. */
  readonly lastValue: string | null;
}

export interface SequenceSyncReport {
  /** Sequences set on the destination, with the value set. */
  readonly set: readonly { schema: string; name: string; value: string }[];
  /** On the source side only. */
  readonly missing: readonly string[];
  readonly ms: number;
}

export async function readSequences(db: Db): Promise<SequenceValue[]> {
  // pg_sequences.last_value includes values a session cached ahead (CACHE > 1): setting the other
  // side from it skips a few numbers, never reuses one.
  const r = await db.query<{ schema: string; name: string; last: string | null }>(
    `SELECT schemaname AS schema, sequencename AS name, last_value::text AS last FROM pg_sequences
      WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  return r.rows.map((x) => ({ schema: x.schema, name: x.name, lastValue: x.last }));
}

export interface SequenceSyncOptions {
  /**
   * Set each sequence this many increments past the source's value (shadow writes). Default 0:
   * exactly the source's value, even if the destination is ahead (switchover after shadowing).
   */
  headroom?: number;
  /**
   * Never move a destination sequence backwards (shadow writes: rolled-back shadow INSERTs still consumed
   * target values). Default false: the switchover sets exactly the source's values.
   */
  neverBackwards?: boolean;
}

/** setval on `to` for every sequence `from` has used; one statement for all of them. */
export async function syncSequences(from: Db, to: Db, opts: SequenceSyncOptions = {}): Promise<SequenceSyncReport> {
  const started = Date.now();
  const src = (await readSequences(from)).filter((x) => x.lastValue !== null);
  const have = new Set((await readSequences(to)).map((x) => `${x.schema}.${x.name}`));
  const present = src.filter((x) => have.has(`${x.schema}.${x.name}`));
  const missing = src.filter((x) => !have.has(`${x.schema}.${x.name}`)).map((x) => `${x.schema}.${x.name}`);
  if (present.length === 0) return { set: [], missing, ms: Date.now() - started };
  const h = Math.max(0, Math.floor(opts.headroom ?? 0));
  // Headroom in increments, clamped to the sequence's bounds (a descending sequence goes down); with
  // neverBackwards, a destination already further along in the sequence's direction keeps its value.
  const r = await to.query<{ schema: string; name: string; value: string }>(
    `SELECT w.schema, w.name,
            setval(format('%I.%I', w.schema, w.name)::regclass,
                   CASE WHEN s.increment_by > 0
                        THEN greatest(least(w.v::numeric + $4::numeric * s.increment_by, s.max_value),
                                      CASE WHEN $5 THEN coalesce(s.last_value, s.min_value) ELSE s.min_value END)
                        ELSE least(greatest(w.v::numeric + $4::numeric * s.increment_by, s.min_value),
                                   CASE WHEN $5 THEN coalesce(s.last_value, s.max_value) ELSE s.max_value END) END::bigint,
                   true)::text AS value
       FROM unnest($1::text[], $2::text[], $3::text[]) AS w(schema, name, v)
       JOIN pg_sequences s ON s.schemaname = w.schema AND s.sequencename = w.name`,
    [present.map((x) => x.schema), present.map((x) => x.name), present.map((x) => x.lastValue!), h, opts.neverBackwards === true],
  );
  return { set: r.rows, missing, ms: Date.now() - started };
}
