/**
 * A client session's backend connections: at most one link per role (source, target) and one per target
 * reader (--target-readers), opened on demand or ahead of the first read (prewarm), each connect shared by
 * whoever asks while it runs. A link to the non-writer, and every reader link, is opened read-only
 * (DESIGN.md "Fencing"). A backend that refuses this client's role is remembered, so the session keeps its
 * reads on the writer instead of asking again.
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
import type { ReaderRouting } from './reader-routing.js';

export type OpenResult = { ok: true; parameterStatus: Buffer } | { ok: false; sqlstate: string; message: string };

export interface LinksDeps {
  /** `readers`: the target's readers, in --target-readers order (same credentials as the target). */
  backends: { source: BackendTarget; target: BackendTarget; readers?: readonly BackendTarget[] };
  /** The role and credential to log in to both backends with; null: the URL's (one role for every client). */
  login?: BackendLogin | null;
  stats: ProxyStats;
  router: Router;
  /** The target readers' choice, when --target-readers names any. */
  readers?: ReaderRouting | null;
}

export class SessionLinks {
  source: BackendLink | null = null;
  target: BackendLink | null = null;
  /** A backend that refused this session's role (28xxx), by role: its reads stay on the writer. */
  readonly loginRefused: { source: string | null; target: string | null } = { source: null, target: null };
  /** Links to the target's readers, by index in --target-readers. */
  readonly readers: (BackendLink | null)[];
  /** Connects in progress, so a read and the prewarm never open two links to one backend. */
  private readonly opening: { source: Promise<OpenResult> | null; target: Promise<OpenResult> | null } = { source: null, target: null };
  private readonly openingReaders: (Promise<OpenResult> | null)[];

  constructor(
    private readonly sessionId: number,
    private readonly deps: LinksDeps,
    private readonly startupParams: Record<string, string>,
    private readonly events: LinkEvents,
    /** The session has closed: a link that connects now is closed at once. */
    private readonly closed: () => boolean,
  ) {
    const n = deps.readers ? (deps.backends.readers?.length ?? 0) : 0;
    this.readers = new Array<BackendLink | null>(n).fill(null);
    this.openingReaders = new Array<Promise<OpenResult> | null>(n).fill(null);
  }

  /** The link to `role`, or to its reader `reader` (>= 0, target only). */
  get(role: Role, reader = -1): BackendLink | null {
    return reader < 0 ? this[role] : (this.readers[reader] ?? null);
  }

  /** Opens the link to `role` or one of its readers (or joins the connect in progress); in place when it resolves ok. */
  open(role: Role, reader = -1): Promise<OpenResult> {
    return reader >= 0
      ? joinOrStart(this.openingReaders, reader, () => this.connectReader(reader))
      : joinOrStart(this.opening, role, () => this.connect(role));
  }

  /** The target link opens now if the state splits reads and it is neither open nor opening. */
  prewarm(): void {
    const p = this.deps.router.policy();
    if (p.readPercent <= 0) return;
    if (p.writesTo === 'source' && this.target === null && this.opening.target === null) void this.open('target');
    for (let i = 0; i < this.readers.length; i++) {
      if (this.readers[i] === null && this.openingReaders[i] === null && this.deps.readers?.usable(i) === true) void this.open('target', i);
    }
  }

  /** The link that owes replies or holds a transaction: everything goes there until it is idle again. */
  busy(): BackendLink | null {
    const s = this.source;
    if (s !== null && !s.idle) return s;
    const t = this.target;
    if (t !== null && !t.idle) return t;
    for (const r of this.readers) if (r !== null && !r.idle) return r;
    return null;
  }

  /** Every link but `link` is idle: an unsolicited message from `link` may go to the client now. */
  othersIdle(link: BackendLink): boolean {
    for (const l of this.all()) if (l !== link && !l.idle) return false;
    return true;
  }

  /** Forgets `link` if it is still the session's link for its role or reader (it was lost or replaced). */
  drop(link: BackendLink): void {
    if (link.reader >= 0) {
      if (this.readers[link.reader] === link) this.readers[link.reader] = null;
    } else if (this[link.role] === link) this[link.role] = null;
  }

  all(): BackendLink[] {
    const out: BackendLink[] = [];
    if (this.source !== null) out.push(this.source);
    if (this.target !== null) out.push(this.target);
    for (const r of this.readers) if (r !== null) out.push(r);
    return out;
  }

  /**
   * A reader link, opened read-only like every link to the non-writer (a hot standby refuses writes anyway).
   * A failure is no client's business: the reader is backed off and the read goes to the target primary.
   */
  private async connectReader(i: number): Promise<OpenResult> {
    const target = this.deps.backends.readers![i];
    const r = await connectBackend(target, { ...this.startupParams, default_transaction_read_only: 'on' }, { login: this.deps.login });
    if (this.closed()) {
      if (r.ok) r.value.socket.destroy();
      return { ok: false, sqlstate: SqlState.ConnectionFailure, message: 'session closed' };
    }
    if (!r.ok) {
      this.deps.stats.readerConnectFailures++;
      this.deps.readers?.failed(i);
      log.warn({ session: this.sessionId, reader: this.deps.readers?.name(i), code: r.error.sqlstate, err: r.error.message }, 'target reader connect failed; reads skip it for a while');
      return { ok: false, sqlstate: r.error.sqlstate, message: r.error.message };
    }
    const b = r.value;
    this.readers[i] = new BackendLink('target', target, b.socket, b.pid, b.secret, this.events, true, i);
    return { ok: true, parameterStatus: b.parameterStatus };
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

/** The connect in progress under `key` in `inFlight`, or a new one from `start`, kept there until it settles. */
function joinOrStart<K extends string | number>(inFlight: Record<K, Promise<OpenResult> | null>, key: K, start: () => Promise<OpenResult>): Promise<OpenResult> {
  const busy = inFlight[key];
  if (busy !== null) return busy;
  const p = start().finally(() => {
    inFlight[key] = null;
  });
  inFlight[key] = p;
  return p;
}
