/**
 * Guard for the shadow service's `apply` mode, checked once at sidecar start.
 *
 * DANGER: in apply mode every sampled write transaction is written twice, once by the client on the source
 * and once by its shadow on the target, which COMMITs. On a target fed by replication that applies each
 * write twice (the apply worker brings the source's copy a moment later: duplicate keys stop replication,
 * increments are counted double). Apply mode is only for a target nothing else writes to, e.g. a load-test
 * copy restored from a snapshot, to replay production writes against PostgreSQL 15.
 *
 * Refused: a hot standby (pg_is_in_recovery(): it is a replica and cannot take writes anyway) and any
 * enabled logical subscription (pg_subscription.subenabled; the catalog is cluster-wide and its columns
 * but subconninfo are readable by every role, https://www.postgresql.org/docs/15/catalog-pg-subscription.html).
 * Not detectable from the catalog: a target fed by AWS DMS or another external tool. Whoever turns apply
 * mode on owns that check.
 */
import type pg from 'pg';
import { pgClientConfig, type BackendTarget } from '../net/database-url.js';
import { controlServer } from '../replication/control-server.js';

export type ApplyModeCheck = { ok: true } | { ok: false; reason: string };

/** Connects to the target (a control URL or target settings) and says whether apply mode may run there. */
export async function checkApplyModeAllowed(target: string | BackendTarget): Promise<ApplyModeCheck> {
  // A connection of its own (control-server.ts `connect`): one check at start, then ended.
  const server = controlServer(typeof target === 'string' ? target : pgClientConfig(target), 'target');
  let c: pg.Client | null = null;
  try {
    c = await server.connect('apply-check', { connectTimeoutMs: 10_000 });
    const rec = await c.query<{ r: boolean }>('select pg_is_in_recovery() as r');
    if (rec.rows[0].r) return { ok: false, reason: 'the target is a hot standby (pg_is_in_recovery()): apply mode writes to the target, only for one nothing replicates into' };
    const subs = await c.query<{ subname: string; datname: string | null }>(
      'select s.subname, d.datname from pg_catalog.pg_subscription s left join pg_catalog.pg_database d on d.oid = s.subdbid where s.subenabled order by 1',
    );
    if (subs.rows.length > 0) {
      const names = subs.rows.map((r) => `${r.subname} (database ${r.datname ?? '?'})`).join(', ');
      return {
        ok: false,
        reason: `the target has enabled subscriptions: ${names}. Apply mode commits every shadowed write on the target, so a replicated target would get each write twice; use --shadow-mode rollback`,
      };
    }
    return { ok: true };
  } catch (e) {
    // Fail closed: without the check, apply mode does not start.
    return { ok: false, reason: `could not check the target for replication: ${(e as Error).message}` };
  } finally {
    await c?.end().catch(() => {});
  }
}
