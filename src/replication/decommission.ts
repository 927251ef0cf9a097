/**
 * Decommission (seed Phase 4), after the final gate passed: every step looks first and acts only when there
 * is something left to do, so a second run (or one after a failure) finishes the job without repeating it.
 * Steps: stop the DMS task or drop the reverse subscription, drop the forward subscription and its slot on
 * the source, drop the publications, drop the heartbeat table, revoke application logins on the source and
 * end their sessions, record the end. The source cluster itself is left for the operator to stop: this tool
 * never deletes a database.
 */
import type { Db } from './control-conn.js';
import { applicationRoleCandidates, terminateSessions } from './fence.js';
import { HEARTBEAT_TABLE } from './heartbeat.js';
import { directionNames, stopReverseReplication, type DirectionNames } from './reverse.js';
import { dropPublication, dropSlot, dropSubscription, publicationExists, slotInfo, subscriptionInfo } from './subscription.js';
import { quoteIdent } from './sql.js';

export const DECOMMISSION_STEPS = [
  'stop-dms-task',
  'drop-reverse-subscription',
  'drop-forward-subscription',
  'drop-publications',
  'drop-heartbeat',
  'revoke-source-logins',
  'record-end',
] as const;
export type DecommissionStep = (typeof DECOMMISSION_STEPS)[number];

export interface PlannedStep {
  readonly step: DecommissionStep;
  /** False: already done (or not applicable), the step is skipped. */
  readonly needed: boolean;
  readonly action: string;
}

export interface StepOutcome {
  readonly step: DecommissionStep;
  readonly ok: boolean;
  readonly skipped: boolean;
  readonly detail: string;
  readonly ms: number;
}

export interface DecommissionContext extends DirectionNames {
  readonly source: Db;
  readonly target: Db;
  /** With AWS DMS: stop the replication task (idempotent on a stopped task). */
  readonly stopDms?: () => Promise<string>;
  /** Configured application roles (--app-roles); login roles found on the source are added. */
  readonly appRoles?: readonly string[];
  /** Already recorded as decommissioned (audit). */
  readonly recorded: boolean;
  readonly record: () => Promise<void>;
  readonly now?: () => number;
}

/**
 * Application logins left on the source: the configured roles and every other non-superuser login role
 * (fence.ts applicationRoleCandidates), never a superuser and never the control login itself.
 */
export async function sourceLogins(c: DecommissionContext): Promise<string[]> {
  const r = await c.source.query<{ rolname: string }>(
    `SELECT rolname FROM pg_roles WHERE rolname = ANY($1::text[]) AND rolcanlogin AND NOT rolsuper AND rolname <> current_user`,
    [[...(c.appRoles ?? [])]],
  );
  return [...new Set([...r.rows.map((x) => x.rolname), ...(await applicationRoleCandidates(c.source))])].sort();
}

async function tableExists(db: Db, name: string): Promise<boolean> {
  const r = await db.query('SELECT 1 FROM pg_class WHERE oid = to_regclass($1)', [`public.${name}`]);
  return (r.rowCount ?? 0) > 0;
}

/** What each step would do now; nothing is changed. */
export async function planDecommission(c: DecommissionContext): Promise<PlannedStep[]> {
  const n = directionNames(c);
  const reverse = await subscriptionInfo(c.source, n.reverseSubscription);
  const reverseSlot = await slotInfo(c.target, n.reverseSubscription);
  const forward = await subscriptionInfo(c.target, n.subscription);
  const forwardSlot = await slotInfo(c.source, forward?.slot ?? n.subscription);
  const pubs = [
    (await publicationExists(c.source, n.publication)) ? `${n.publication} on the source` : null,
    (await publicationExists(c.target, n.reversePublication)) ? `${n.reversePublication} on the target` : null,
  ].filter((x): x is string => x !== null);
  const hb = [(await tableExists(c.source, HEARTBEAT_TABLE)) ? 'source' : null, (await tableExists(c.target, HEARTBEAT_TABLE)) ? 'target' : null].filter(Boolean);
  const roles = await sourceLogins(c);
  return [
    { step: 'stop-dms-task', needed: c.stopDms !== undefined, action: c.stopDms ? 'StopReplicationTask on the DMS task' : 'no DMS task configured' },
    {
      step: 'drop-reverse-subscription',
      needed: reverse !== null || reverseSlot !== null,
      action: reverse || reverseSlot ? `DROP SUBSCRIPTION ${n.reverseSubscription} on the source (its slot on the target)` : 'no reverse subscription',
    },
    {
      step: 'drop-forward-subscription',
      needed: forward !== null || forwardSlot !== null,
      action: forward || forwardSlot ? `DROP SUBSCRIPTION ${n.subscription} on the target, slot ${forward?.slot ?? n.subscription} on the source` : 'no forward subscription or slot',
    },
    { step: 'drop-publications', needed: pubs.length > 0, action: pubs.length ? `DROP PUBLICATION ${pubs.join(', ')}` : 'no publications' },
    { step: 'drop-heartbeat', needed: hb.length > 0, action: hb.length ? `DROP TABLE ${HEARTBEAT_TABLE} on ${hb.join(' and ')}` : 'no heartbeat table' },
    {
      step: 'revoke-source-logins',
      needed: roles.length > 0,
      action: roles.length ? `ALTER ROLE … NOLOGIN on the source for ${roles.join(', ')}; end their sessions` : 'no application login left on the source',
    },
    { step: 'record-end', needed: !c.recorded, action: c.recorded ? 'already recorded' : 'record the end of the migration in the execution log' },
  ];
}

async function runStep(c: DecommissionContext, step: DecommissionStep): Promise<string> {
  const n = directionNames(c);
  switch (step) {
    case 'stop-dms-task':
      return c.stopDms ? c.stopDms() : 'no DMS task';
    case 'drop-reverse-subscription': {
      await stopReverseReplication(c.source, c.target, n);
      const left = await dropSlot(c.target, n.reverseSubscription);
      return `reverse subscription, its slot and publication ${n.reversePublication} dropped${left ? ' (orphan slot dropped on the target)' : ''}`;
    }
    case 'drop-forward-subscription': {
      const sub = await subscriptionInfo(c.target, n.subscription);
      const slot = sub?.slot ?? n.subscription;
      const d = await dropSubscription(c.target, n.subscription);
      const orphan = await dropSlot(c.source, d.orphanSlot ?? slot);
      return `${d.existed ? `subscription ${n.subscription} dropped` : 'no subscription'}; slot ${slot} on the source ${orphan ? 'dropped' : 'gone'}`;
    }
    case 'drop-publications':
      await dropPublication(c.source, n.publication);
      await dropPublication(c.target, n.reversePublication);
      return `publications ${n.publication} (source) and ${n.reversePublication} (target) dropped`;
    case 'drop-heartbeat':
      for (const db of [c.source, c.target]) await db.query(`DROP TABLE IF EXISTS public.${quoteIdent(HEARTBEAT_TABLE)}`);
      return `${HEARTBEAT_TABLE} dropped on both sides`;
    case 'revoke-source-logins': {
      const roles = await sourceLogins(c);
      for (const r of roles) await c.source.query(`ALTER ROLE ${quoteIdent(r)} NOLOGIN`);
      const ended = await terminateSessions(c.source, roles);
      return `${roles.length} role(s) NOLOGIN (${roles.join(', ') || 'none'}), ${ended} session(s) ended`;
    }
    case 'record-end':
      await c.record();
      return 'recorded';
    default: {
      const never: never = step;
      throw new Error(`unknown step ${String(never)}`);
    }
  }
}

/**
 * Runs every needed step in order; stops at the first failure (a later run resumes there). `onStep` sees
 * each outcome as it happens (the audit log).
 */
export async function decommission(c: DecommissionContext, onStep: (o: StepOutcome) => void | Promise<void>): Promise<{ ok: boolean; steps: StepOutcome[] }> {
  const now = c.now ?? Date.now;
  const plan = await planDecommission(c);
  const steps: StepOutcome[] = [];
  for (const p of plan) {
    const t0 = now();
    let o: StepOutcome;
    if (!p.needed) o = { step: p.step, ok: true, skipped: true, detail: p.action, ms: 0 };
    else {
      try {
        o = { step: p.step, ok: true, skipped: false, detail: await runStep(c, p.step), ms: now() - t0 };
      } catch (e) {
        o = { step: p.step, ok: false, skipped: false, detail: (e as Error).message, ms: now() - t0 };
      }
    }
    steps.push(o);
    await onStep(o);
    if (!o.ok) return { ok: false, steps };
  }
  return { ok: true, steps };
}
