/**
 * `pg-cutover demo --walkthrough`: the whole cutover on the embedded pair under a TPC-B-like load through the
 * proxy, without --force anywhere. Run 1 walks gate 1 → replication caught up → gate 2 → 10% → 50% → 100% →
 * SHADOW_WRITES → gate 3 → WRITES_TO_AURORA → SOURCE_READ_ONLY → CUTOVER_COMPLETE, printing each gate's
 * measured values and the live split. Run 2 cuts the application path to the target: the error-rate breaker
 * trips, the rollback runs by itself, forward replication is PAUSED; the operator resumes it and walks
 * forward again (gate 2, READS_10PCT_AURORA). Then the zero-loss check. Every step goes through the
 * `pg-cutover` commands and the admin API an operator uses.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_CONTROL_CONFIG, scaleControlConfig } from '../domain/control-config.js';
import { formatDuration } from '../domain/duration.js';
import type { CutoverState } from '../domain/states.js';
import { startPair, stopPair, type DemoPair } from './pair.js';
import type { EmbeddedPg } from './embedded.js';
import { startRelay, type Relay } from './relay.js';
import { createTpcb, startLoad, type Load } from './load.js';
import { fetchP99, fetchSplit, formatSplit, splitSince, type OperatorFactory, type Split } from './walk-io.js';
import { zeroLossCheck, type ZeroLossReport } from './zero-loss.js';
import { faultRun, type FaultOutcome } from './walk-fault.js';

export interface WalkOptions {
  scale: number;
  listen: string;
  admin: string;
  /** --time-scale; default 0.00005 (a day is 4.3 s, the whole walk about two minutes). */
  timeScale: string;
  /** Write transactions and reads per second of the built-in load. */
  tps: number;
  rps: number;
  /** More sidecar options (config schema keys), e.g. gate 3's latency bounds. */
  sidecar?: Record<string, string>;
  say: (m: string) => void;
}

export interface WalkResult {
  readonly ok: boolean;
  /** Cutover states reached, in order. */
  readonly states: CutoverState[];
  /** Replication states seen. */
  readonly replicationStates: string[];
  readonly gates: { gate: string; passed: boolean }[];
  readonly fault: FaultOutcome | null;
  readonly zeroLoss: ZeroLossReport | null;
  readonly load: { acked: number; inDoubt: number; reads: number; errors: Record<string, number> };
  readonly failure?: string;
  readonly seconds: number;
}

export const WALK_TIME_SCALE = '0.00005';

const FORWARD: CutoverState[] = ['READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES', 'WRITES_TO_AURORA', 'SOURCE_READ_ONLY', 'CUTOVER_COMPLETE'];

class WalkFailed extends Error {}

/** `operator` gives the `pg-cutover` commands and the admin API client (src/cli/walk-tools.ts). */
export async function runWalkthrough(o: WalkOptions, operator: OperatorFactory): Promise<WalkResult> {
  for (const [name, v] of [['--tps', o.tps], ['--rps', o.rps], ['--time-scale', Number(o.timeScale)]] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${name} must be a number above 0, got ${name === '--time-scale' ? JSON.stringify(o.timeScale) : v}`);
  }
  if (!Number.isInteger(o.scale) || o.scale < 0) throw new RangeError(`--scale must be a whole number, got ${o.scale}`);
  const started = Date.now();
  const say = o.say;
  let parts: Partial<DemoPair> & { servers?: EmbeddedPg[] } = {};
  let relay: Relay | null = null;
  let load: Load | null = null;
  const states: CutoverState[] = ['SOURCE_PRIMARY'];
  const replicationStates: string[] = [];
  const gates: { gate: string; passed: boolean }[] = [];
  let fault: FaultOutcome | null = null;
  let zeroLoss: ZeroLossReport | null = null;
  let failure: string | undefined;
  const scale = Number(o.timeScale);
  const control = scaleControlConfig(DEFAULT_CONTROL_CONFIG, scale);
  try {
    const pair = await startPair(
      {
        scale: o.scale,
        listen: o.listen,
        admin: o.admin,
        timeScale: o.timeScale,
        say,
        prepare: (c, side) => createTpcb(c, side === 'source'),
        targetAppPort: async (port) => (relay = await startRelay(port)).port,
        ...(o.sidecar ? { sidecar: o.sidecar } : {}),
      },
      (p) => void (parts = p),
    );
    const { cli, api } = operator(pair.adminUrl, say);
    say(`\nproxy ${pair.proxyUrl}\nadmin ${pair.adminUrl}\ntime scale ${o.timeScale}: a day of stage guard is ${formatDuration(86_400_000 * scale)}\n`);

    let lastSplit: Split | null = null;
    let lastAcked = { n: 0, at: Date.now() };
    const showSplit = async (what: string) => {
      const now = await fetchSplit(pair.adminUrl);
      const acked = { n: load?.acked() ?? 0, at: Date.now() };
      const tps = ((acked.n - lastAcked.n) * 1000) / Math.max(1, acked.at - lastAcked.at);
      say(`  live split ${what}: ${formatSplit(splitSince(now, lastSplit))} · acknowledged write transactions ${acked.n} (${tps.toFixed(0)}/s)`);
      lastSplit = now;
      lastAcked = acked;
    };
    const health = async () => {
      const h = await api.healthz();
      return h.ok ? h.body : ((h as { body?: unknown }).body as Record<string, unknown> | undefined) ?? {};
    };
    const replication = async () => ((await health()).replication ?? {}) as { state?: string; since?: { at: string; why: string } | null; lagSeconds?: number | null; lagBytes?: number | null };
    const watchReplication = async (until: (s: string) => boolean, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = await replication();
        if (r.state && replicationStates[replicationStates.length - 1] !== r.state) {
          replicationStates.push(r.state);
          say(`  replication ${r.state}${r.since ? ` since ${r.since.at} (${r.since.why})` : ''}${r.lagBytes != null ? `, lag ${r.lagBytes} bytes` : ''}`);
        }
        if (r.state && until(r.state)) return r;
        if (Date.now() > deadline) throw new WalkFailed(`replication did not reach the expected state within ${timeoutMs} ms (last: ${r.state})`);
        await sleep(100);
      }
    };
    const gate = async (n: 1 | 2 | 3, mustPass: boolean) => {
      const r = await cli(['gate', String(n)]);
      gates.push({ gate: String(n), passed: r.code === 0 });
      if (n === 3 && r.code !== 0 && r.out.split('\n').filter((l) => /\bFAIL\b/.test(l)).every((l) => /p99 \(ms\)/.test(l))) {
        say("  only gate 3's latency bounds failed. They are production objectives (30/20 ms) and this machine's own latency counts: compare the source's p99 above. On a busy machine, set them for the demo (shown in the gate's output): --gate3-read-p99-ms N --gate3-write-p99-ms N");
      }
      if (r.code !== 0 && mustPass) throw new WalkFailed(`gate ${n} failed: this is a product bug or a real difference, and the walkthrough never forces`);
      return r.code === 0;
    };
    const transition = async (to: CutoverState) => {
      const st = await api.state();
      if (!st.ok) throw new WalkFailed(`GET /state: ${st.message}`);
      const from = st.body.state as CutoverState;
      const need = control.cutover.minStableForMs[from];
      const wait = (st.body.since ?? 0) + need - Date.now();
      if (wait > 0) {
        say(`  ${from} must hold for ${formatDuration(DEFAULT_CONTROL_CONFIG.cutover.minStableForMs[from])} × ${o.timeScale} = ${formatDuration(need)}: waiting ${formatDuration(wait)}`);
        await sleep(wait / 2);
        await showSplit(`in ${from}`);
        await sleep(wait / 2 + 50);
      }
      for (let attempt = 1; ; attempt++) {
        const r = await cli(['transition', to, '--reason', 'walkthrough']);
        if (r.code === 0) break;
        // Only a guard still short by a few ms (clock granularity) is worth another try; anything else is a finding.
        if (attempt >= 3 || !/min-stable/.test(r.err) || /no-open-breaker|gate-/.test(r.err)) throw new WalkFailed(`transition to ${to} refused: ${r.err.trim()}`);
        await sleep(500);
      }
      states.push(to);
    };

    say('\n== Run 1: SOURCE_PRIMARY → CUTOVER_COMPLETE, no --force ==\n');
    // Gate 1 checks the pair before any traffic: reachability, settings, round trips, TLS, roles (not a guard).
    if (!(await gate(1, false))) say('  gate 1 guards no transition: its failures are reported, and the walk goes on (its round-trip bounds are for a production network)');
    say(`\nload: TPC-B-like transactions (${o.tps}/s) and point reads (${o.rps}/s) through the proxy, every acknowledged COMMIT in a ledger`);
    load = startLoad({ url: pair.proxyUrl, writers: 4, readers: 2, tps: o.tps, rps: o.rps });
    const l = load;
    await cli(['status']);
    say('\nreplication: the initial copy, then changes (the caught-up window is 1 h × time scale)');
    await watchReplication((s) => s === 'CDC_CAUGHT_UP', 60_000);
    await showSplit('in SOURCE_PRIMARY');
    await gate(2, true);
    for (const to of FORWARD) {
      if (to === 'WRITES_TO_AURORA') {
        const need = 100;
        say(`  gate 3 needs ${need} shadowed write transactions: waiting for the shadow evidence`);
        const deadline = Date.now() + 60_000;
        for (;;) {
          const m = await api.request<{ stats?: { shadowed: number; matched: number; unexplained: number } }>('GET', '/shadow/mismatches?limit=1');
          const s = m.ok ? m.body.stats : undefined;
          if ((s?.shadowed ?? 0) >= need) {
            say(`  shadowed ${s!.shadowed}, matched ${s!.matched}, unexplained mismatches ${s!.unexplained}`);
            break;
          }
          if (Date.now() > deadline) throw new WalkFailed(`only ${s?.shadowed ?? 0} shadowed write transactions after 60 s`);
          await sleep(250);
        }
        await showSplit('in SHADOW_WRITES');
        say(`  for comparison, the source's write p99 through the proxy in this state: ${await fetchP99(pair.adminUrl, 'source', 'write')} ms`);
        await gate(3, true);
      }
      await transition(to);
      await sleep(1000);
      await showSplit(`just after entering ${to}`);
    }
    await cli(['status']);

    say('\n== Run 2: a target fault, the automatic rollback, the resume ==\n');
    fault = await faultRun({ relay: relay!, api, cli, say, pair, replicationStates, states, gate, transition, showSplit });
    if (!fault.ok) throw new WalkFailed(fault.failure ?? 'the fault run failed');

    say('\n== Zero-loss check ==\n');
    await l.stop();
    zeroLoss = await zeroLossCheck({ writer: 'source', sourceUrl: pair.sourceControl, targetUrl: pair.targetControl, subscription: pair.subscription, acked: l.stats.acked });
    sayZeroLoss(say, zeroLoss, l);
    if (!zeroLoss.ok) throw new WalkFailed('the zero-loss check failed');
    const audit = await api.audit({ limit: 1000 });
    const forced = audit.ok ? audit.body.entries.filter((e) => e.forced === true || e.kind === 'deviation').length : -1;
    say(`forced transitions and deviations in the audit log: ${forced}`);
    if (forced !== 0) throw new WalkFailed(`the audit log shows ${forced} forced steps`);
  } catch (e) {
    failure = e instanceof WalkFailed ? e.message : `${(e as Error).stack ?? e}`;
    say(`\nWALKTHROUGH FAILED: ${failure}`);
  } finally {
    await load?.stop().catch(() => undefined);
    await stopPair(parts);
    await (relay as Relay | null)?.close();
  }
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  const ls = load?.stats;
  const result: WalkResult = {
    ok: failure === undefined,
    states,
    replicationStates,
    gates,
    fault,
    zeroLoss,
    load: { acked: ls?.acked.size ?? 0, inDoubt: ls?.inDoubt ?? 0, reads: ls?.reads ?? 0, errors: Object.fromEntries(ls?.errors ?? []) },
    ...(failure ? { failure } : {}),
    seconds,
  };
  say(`\nwalkthrough ${result.ok ? 'PASSED' : 'FAILED'} in ${seconds} s: ${states.join(' → ')}`);
  return result;
}

function sayZeroLoss(say: (m: string) => void, z: ZeroLossReport, l: Load): void {
  say(`writer: ${z.writer}; replica caught up with the writer's flushed WAL: ${z.replicaCaughtUp ? 'yes' : 'NO'}`);
  say(`acknowledged write transactions: ${z.acked} (in doubt, COMMIT unanswered: ${l.stats.inDoubt}); reads: ${l.stats.reads}; client errors: ${JSON.stringify(Object.fromEntries(l.stats.errors))}`);
  for (const s of z.sides) {
    say(`  ${s.side}: ${s.missing} acknowledged missing${s.missingKeys.length ? ` (${s.missingKeys.join(', ')})` : ''}; balances branches/tellers/accounts/history ${s.sums.join(' / ')}`);
  }
  for (const [table, sum] of Object.entries(z.sides[0]!.checksums)) {
    const other = z.sides[1]!.checksums[table];
    say(`  ${table.padEnd(14)} ${sum === other ? 'equal' : 'DIFFERENT'}  source ${sum}${sum === other ? '' : ` / target ${other}`}`);
  }
  say(`zero loss: ${z.lost === 0 ? 'yes' : `NO, ${z.lost} lost`}; balances add up: ${z.balancesAddUp ? 'yes' : 'NO'}; checksums equal: ${z.checksumsEqual ? 'yes' : `NO (${z.differing.join(', ')})`}`);
}
