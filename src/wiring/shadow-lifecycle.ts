/**
 * Which shadow service runs for the cutover state in force: one for writes while the state shadows them
 * (SHADOW_WRITES), one for dark reads with --dark-read-pct while reads still go (partly) to the source, none
 * otherwise. Part of the composition root (reads StartConfig).
 */
import type { StartConfig } from '../config/load.js';
import { STATE_POLICY, type CutoverState } from '../domain/states.js';
import type { createClassifier } from '../router/classify.js';
import { Shadower } from '../shadow/shadower.js';
import { DEFAULT_MASK } from '../shadow/results.js';
import type { WalSampler } from '../replication/wal-sampler.js';

export class ShadowLifecycle {
  current: Shadower | null = null;
  /** The last write shadower, kept after SHADOW_WRITES so its mismatches stay readable (gate evidence). */
  lastWrites: Shadower | null = null;

  constructor(
    private readonly cfg: StartConfig,
    private readonly classifier: ReturnType<typeof createClassifier>,
    private readonly wal: WalSampler,
    private readonly onTargetFault: () => void,
  ) {}

  // The shadow service lives while the state shadows writes, or, with --dark-read-pct, while reads still go
  // (partly) to the source: one for writes, another for dark reads, swapped as the state moves.
  follow(state: CutoverState): void {
    const p = STATE_POLICY[state];
    const want: 'writes' | 'reads' | null = p.shadow ? 'writes' : this.cfg.shadow.darkReadPct > 0 && p.readPercent < 100 && p.writesTo === 'source' && state !== 'ROLLBACK' ? 'reads' : null;
    const have = this.current === null ? null : this.current.writes ? 'writes' : 'reads';
    if (want === have) return;
    if (this.current !== null) {
      const old = this.current;
      this.current = null;
      // Its mismatches and statistics stay readable after SHADOW_WRITES (GET /shadow/mismatches, gate evidence).
      if (old.writes) this.lastWrites = old;
      void old.close();
    }
    if (want === null) return;
    this.current = new Shadower({
      source: this.cfg.source,
      target: this.cfg.target,
      control: this.cfg.control,
      classifier: this.classifier,
      wal: this.wal,
      poolSize: this.cfg.shadow.poolSize,
      capMs: this.cfg.shadow.capMs,
      lockTimeoutMs: this.cfg.shadow.lockTimeoutMs,
      mask: { names: new Set(this.cfg.shadow.maskColumns), typeOids: DEFAULT_MASK.typeOids },
      onTargetFault: this.onTargetFault,
      ...(want === 'writes'
        ? { sampleRate: this.cfg.shadow.samplePct / 100, lagBudgetBytes: this.cfg.shadow.lagBudgetBytes, mode: this.cfg.shadow.mode }
        : { writes: false, darkReadRate: this.cfg.shadow.darkReadPct / 100 }),
    });
  }

  async close(): Promise<void> {
    const sh = this.current;
    this.current = null;
    await sh?.close();
  }
}
