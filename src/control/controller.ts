/**
 * One sidecar's control plane: the shared state store, transitions through the state machine's guards,
 * circuit breakers fed from the proxy's counters, gate results, and the rollback runner. The routing policy
 * the hot path reads is derived from the store's last known snapshot and cached here.
 */
import { log } from '../support/log.js';
import type { ProxyStats } from '../proxy/stats.js';
import type { RoutePolicy } from '../router/route.js';
import { BreakerSet, type BreakerReading, type BreakerTransition } from '../domain/breaker.js';
import type { ControlConfig } from '../domain/control-config.js';
import { decideTransition, effectiveReadPercent, type CutoverSnapshot, type GateStatus, type TransitionContext } from '../domain/cutover-machine.js';
import { STATE_POLICY, type CutoverState } from '../domain/states.js';
import type { StateStore } from './store.js';
import { requestTransition, type TransitionOutcome } from './transition.js';
import { runRollback, type RetryPolicy, type RollbackHooks } from './rollback-runner.js';
import type { WriterLease } from './writer-lease.js';
import type { Role } from '../domain/role.js';
import type { GateReport } from '../domain/gate-result.js';

export interface ControllerDeps {
  store: StateStore;
  config: ControlConfig;
  stats: ProxyStats;
  sidecarId: string;
  runGate(n: 1 | 2 | 3): Promise<GateReport>;
  rollback: RollbackHooks;
  /**
   * The write switchover (SHADOW_WRITES → WRITES_TO_AURORA, DESIGN.md): runs the database steps and calls
   * `commit` at the moment writes may go to the target; the state is published there.
   */
  switchover?(commit: () => Promise<void>): Promise<{ ok: boolean; error?: string; detail?: Record<string, unknown> }>;
  /**
   * ROLLBACK entered from a state whose writes went to the target: hold new writes at once (the source is
   * still fenced until the rollback runner has restored it; it releases them).
   */
  holdWritesForRollback?(): void;
  releaseWrites?(): void;
  /** Backoff of a rollback step blocked by an unreachable database (default 2 s doubling to 30 s). */
  rollbackRetry?: RetryPolicy;
  /**
   * The databases record the target as fenced (src/control/writer-sync.ts's last read): its refusals and the
   * sessions its fence ends are not target faults, so they do not feed the error-rate breaker.
   */
  targetFenced?(): boolean;
  /** The Redis lease of a writer change: a switchover refuses when another holds it; a rollback takes it if it can. */
  lease?: WriterLease;
  /** Rollback step 2's drain bound for open target transactions (default 30 s). */
  rollbackDrainMs?: number;
  /** Every breaker that opened or closed (alerts, the scale hook); the rollback itself is the controller's. */
  onBreaker?(tr: BreakerTransition): void;
  now?: () => number;
  /** Breaker evaluation period (default 1000 ms). */
  tickMs?: number;
}

export type Policy = RoutePolicy & { shadow: boolean; sourceFenced: boolean; state: CutoverState };

export class Controller {
  readonly breakers: BreakerSet;
  readonly gates: { 1?: GateStatus; 2?: GateStatus; 3?: GateStatus } = {};
  private policyCache: Policy;
  private readonly listeners: ((s: CutoverSnapshot, prev: CutoverSnapshot) => void)[] = [];
  private readonly now: () => number;
  private readonly timer: NodeJS.Timeout;
  private last = { targetStatements: 0, targetFaults: 0, sourceStatements: 0, sourceFaults: 0 };
  private snap: CutoverSnapshot;
  /** When this sidecar adopted `snap` (epoch ms): `since` is when the state was entered, wherever that was. */
  private adoptedAt: number;
  private rollbackRunning: Promise<void> | null = null;
  private readonly unsubscribe: () => void;

  constructor(private readonly d: ControllerDeps) {
    this.now = d.now ?? Date.now;
    this.breakers = new BreakerSet({ now: this.now, config: d.config.breakers });
    this.snap = d.store.current();
    this.adoptedAt = this.now();
    this.policyCache = this.derive(this.snap);
    this.unsubscribe = d.store.subscribe((s) => this.applySnapshot(s));
    this.timer = setInterval(() => this.tick(), d.tickMs ?? 1000);
    this.timer.unref();
  }

  /** What the hot path routes by: cached, recomputed on every new snapshot and during the rollback ramp. */
  policy(): Policy {
    return this.policyCache;
  }

  snapshot(): CutoverSnapshot {
    return this.snap;
  }

  /** Epoch ms this sidecar started routing by the current snapshot; minus `since`, how long the change took to reach it. */
  appliedAt(): number {
    return this.adoptedAt;
  }

  onChange(cb: (s: CutoverSnapshot, prev: CutoverSnapshot) => void): void {
    this.listeners.push(cb);
  }

  private derive(s: CutoverSnapshot): Policy {
    const p = STATE_POLICY[s.state];
    const readPercent = s.state === 'ROLLBACK' ? effectiveReadPercent(s, this.now(), this.d.config.cutover.rollbackReadRampMs) : p.readPercent;
    return { state: s.state, readPercent, writesTo: p.writesTo, shadow: p.shadow, sourceFenced: p.sourceFenced };
  }

  private applySnapshot(s: CutoverSnapshot): void {
    const prev = this.snap;
    if (s.version === prev.version && s.state === prev.state) return;
    if (s.state === 'ROLLBACK' && STATE_POLICY[prev.state].writesTo === 'target') this.d.holdWritesForRollback?.();
    if (prev.state === 'ROLLBACK' && s.state !== 'ROLLBACK') this.d.releaseWrites?.();
    this.snap = s;
    this.adoptedAt = this.now();
    this.policyCache = this.derive(s);
    log.info({ from: prev.state, to: s.state, version: s.version, reason: s.reason }, 'cutover state changed');
    for (const l of this.listeners) l(s, prev);
  }

  /** A requested transition, through the state machine's guards and the store's compare-and-set. */
  async transition(req: { to: string; reason?: string; force?: boolean; by: string; event?: 'rollback-complete' }): Promise<TransitionOutcome> {
    const ctx = () => ({ now: this.now(), gates: this.gates, breakers: this.breakers.readings(), config: this.d.config.cutover });
    const cur = this.d.store.current();
    if (cur.state === 'SHADOW_WRITES' && String(req.to).toUpperCase() === 'WRITES_TO_AURORA' && this.d.switchover) {
      return this.switchover(req, ctx);
    }
    const out = await requestTransition(this.d.store, req, ctx);
    if (out.ok) {
      this.applySnapshot(out.next);
      if (out.next.state === 'ROLLBACK') this.startRollbackRunner(out.from, out.next);
    }
    return out;
  }

  /**
   * Sets the state without the state machine (tests, demos, recovery by hand): compare-and-set on the
   * current version, audited as an override. Never used by the admin API, Unleash or breakers.
   */
  async override(state: CutoverState, reason: string, by = 'override'): Promise<boolean> {
    for (let i = 0; i < 5; i++) {
      const cur = this.d.store.current();
      const next: CutoverSnapshot = { state, version: cur.version + 1, since: this.now(), reason, readPercent: STATE_POLICY[state].readPercent };
      const r = await this.d.store.compareAndSet(cur.version, next, { at: this.now(), by, kind: 'override', from: cur.state, to: state, version: next.version, reason });
      if (r.ok) {
        this.applySnapshot(r.snapshot);
        return true;
      }
      if (r.code !== 'version-conflict') return false;
    }
    return false;
  }

  /**
   * SHADOW_WRITES → WRITES_TO_AURORA: the guards are checked first; then the switchover holds writes, fences
   * the source, waits for the target, syncs sequences, starts reverse replication, and commits the new state
   * just before releasing the held writes. A failed step leaves SHADOW_WRITES with writes on the source.
   */
  private async switchover(
    req: { to: string; reason?: string; force?: boolean; by: string },
    ctx: () => TransitionContext,
  ): Promise<TransitionOutcome> {
    const cur = this.d.store.current();
    const dry = decideTransition(cur, req, { ...ctx(), storeDegraded: this.d.store.health().degraded });
    if (!dry.ok) return { ok: false, code: dry.code, reason: dry.reason, current: cur, ...(dry.guards ? { guards: dry.guards } : {}) };
    const lease = (await this.d.lease?.take(this.d.sidecarId, 'switchover')) ?? { ok: true as const, release: async () => undefined };
    if (!lease.ok) return { ok: false, code: 'conflict', reason: `${lease.reason}; nothing was touched`, current: cur };
    let committed: TransitionOutcome | null = null;
    const requestedAt = this.now();
    // Judged again at the commit (breakers, store, a rollback meanwhile), but the gates were fresh when the
    // switchover was requested: its own steps (drain, fence, catch-up) do not age them. At a demo's time scale
    // the freshness window (a day × scale) can be shorter than those steps.
    const commitCtx = (): TransitionContext => {
      const c = ctx();
      return { ...c, config: { ...c.config, gateMaxAgeMs: c.config.gateMaxAgeMs + Math.max(0, c.now - requestedAt) } };
    };
    const res = await this.d.switchover!(async () => {
      committed = await requestTransition(this.d.store, req, commitCtx);
      if (!committed.ok) throw new Error(`state not committed: ${committed.reason}`);
      this.applySnapshot(committed.next);
    }).finally(() => lease.release());
    void this.d.store.appendAudit({ at: this.now(), by: req.by, kind: 'switchover', reason: res.ok ? 'writes moved to the target' : `switchover failed: ${res.error}`, detail: res.detail ?? {} });
    if (res.ok && committed !== null) return committed;
    return { ok: false, code: 'guard-failed', reason: `write switchover failed, writes stay on the source: ${res.error ?? 'unknown'}`, current: this.d.store.current() };
  }

  /** Operator or breaker rollback: the procedure runs here when this sidecar's CAS committed it. */
  rollback(reason: string, by: string): Promise<TransitionOutcome> {
    return this.transition({ to: 'ROLLBACK', reason, by });
  }

  private startRollbackRunner(from: CutoverSnapshot, at: CutoverSnapshot): void {
    if (this.rollbackRunning) return;
    // The lease makes a switchover requested elsewhere meanwhile refuse at once; the rollback never waits for it.
    const lease = this.d.lease?.take(this.d.sidecarId, 'rollback').then(
      (l) => (l.ok ? l.release : (log.warn({ holder: l.holder }, 'rollback runs while another holds the writer lease; the databases\' writer lock decides'), async () => undefined)),
      () => async () => undefined,
    );
    this.rollbackRunning = runRollback({
      from,
      at,
      hooks: this.d.rollback,
      store: this.d.store,
      by: this.d.sidecarId,
      rampMs: this.d.config.cutover.rollbackReadRampMs,
      now: this.now,
      finish: (reason) => this.transition({ to: 'SOURCE_PRIMARY', event: 'rollback-complete', reason, by: 'rollback-runner' }),
      revert: (reason) => this.override(from.state, reason, 'rollback-runner'),
      ...(this.d.rollbackRetry ? { retry: this.d.rollbackRetry } : {}),
      ...(this.d.rollbackDrainMs ? { drainMs: this.d.rollbackDrainMs } : {}),
    })
      .catch((e) => log.error({ err: e }, 'rollback runner failed'))
      .finally(async () => {
        this.rollbackRunning = null;
        await (await lease)?.();
      });
  }

  /** Resolves when a rollback this sidecar runs has finished (tests, shutdown). */
  async rollbackDone(): Promise<void> {
    await this.rollbackRunning;
  }

  async gate(n: 1 | 2 | 3): Promise<GateReport> {
    const r = await this.d.runGate(n);
    this.gates[n] = { passed: r.passed, at: r.at };
    return r;
  }

  /** Feeds the breakers from the proxy's counters and acts on trips. Also advances the rollback read ramp. */
  tick(): void {
    const st = this.d.stats;
    const now = this.now();
    // Reads diverted while the target is backed off are its faults too (ProxyStats.targetDiverted), and so are
    // shadows it failed: in a write-only SHADOW_WRITES workload they are the only target traffic there is.
    const tStmts = st.statements.target + st.connectFailures.target + st.targetDiverted + st.shadowTargetFaults;
    const tFaults = st.backendFaults.target + st.connectFailures.target + st.targetDiverted + st.shadowTargetFaults;
    const sStmts = st.statements.source;
    const sFaults = st.backendFaults.source;
    // During a rollback the target's failures are our own doing (the drain cancels, the fence ends sessions)
    // and the target is being left anyway: they must not latch the breaker that would block the next attempt.
    // Likewise while the databases record the target as fenced (another sidecar's rollback): the fence at work.
    const tNew = this.snap.state === 'ROLLBACK' || this.d.targetFenced?.() === true ? 0 : tFaults - this.last.targetFaults;
    feed(this.breakers, 'target', tStmts - this.last.targetStatements, tNew, now);
    feed(this.breakers, 'source', sStmts - this.last.sourceStatements, sFaults - this.last.sourceFaults, now);
    this.last = { targetStatements: tStmts, targetFaults: tFaults, sourceStatements: sStmts, sourceFaults: sFaults };
    const ev = this.breakers.evaluate(now);
    for (const tr of ev.transitions) {
      log.warn({ breaker: tr.name, to: tr.to, action: tr.action, value: tr.reading.value, threshold: tr.reading.threshold }, 'circuit breaker changed');
      void this.d.store.appendAudit({ at: now, by: `breaker:${tr.name}`, kind: 'breaker', reason: `${tr.name} ${tr.to}`, detail: { reading: { ...tr.reading } } });
      try {
        this.d.onBreaker?.(tr);
      } catch (e) {
        log.error({ err: e, breaker: tr.name }, 'breaker listener threw');
      }
      if (tr.to === 'open' && tr.action === 'rollback' && this.snap.state !== 'ROLLBACK' && this.snap.state !== 'SOURCE_PRIMARY') {
        void this.rollback(`circuit breaker ${tr.name}: ${fmt(tr.reading)}`, `breaker:${tr.name}`).then((o) => {
          if (!o.ok && o.code !== 'already-in-state') log.error({ code: o.code, reason: o.reason }, 'breaker rollback refused');
        });
      }
    }
    if (this.snap.state === 'ROLLBACK') this.policyCache = this.derive(this.snap);
  }

  health(): { degraded: boolean; store: ReturnType<StateStore['health']>; breakers: readonly BreakerReading[] } {
    const store = this.d.store.health();
    return { degraded: store.degraded, store, breakers: this.breakers.readings() };
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.unsubscribe();
    await this.d.store.close();
  }
}

function feed(b: BreakerSet, backend: Role, total: number, faults: number, now: number): void {
  const f = Math.min(Math.max(0, faults), Math.max(0, total));
  for (let i = 0; i < total; i++) b.recordQuery(backend, i < f, now);
}

function fmt(r: BreakerReading): string {
  return `${r.value === null ? 'n/a' : r.value} > ${r.threshold}`;
}
