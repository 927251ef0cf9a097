/**
 * Logical replication does not carry sequences, so a shadow INSERT with a generated key would collide with
 * replicated rows (DESIGN.md, "Sequences"). On entering SHADOW_WRITES, and periodically during it, every
 * target sequence is set ahead of the source's value by a headroom; shadow rows are rolled back, and the
 * write switchover later sets the target to the source's exact values.
 */
import pg from 'pg';
import { log } from '../log.js';
import { pgClientConfig, type BackendTarget } from '../proxy/database-url.js';

export interface SequenceValue {
  schema: string;
  name: string;
  last: string | null;
}

export async function readSequences(db: pg.Client): Promise<SequenceValue[]> {
  const r = await db.query<{ schemaname: string; sequencename: string; last_value: string | null }>(
    "select schemaname, sequencename, last_value::text from pg_sequences where schemaname not in ('pg_catalog', 'information_schema')",
  );
  return r.rows.map((x) => ({ schema: x.schemaname, name: x.sequencename, last: x.last_value }));
}

/** Sets each target sequence to source value + headroom (never backwards). Returns how many were moved. */
export async function advanceTargetSequences(source: pg.Client, target: pg.Client, headroom: number): Promise<number> {
  const seqs = await readSequences(source);
  let moved = 0;
  for (const s of seqs) {
    if (s.last === null) continue;
    const r = await target.query(
      `select setval(format('%I.%I', $1::text, $2::text)::regclass,
              greatest($3::bigint + $4::bigint, coalesce((select last_value from pg_sequences where schemaname = $1 and sequencename = $2), 1)))
       where exists (select 1 from pg_sequences where schemaname = $1 and sequencename = $2)`,
      [s.schema, s.name, s.last, headroom],
    );
    moved += r.rowCount ?? 0;
  }
  return moved;
}

/** One sequence advance over fresh control sessions; failures are logged (the next period retries). */
export async function syncTargetSequences(ctl: { source: BackendTarget; target: BackendTarget }, headroom: number): Promise<void> {
  const src = new pg.Client(pgClientConfig(ctl.source, 'pg-cutover-control:sequences'));
  const dst = new pg.Client({ ...pgClientConfig(ctl.target, 'pg-cutover-control:sequences'), options: '-c default_transaction_read_only=off' });
  src.on('error', () => {});
  dst.on('error', () => {});
  try {
    await Promise.all([src.connect(), dst.connect()]);
    const n = await advanceTargetSequences(src, dst, headroom);
    log.debug({ sequences: n }, 'target sequences moved ahead for shadowing');
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'could not move target sequences ahead');
  } finally {
    await Promise.allSettled([src.end(), dst.end()]);
  }
}
