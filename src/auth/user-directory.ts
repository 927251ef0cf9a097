/**
 * The users the proxy admits, as one holder with a `reload()` for SIGHUP: the users file (or
 * PGCUTOVER_USERS) and, optionally, the auth-query lookup on the source for names the file lacks.
 * A reload that fails keeps the users in force and reports why.
 */
import { log } from '../support/log.js';
import type { AuthLookup } from './auth-query.js';
import type { Result } from './result.js';
import { warmScramSecrets } from './scram-secrets.js';
import { passwordKind, type UserEntry } from './users.js';

export class UserDirectory {
  private users: ReadonlyMap<string, UserEntry>;

  constructor(
    private readonly load: () => Result<Map<string, UserEntry>>,
    initial: ReadonlyMap<string, UserEntry>,
    private readonly authLookup: AuthLookup | null = null,
  ) {
    this.users = initial;
    warnMethodLeaks(initial);
  }

  /** Loads and checks the users before the proxy starts. */
  static open(load: () => Result<Map<string, UserEntry>>, authLookup: AuthLookup | null = null): Result<UserDirectory> {
    const r = load();
    if (!r.ok) return r;
    warmScramSecrets(r.value.values());
    return { ok: true, value: new UserDirectory(load, r.value, authLookup) };
  }

  get(name: string): UserEntry | undefined {
    return this.users.get(name);
  }

  get lookup(): ((name: string) => Promise<UserEntry | undefined>) | undefined {
    const l = this.authLookup;
    return l ? (name) => l.lookup(name) : undefined;
  }

  get size(): number {
    return this.users.size;
  }

  /** Re-reads the users; on error the previous list stays. Sessions already logged in are not touched. */
  reload(): Result<number> {
    const r = this.load();
    if (!r.ok) return r;
    warmScramSecrets(r.value.values());
    this.users = r.value;
    this.authLookup?.clear();
    warnMethodLeaks(r.value);
    return { ok: true, value: r.value.size };
  }

  async close(): Promise<void> {
    await this.authLookup?.close();
  }
}

/** md5-hash users are the only ones asked with an md5 challenge: that alone tells a client they exist. */
function warnMethodLeaks(users: ReadonlyMap<string, UserEntry>): void {
  const md5Only = [...users.values()].filter((u) => u.method === 'md5' && u.password !== undefined && passwordKind(u.password) === 'md5-hash');
  if (md5Only.length > 0) {
    log.warn({ users: md5Only.map((u) => u.name) }, 'these users have only an md5 hash: they get an md5 challenge where every other name gets SCRAM, which tells a client they exist; give a SCRAM-SHA-256 verifier instead');
  }
}
