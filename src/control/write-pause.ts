/**
 * The coordinated write pause of DESIGN.md ("Write switchover", step 1; "Rollback procedure", step 3): the
 * sidecar that moves the writer publishes "pausing"; every live sidecar (known by its presence key in Redis)
 * parks new writes, waits for its in-flight write transactions to end, and acknowledges. The database steps
 * start only when every live sidecar has acknowledged; one that cannot in time aborts the move. The release
 * names the snapshot version that routes the writes, and a sidecar releases only once it routes by that
 * version, so a released write never goes to the old writer by a stale state.
 *
 * Decisions are pure functions (`ackVerdict`, `parsePauseMessage`); I/O goes through a `PauseBus` (Redis, or
 * none for a single sidecar) and a `WriteHolder` (the proxy).
 */
import { randomUUID } from 'node:crypto';
import { log } from '../support/log.js';
import { isRole, type Role } from '../domain/role.js';

export type PauseMessage =
  | { readonly kind: 'pause'; readonly id: string; readonly by: string; readonly writer: Role; readonly drainMs: number; readonly maxHoldMs: number }
  | { readonly kind: 'release'; readonly id: string; readonly by: string; readonly to: Role; readonly version: number };

export type AckResult = 'held' | 'failed';

/** Transport between sidecars (src/control/redis-pause-bus.ts). */
export interface PauseBus {
  /** Sidecars alive now (their presence keys), this one included. */
  live(): Promise<string[]>;
  publish(msg: PauseMessage): Promise<void>;
  /** Messages from every sidecar, this one's included; returns unsubscribe. */
  onMessage(cb: (msg: PauseMessage) => void): () => void;
  ack(pauseId: string, sidecarId: string, result: AckResult, detail: string): Promise<void>;
  acks(pauseId: string): Promise<Map<string, { result: AckResult; detail: string }>>;
  close(): Promise<void>;
}

/** What the proxy offers (src/proxy/server.ts). */
export interface WriteHolder {
  holdWritesFor(maxMs: number): void;
  writesDrained(writer: Role, maxMs: number): Promise<number>;
  releaseWrites(): void;
}

export function parsePauseMessage(json: string): PauseMessage | null {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null || typeof v.id !== 'string' || typeof v.by !== 'string') return null;
  const ms = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (v.kind === 'pause' && isRole(v.writer) && ms(v.drainMs) && ms(v.maxHoldMs)) {
    return { kind: 'pause', id: v.id, by: v.by, writer: v.writer, drainMs: v.drainMs, maxHoldMs: v.maxHoldMs };
  }
  if (v.kind === 'release' && isRole(v.to) && Number.isSafeInteger(v.version)) {
    return { kind: 'release', id: v.id, by: v.by, to: v.to, version: v.version as number };
  }
  return null;
}

export type AckVerdict = { readonly kind: 'wait'; readonly missing: readonly string[] } | { readonly kind: 'all-held' } | { readonly kind: 'abort'; readonly reason: string };

/**
 * Pure: have all the sidecars alive at the pause acknowledged? `elapsedMs` against `timeoutMs` decides the abort.
 * `liveNow` (presence keys read during the wait): a sidecar whose presence has expired since the pause began is
 * dead (kill -9, host gone) and is no longer waited for; before, a switchover waited out the full timeout for it
 * and aborted. One that lost only Redis but still runs meets the fence the move sets before it reads the LSN.
 */
export function ackVerdict(
  expected: readonly string[],
  acks: ReadonlyMap<string, { result: AckResult; detail: string }>,
  elapsedMs: number,
  timeoutMs: number,
  liveNow?: readonly string[],
): AckVerdict {
  const failed = expected.filter((id) => acks.get(id)?.result === 'failed');
  if (failed.length > 0) return { kind: 'abort', reason: `sidecar(s) could not hold their writes: ${failed.map((id) => `${id} (${acks.get(id)!.detail})`).join(', ')}` };
  const missing = expected.filter((id) => !acks.has(id) && (liveNow === undefined || liveNow.includes(id)));
  if (missing.length === 0) return { kind: 'all-held' };
  if (elapsedMs >= timeoutMs) return { kind: 'abort', reason: `no acknowledgement within ${timeoutMs} ms from sidecar(s) ${missing.join(', ')}` };
  return { kind: 'wait', missing };
}

/** How often the pause re-reads presence while it waits for acknowledgements. */
const PRESENCE_RECHECK_MS = 250;

export interface WritePauseOptions {
  sidecarId: string;
  holder: WriteHolder;
  /** Null for a sidecar alone (no Redis): the pause is local. */
  bus: PauseBus | null;
  /** The snapshot version this sidecar routes by now, and a way to catch up with the store. */
  version(): number;
  refresh(): Promise<number>;
  /** How long other sidecars may keep writes parked without a release (default 60 s): then they route by their state. */
  maxHoldMs?: number;
}

export interface PauseHandle {
  /** Park writes everywhere and wait until every live sidecar has drained `writer` (rejects: the move must abort). */
  hold(): Promise<{ sidecars: string[] }>;
  /** Release everywhere; others wait until they route by `version` (the snapshot that names the new writer). */
  release(to: Role, version: number): Promise<void>;
}

export class WritePause {
  private readonly unsubscribe: () => void;
  private readonly maxHoldMs: number;
  /** Pauses this sidecar took part in: a release for any other (stale, or missed its pause) is ignored. */
  private readonly joined = new Set<string>();
  /**
   * The pause that parked writes here last. A release of an older one (gate 2's short hold overtaken by a
   * switchover's or a rollback's) leaves the writes parked: they belong to the newer pause now.
   */
  private latest: string | null = null;

  constructor(private readonly o: WritePauseOptions) {
    this.maxHoldMs = o.maxHoldMs ?? 60_000;
    this.unsubscribe = o.bus?.onMessage((m) => void this.onMessage(m)) ?? (() => {});
  }

  /**
   * A coordinated pause of writes on `writer`, each sidecar draining for at most `drainMs` and holding for at
   * most `maxHoldMs` (default: the sidecar's limit) without a release.
   */
  pause(writer: Role, drainMs: number, maxHoldMs = this.maxHoldMs): PauseHandle {
    const id = randomUUID();
    const { bus, holder, sidecarId } = this.o;
    const holdMs = Math.min(maxHoldMs, this.maxHoldMs);
    return {
      hold: async () => {
        this.latest = id;
        holder.holdWritesFor(holdMs);
        if (bus === null) {
          const busy = await holder.writesDrained(writer, drainMs);
          if (busy > 0) throw new Error(`${busy} write transactions still open after ${drainMs} ms`);
          return { sidecars: [sidecarId] };
        }
        const expected = await bus.live();
        if (!expected.includes(sidecarId)) expected.push(sidecarId);
        await bus.publish({ kind: 'pause', id, by: sidecarId, writer, drainMs, maxHoldMs: holdMs });
        // Our own acknowledgement comes through our own message, like everyone else's.
        const started = Date.now();
        const timeoutMs = drainMs + 2000;
        let liveNow: string[] | undefined;
        let checked = started;
        for (;;) {
          if (Date.now() - checked >= PRESENCE_RECHECK_MS) {
            checked = Date.now();
            liveNow = await bus.live().then((l) => [...l, sidecarId], () => liveNow);
          }
          const acks = await bus.acks(id);
          const v = ackVerdict(expected, acks, Date.now() - started, timeoutMs, liveNow);
          if (v.kind === 'all-held') {
            const gone = expected.filter((x) => !acks.has(x));
            if (gone.length > 0) log.warn({ pause: id, gone }, 'write pause: sidecar(s) whose presence expired during the pause are not waited for');
            return { sidecars: expected.filter((x) => acks.has(x)) };
          }
          if (v.kind === 'abort') throw new Error(v.reason);
          await new Promise((r) => setTimeout(r, 10));
        }
      },
      release: async (to, version) => {
        if (bus !== null) {
          try {
            await bus.publish({ kind: 'release', id, by: sidecarId, to, version });
          } catch (e) {
            // The others release at their hold limit and route by their state (the fence guards them).
            log.error({ err: (e as Error).message }, 'could not publish the write release; other sidecars release at their hold limit');
          }
        }
        if (this.latest === id || this.latest === null) {
          this.latest = null;
          holder.releaseWrites();
        }
      },
    };
  }

  private async onMessage(m: PauseMessage): Promise<void> {
    const { holder, bus, sidecarId } = this.o;
    if (m.kind === 'pause') {
      this.joined.add(m.id);
      this.latest = m.id;
      if (this.joined.size > 100) this.joined.delete(this.joined.values().next().value!);
      if (m.by !== sidecarId) holder.holdWritesFor(Math.min(m.maxHoldMs, this.maxHoldMs));
      const busy = await holder.writesDrained(m.writer, m.drainMs);
      const result: AckResult = busy === 0 ? 'held' : 'failed';
      const detail = busy === 0 ? 'drained' : `${busy} write transactions still open after ${m.drainMs} ms`;
      log.info({ pause: m.id, by: m.by, writer: m.writer, result }, 'write pause acknowledged');
      await bus!.ack(m.id, sidecarId, result, detail).catch((e: Error) => log.warn({ err: e.message }, 'could not acknowledge the write pause'));
      return;
    }
    if (m.by === sidecarId || !this.joined.delete(m.id)) return;
    // Release only once we route by the snapshot that names the new writer (at most ~2 s of polling).
    for (let i = 0; i < 40 && this.o.version() < m.version; i++) {
      await this.o.refresh().catch(() => 0);
      if (this.o.version() < m.version) await new Promise((r) => setTimeout(r, 50));
    }
    if (this.latest !== m.id) return;
    this.latest = null;
    if (this.o.version() < m.version) log.warn({ pause: m.id, want: m.version, have: this.o.version() }, 'releasing writes before the new state arrived; they meet the fence');
    holder.releaseWrites();
  }

  close(): void {
    this.unsubscribe();
  }
}
