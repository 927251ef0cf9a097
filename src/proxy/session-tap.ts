/**
 * What a client session reports besides forwarding: the lock-step shadow of a sampled write transaction or
 * dark read (the shadow service sees copies of the frames sent to the source and of its replies; it never
 * sits in the forwarding path), and each unit's latency per backend and kind (gate 3, metrics).
 */
import type { Role } from '../domain/role.js';
import type { RoutePolicy } from '../router/route.js';
import type { SessionStateLog } from '../router/session-state.js';
import type { ShadowTap, TapTransaction } from './shadow-tap.js';
import type { BackendLink } from './backend-link.js';
import type { Frame } from '../protocol/framer.js';
import type { ProxyStats } from './stats.js';

export interface TapDeps {
  /** The shadow-write service while the state shadows writes or samples dark reads, else null. */
  shadower(): ShadowTap | null;
  stats: ProxyStats;
  /** The session's startup parameters and SQL session state, replayed on a shadow connection first. */
  startupParams: Record<string, string>;
  log: SessionStateLog;
  /** The session's named statements (the shadow re-Parses those a sampled unit uses). */
  named: Map<string, { text: string; parse: Buffer }>;
  /** The role the session runs as on the backends when it is its own login (not the URL's): shadows act as it. */
  role: string | null;
}

export class SessionTap {
  /** Lock-step shadow of the write transaction (or dark read) in progress, if it was sampled. */
  private shadow: TapTransaction | null = null;
  /** The shadow in progress is a dark read: it ends with its unit's ReadyForQuery, whatever the status. */
  private shadowIsRead = false;
  /** performance.now() when the unit in flight on each backend was sent (0: none), and whether it wrote. */
  private readonly unitAt = { source: 0, target: 0 };
  private readonly unitWrote = { source: false, target: false };

  constructor(private readonly d: TapDeps) {}

  /** Dark reads are on: a shadow service exists and samples reads (one call, one null check, one compare). */
  darkReadsOn(): boolean {
    const sh = this.d.shadower();
    return sh !== null && sh.darkReadRate > 0;
  }

  /**
   * A routed unit is about to go to `link`: its latency starts when the link owes nothing yet; a write to the
   * writer in SHADOW_WRITES starts a shadow transaction; a read unit sent to an idle source may be sampled
   * for a dark read (not inside a transaction: the target would not see the transaction's own earlier writes,
   * a false mismatch; not in a pinned session, whose reads may use session state the target lacks).
   */
  unitStart(link: BackendLink, policy: RoutePolicy, write: boolean, wasIdle: boolean, pinned: boolean): void {
    if (link.pending === 0) {
      this.unitAt[link.role] = performance.now();
      this.unitWrote[link.role] = write;
    }
    if (this.shadow !== null) return;
    const sh = this.d.shadower();
    if (sh === null) return;
    if (policy.shadow && link.role === policy.writesTo && write) {
      this.shadow = sh.begin(this.prelude, this.d.named, this.d.role);
    } else if (link.role === 'source' && !write && !policy.shadow && wasIdle && sh.darkReadRate > 0 && !pinned) {
      this.shadow = sh.beginRead(this.prelude, this.d.named, this.d.role);
      this.shadowIsRead = this.shadow !== null;
    }
  }

  /** A client frame sent to `role`. */
  clientFrame(role: Role, f: Frame): void {
    if (this.shadow !== null && role === 'source') this.shadow.clientFrame(f.type, f.buf, f.start, f.end);
  }

  /** Reply bytes from `role` on their way to the client. */
  replyData(role: Role, chunk: Buffer): void {
    if (this.shadow !== null && role === 'source') this.shadow.sourceData(chunk);
  }

  /** A ReadyForQuery from `link`: the unit's latency once it owes nothing; the shadow ends with its unit. */
  ready(link: BackendLink): void {
    if (link.pending === 0) {
      const at = this.unitAt[link.role];
      if (at > 0) {
        const h = this.d.stats.latency[link.role];
        (this.unitWrote[link.role] ? h.write : h.read).record(performance.now() - at);
        this.unitAt[link.role] = 0;
      }
    }
    if (this.shadow !== null && link.role === 'source' && (link.idle || (this.shadowIsRead && link.pending === 0))) this.close();
  }

  close(): void {
    this.shadow?.finish();
    this.shadow = null;
    this.shadowIsRead = false;
  }

  /** The session's settings to replay on a shadow connection first; built only for a sampled unit. */
  private readonly prelude = (): string[] => {
    const prelude: string[] = [];
    const sets: string[] = [];
    for (const [k, v] of Object.entries(this.d.startupParams)) {
      if (k === 'database' || k === 'options' || k === 'replication' || k.startsWith('_pq_.')) continue;
      sets.push(`SET "${k.replace(/"/g, '""')}" TO '${v.replace(/'/g, "''")}'`);
    }
    if (sets.length > 0) prelude.push(sets.join('; '));
    for (const sql of this.d.log.entries.values()) prelude.push(sql);
    return prelude;
  };

  describe(): 'dark read' | 'write' | null {
    return this.shadow === null ? null : this.shadowIsRead ? 'dark read' : 'write';
  }
}
