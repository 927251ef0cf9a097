/**
 * Failed-login throttling per client address, a pure decision with an injected clock (PostgreSQL's
 * auth_delay extension delays each failure; fail2ban-style blocking refuses an address for a while):
 * - every password failure is answered after a delay that doubles with the address's recent failures
 *   (50 ms, 100 ms, ... up to `maxDelayMs`), so guessing in a loop gets slow;
 * - `maxFailures` failures within `blockMs` block the address for `blockMs`: its new connections are refused
 *   before any password is checked, so a block also stops the guessing done in parallel.
 * Memory is bounded: at most MAX_ADDRESSES addresses are remembered (oldest forgotten first).
 */
export interface ThrottleConfig {
  /** Failures within blockMs that block an address; 0: never block. */
  maxFailures: number;
  blockMs: number;
  /** Cap of the per-failure delay; 0: no delay. */
  maxDelayMs: number;
}

const FIRST_DELAY_MS = 50;
const MAX_ADDRESSES = 10_000;
/** At most one warn line per address per this period (the rest are counted into the next line). */
const LOG_EVERY_MS = 10_000;

interface AddressRecord {
  windowStart: number;
  failures: number;
  blockedUntil: number;
  loggedAt: number;
  unlogged: number;
}

export interface FailureVerdict {
  /** Wait this long before answering the failed login. */
  delayMs: number;
  /** This failure started a block. */
  blocked: boolean;
  /** Write a warn line now, reporting `failures` in the window and `suppressed` lines skipped since the last. */
  log: { failures: number; suppressed: number } | null;
}

export class LoginThrottle {
  private readonly byAddress = new Map<string, AddressRecord>();

  constructor(
    private readonly cfg: ThrottleConfig,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds the address stays blocked (0: it may try). */
  blockedFor(address: string): number {
    const r = this.byAddress.get(address);
    if (!r) return 0;
    return Math.max(0, r.blockedUntil - this.now());
  }

  failed(address: string): FailureVerdict {
    const now = this.now();
    let r = this.byAddress.get(address);
    if (!r) {
      if (this.byAddress.size >= MAX_ADDRESSES) this.byAddress.delete(this.byAddress.keys().next().value as string);
      r = { windowStart: now, failures: 0, blockedUntil: 0, loggedAt: -Infinity, unlogged: 0 };
      this.byAddress.set(address, r);
    }
    if (now - r.windowStart >= this.cfg.blockMs) {
      r.windowStart = now;
      r.failures = 0;
    }
    r.failures++;
    let blocked = false;
    if (this.cfg.maxFailures > 0 && r.failures >= this.cfg.maxFailures && r.blockedUntil <= now) {
      r.blockedUntil = now + this.cfg.blockMs;
      blocked = true;
    }
    const delayMs = this.cfg.maxDelayMs > 0 ? Math.min(this.cfg.maxDelayMs, FIRST_DELAY_MS * 2 ** Math.min(r.failures - 1, 20)) : 0;
    let log: FailureVerdict['log'] = null;
    if (blocked || now - r.loggedAt >= LOG_EVERY_MS) {
      log = { failures: r.failures, suppressed: r.unlogged };
      r.loggedAt = now;
      r.unlogged = 0;
    } else {
      r.unlogged++;
    }
    return { delayMs, blocked, log };
  }

  /** Addresses remembered (for tests and metrics). */
  get size(): number {
    return this.byAddress.size;
  }
}
