/**
 * A client session's backend connections: at most one link per role (source, target), opened on demand or
 * ahead of the first read (prewarm), each connect shared by whoever asks while it runs. A link to the
 * non-writer is opened read-only (DESIGN.md "Fencing"). A backend that refuses this client's role is
 * remembered, so the session keeps its reads on the writer instead of asking again.
 */
import { log } from '../support/log.js';
import { SqlState } from '../protocol/sqlstate.js';
import type { Role } from '../domain/role.js';
import { connectBackend } from '../net/backend-connect.js';
import { BackendLink, type LinkEvents } from './backend-link.js';
import type { BackendLogin } from '../auth/backend-credential.js';
import type { BackendTarget } from '../net/database-url.js';
import type { Router } from './router-glue.js';
import type { ProxyStats } from './stats.js';

export type OpenResult = { ok: true; parameterStatus: Buffer } | { ok: false; sqlstate: string; message: string };

export interface LinksDeps {
  backends: { source: BackendTarget; target: BackendTarget };
  /** The role and credential to log in to both backends with; null: the URL's (one role for every client). */
  login?: BackendLogin | null;
  stats: ProxyStats;
  router: Router;
}

export class SessionLinks {
  source: BackendLink | null = null;
  target: BackendLink | null = null;
  /** A backend that refused this session's role (28xxx), by role: its reads stay on the writer. */
  readonly loginRefused: { source: string | null; target: string | null } = { source: null, target: null };
  /** Connects in progress, so a read and the prewarm never open two links to one backend. */
  private readonly opening: { source: Promise<OpenResult> | null; target: Promise<OpenResult> | null } = { source: null, target: null };

  constructor(
    private readonly sessionId: number,
    private readonly deps: LinksDeps,
    private readonly startupParams: Record<string, string>,
    private readonly events: LinkEvents,
    /** The session has closed: a link that connects now is closed at once. */
    private readonly closed: () => boolean,
  ) {}

  /** Opens the link to `role` (or joins the connect in progress); the link is in place when it resolves ok. */
  open(role: Role): Promise<OpenResult> {
    const busy = this.opening[role];
    if (busy !== null) return busy;
    const p = this.connect(role).finally(() => {
      this.opening[role] = null;
    });
    this.opening[role] = p;
    return p;
  }

  /** The target link opens now if the state splits reads and it is neither open nor opening. */
  prewarm(): void {
    const p = this.deps.router.policy();
    if (p.writesTo !== 'source' || p.readPercent <= 0) return;
    if (this.target === null && this.opening.target === null) void this.open('target');
  }

  /** The link that owes replies or holds a transaction: everything goes there until it is idle again. */
  busy(): BackendLink | null {
    const s = this.source;
    if (s !== null && !s.idle) return s;
    const t = this.target;
    if (t !== null && !t.idle) return t;
    return null;
  }

  /** Forgets `link` if it is still the session's link for its role (it was lost or replaced). */
  drop(link: BackendLink): void {
    if (this[link.role] === link) this[link.role] = null;
  }

  all(): BackendLink[] {
    const out: BackendLink[] = [];
    if (this.source !== null) out.push(this.source);
    if (this.target !== null) out.push(this.target);
    return out;
  }

  private async connect(role: Role): Promise<OpenResult> {
    const target = this.deps.backends[role];
    // Links to the non-writer are opened read-only (DESIGN.md "Fencing"): a write that reaches one anyway
    // meets PostgreSQL's own 25006. As a startup parameter it is also the value RESET and DISCARD ALL restore.
    const readOnly = role !== this.deps.router.policy().writesTo;
    const params = readOnly ? { ...this.startupParams, default_transaction_read_only: 'on' } : this.startupParams;
    const r = await connectBackend(target, params, { login: this.deps.login });
    if (this.closed()) {
      if (r.ok) r.value.socket.destroy();
      return { ok: false, sqlstate: SqlState.ConnectionFailure, message: 'session closed' };
    }
    if (!r.ok) {
      if (r.error.sqlstate.startsWith('28')) {
        // This client's role cannot log in there (missing, another secret): a fact about the role, not a
        // backend fault, so no breaker or backoff for everyone; this session keeps its reads on the writer.
        this.loginRefused[role] = r.error.message;
        log.warn({ session: this.sessionId, backend: role, user: this.deps.login?.user ?? target.user, err: r.error.message }, 'backend refused the client role');
        return { ok: false, sqlstate: r.error.sqlstate, message: r.error.message };
      }
      this.deps.stats.connectFailures[role]++;
      this.deps.router.backendFailed(role);
      log.warn({ session: this.sessionId, backend: role, code: r.error.sqlstate, err: r.error.message }, 'backend connect failed');
      // The client gets the server's own refusal (28P01, 3D000...) but never a backend's address.
      const message = r.error.sqlstate.startsWith('08') ? `could not connect to the ${role} database server` : r.error.message;
      return { ok: false, sqlstate: r.error.sqlstate, message };
    }
    const b = r.value;
    this[role] = new BackendLink(role, target, b.socket, b.pid, b.secret, this.events, readOnly);
    return { ok: true, parameterStatus: b.parameterStatus };
  }
}
