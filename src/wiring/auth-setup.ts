/**
 * The sidecar's client-facing login material from StartConfig: the user directory (with the auth query), the
 * clients' TLS certificate, and what SIGHUP reloads (users, certificate, log level). Part of the composition root.
 */
import { log } from '../support/log.js';
import type { StartConfig } from '../config/load.js';
import { loadUsersFile, parseUsersEnv, type UserEntry } from '../auth/users.js';
import { UserDirectory } from '../auth/user-directory.js';
import { createAuthLookup } from '../auth/auth-query.js';
import { TlsHolder } from '../proxy/tls-context.js';
import { backendUrl } from '../net/database-url.js';
import { connectControl } from '../replication/control-conn.js';
import { logLevelFile, type Reloadable } from '../control/reload.js';

/**
 * Client users: --users file, else PGCUTOVER_USERS, else the source URL's own user and password (SCRAM).
 * PGCUTOVER_USERS is also --users' own variable (config schema), so it reaches us as `usersFile`: a value that
 * starts with '{' is the JSON list itself, anything else a path.
 */
export function resolveUsers(cfg: StartConfig, env: NodeJS.ProcessEnv): { ok: true; value: Map<string, UserEntry> } | { ok: false; errors: string[] } {
  if (cfg.usersFile?.trimStart().startsWith('{')) {
    return parseUsersEnv(cfg.usersFile, cfg.usersFile === env.PGCUTOVER_USERS ? 'PGCUTOVER_USERS' : '--users');
  }
  if (cfg.usersFile) return loadUsersFile(cfg.usersFile);
  if (env.PGCUTOVER_USERS) return parseUsersEnv(env.PGCUTOVER_USERS);
  const u = cfg.source;
  if (u.password === undefined) {
    return { ok: true, value: new Map([[u.user, { name: u.user, method: 'trust' }]]) };
  }
  return { ok: true, value: new Map([[u.user, { name: u.user, method: 'scram-sha-256', password: u.password }]]) };
}

export interface AuthSetup {
  readonly users: { readonly value: UserDirectory };
  readonly tlsHolder: TlsHolder | null;
  readonly reloadable: Reloadable[];
}

export function openAuth(cfg: StartConfig, env: NodeJS.ProcessEnv): { ok: true; value: AuthSetup } | { ok: false; errors: string[] } {
  const authLookup = cfg.auth.lookup
    ? createAuthLookup({ query: cfg.auth.query, ttlMs: 10_000, connect: () => connectControl(backendUrl(cfg.control.source), { purpose: 'auth-query' }) })
    : null;
  // Derives SCRAM keys now: a first login must cost the same for every user, known or not.
  const users = UserDirectory.open(() => resolveUsers(cfg, env), authLookup);
  if (!users.ok) return { ok: false, errors: users.errors.map((e) => `--users: ${e}`) };
  let tlsHolder: TlsHolder | null = null;
  if (cfg.tlsFiles) {
    const t = TlsHolder.open(cfg.tlsFiles);
    if (!t.ok) return { ok: false, errors: t.errors.map((e) => `--tls-cert: ${e}`) };
    tlsHolder = t.value;
  }
  const reloadable: Reloadable[] = [];
  if (cfg.logLevelFile) {
    const level = logLevelFile(cfg.logLevelFile, log);
    const first = level.reload();
    if (!first.ok) return { ok: false, errors: first.errors };
    reloadable.push(level);
  }
  // The proxy asks the directory at each login: a reload swaps its list, sessions already in keep going.
  const directory = users.value;
  reloadable.push({
    what: 'users',
    reload: () => {
      const r = directory.reload();
      return r.ok ? { ok: true, value: `${r.value} users` } : r;
    },
  });
  if (tlsHolder) {
    const holder = tlsHolder;
    reloadable.push({
      what: 'tls',
      reload: () => {
        const r = holder.reload();
        return r.ok ? { ok: true, value: `certificate ${cfg.tlsFiles!.certPath}` } : r;
      },
    });
  }
  return { ok: true, value: { users, tlsHolder, reloadable } };
}
