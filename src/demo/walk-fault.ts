/**
 * The walkthrough's second run: with writes on the target (CUTOVER_COMPLETE), the application path to the
 * target is cut (a relay in front of its port refuses and resets connections; the control plane still
 * reaches it). The error-rate breaker trips on the failing writes, the sidecar rolls back by itself (writes
 * back to the source after reverse replication drained), forward replication is PAUSED; the operator fixes
 * the path, resets the breaker, runs `pg-cutover replicate resume`, gate 2 passes again and the walk goes
 * forward to READS_10PCT_AURORA.
 */
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CutoverState } from '../domain/states.js';
import type { DemoPair } from './pair.js';
import type { Relay } from './relay.js';
import type { AdminApi, CliRun } from './walk-io.js';

export interface FaultOutcome {
  readonly ok: boolean;
  /** From the cut to ROLLBACK, and to SOURCE_PRIMARY (ms). */
  readonly tripMs: number | null;
  readonly rollbackDoneMs: number | null;
  /** The breaker trip the audit log recorded. */
  readonly breaker: string | null;
  /** Forward replication after the rollback: PAUSED with since and why. */
  readonly paused: { state: string; since: string; why: string } | null;
  readonly resumedState: string | null;
  readonly gate2AfterResume: boolean;
  /** Apply errors of the forward subscription after the resume (pg_stat_subscription_stats; a duplicate key would show here). */
  readonly applyErrorsAfterResume: number | null;
  readonly failure?: string;
}

export interface FaultDeps {
  relay: Relay;
  api: AdminApi;
  cli: (args: string[], shown?: string) => Promise<CliRun>;
  say: (m: string) => void;
  pair: DemoPair;
  states: CutoverState[];
  replicationStates: string[];
  gate: (n: 1 | 2 | 3, mustPass: boolean) => Promise<boolean>;
  transition: (to: CutoverState) => Promise<void>;
  showSplit: (what: string) => Promise<void>;
}

/** pg_stat_subscription_stats (PostgreSQL 15): apply and initial-sync errors of the subscription. */
async function applyErrors(url: string, subscription: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ n: string }>('SELECT (apply_error_count + sync_error_count)::text AS n FROM pg_stat_subscription_stats WHERE subname = $1', [subscription]);
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await c.end();
  }
}

type Rep = { state?: string; since?: { at: string; why: string } | null; lagBytes?: number | null };

export async function faultRun(d: FaultDeps): Promise<FaultOutcome> {
  const { api, say } = d;
  let tripMs: number | null = null;
  let rollbackDoneMs: number | null = null;
  let breaker: string | null = null;
  let paused: FaultOutcome['paused'] = null;
  let resumedState: string | null = null;
  let gate2AfterResume = false;
  let applyErrorsAfterResume: number | null = null;
  const out = (failure?: string): FaultOutcome => ({ ok: failure === undefined, tripMs, rollbackDoneMs, breaker, paused, resumedState, gate2AfterResume, applyErrorsAfterResume, ...(failure ? { failure } : {}) });
  const state = async () => {
    const s = await api.state();
    return s.ok ? (s.body.state as CutoverState) : null;
  };
  const replication = async (): Promise<Rep> => {
    const h = await api.healthz();
    const body = (h.ok ? h.body : (h as { body?: Record<string, unknown> }).body) ?? {};
    return (body.replication ?? {}) as Rep;
  };
  const note = (r: Rep) => {
    if (r.state && d.replicationStates[d.replicationStates.length - 1] !== r.state) {
      d.replicationStates.push(r.state);
      say(`  replication ${r.state}${r.since ? ` since ${r.since.at} (${r.since.why})` : ''}`);
    }
  };
  const waitFor = async (what: string, ok: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await ok())) {
      if (Date.now() > deadline) return false;
      await sleep(100);
    }
    return true;
  };

  say('cutting the application path to the target: a relay in front of its port refuses and resets every connection');
  say('(the control plane still reaches the target, so the rollback can drain reverse replication)');
  const cutAt = Date.now();
  d.relay.cut();
  if (!(await waitFor('ROLLBACK', async () => (await state()) !== 'CUTOVER_COMPLETE', 90_000))) return out('the breaker did not trip within 90 s of the cut');
  tripMs = Date.now() - cutAt;
  d.states.push('ROLLBACK');
  const audit = await api.audit({ limit: 200 });
  const trip = audit.ok ? audit.body.entries.find((e) => e.kind === 'breaker' && String(e.by).startsWith('breaker:')) : undefined;
  breaker = trip ? `${trip.by}: ${trip.reason ?? ''}` : null;
  say(`  ${tripMs} ms after the cut: ROLLBACK, started by ${breaker ?? 'an unrecorded trigger'}`);
  if (!(await waitFor('SOURCE_PRIMARY', async () => (await state()) === 'SOURCE_PRIMARY', 90_000))) {
    return out(`the rollback did not reach SOURCE_PRIMARY within 90 s (state ${await state()})`);
  }
  rollbackDoneMs = Date.now() - cutAt;
  d.states.push('SOURCE_PRIMARY');
  say(`  ${rollbackDoneMs} ms after the cut: SOURCE_PRIMARY, writes back on the source`);
  await d.cli(['audit', '--limit', '14']);
  await d.showSplit('after the rollback');
  await waitFor('PAUSED', async () => (note(await replication()), d.replicationStates.at(-1) === 'PAUSED'), 30_000);
  const r = await replication();
  if (r.state !== 'PAUSED') return out(`forward replication is ${r.state} after the rollback, not PAUSED`);
  paused = { state: r.state, since: r.since?.at ?? '?', why: r.since?.why ?? '?' };
  await d.cli(['status']);
  // A forward step now is refused, and the refusal names the command that resumes replication (the lag breaker
  // takes up the pause at its next evaluation, within a second).
  await waitFor('the lag breaker', async () => {
    const h = await api.healthz();
    const breakers = h.ok ? h.body.breakers : [];
    return (breakers ?? []).some((b) => b.name === 'replication-lag' && b.status === 'open');
  }, 10_000);
  await d.cli(['transition', 'READS_10PCT_AURORA', '--reason', 'walkthrough: too early']);

  say('\nthe operator restores the application path, resets the latched breaker and resumes replication');
  d.relay.restore();
  const reset = await api.request('POST', '/breakers/error-rate/reset', {});
  say(`$ curl -X POST ${d.pair.adminUrl}/breakers/error-rate/reset\n    ${reset.ok ? 'reset' : `refused: ${reset.message}`}`);
  const hide = (u: string) => u.replace(/:[^:@/]*@/, ':…@');
  const resumed = await d.cli(
    ['replicate', 'resume', '--source', d.pair.sourceControl, '--target', d.pair.targetControl, '--subscription', d.pair.subscription],
    `replicate resume --source ${hide(d.pair.sourceControl)} --target ${hide(d.pair.targetControl)} --subscription ${d.pair.subscription}`,
  );
  if (resumed.code !== 0) return out(`replicate resume failed: ${resumed.err.trim()}`);
  const caughtUp = await waitFor('CDC_CAUGHT_UP', async () => (note(await replication()), d.replicationStates.at(-1) === 'CDC_CAUGHT_UP'), 60_000);
  resumedState = d.replicationStates.at(-1) ?? null;
  if (!caughtUp) return out(`replication did not catch up after the resume (state ${resumedState})`);
  applyErrorsAfterResume = await applyErrors(d.pair.targetControl, d.pair.subscription);
  say(`  apply errors of ${d.pair.subscription} since it was created: ${applyErrorsAfterResume} (a duplicate key after the resume would count here)`);
  if (applyErrorsAfterResume !== 0) return out(`the forward subscription had ${applyErrorsAfterResume} apply errors`);
  gate2AfterResume = await d.gate(2, true);
  await d.transition('READS_10PCT_AURORA');
  await sleep(1000);
  await d.showSplit('forward again, in READS_10PCT_AURORA');
  return out();
}
