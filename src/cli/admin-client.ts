/**
 * A small client for the sidecar's admin HTTP API (src/control/admin-api.ts), used by the
 * `pg-cutover status|transition|rollback|gate|audit|shadow` commands. Errors are values: every call
 * resolves to either the JSON body or a one-line reason (unreachable, refused with the server's
 * own `reason`/`error`, or a server error); nothing throws. Reply bodies are the server's own types
 * (src/control/admin-dto.ts, imported for types only: nothing loads at run time).
 */
import type { AuditReply, BreakerResetReply, GateReport, HealthReply, MismatchPage, RefusalReply, StateReply, TransitionReply } from '../control/admin-dto.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9187';
/** Environment variables read when the flags are absent (the same ones `pg-cutover start` reads). */
export const ADMIN_URL_ENV = 'PGCUTOVER_ADMIN';
export const ADMIN_TOKEN_ENV = 'PGCUTOVER_ADMIN_TOKEN';

export interface AdminTarget {
  /** `http://host:port` without a trailing slash. */
  readonly baseUrl: string;
  readonly token?: string;
}

/**
 * The admin API to talk to: `--admin`, else $PGCUTOVER_ADMIN, else http://127.0.0.1:9187. A bare
 * `host:port` (what `pg-cutover start --admin` takes) is accepted; a wildcard listen address
 * (0.0.0.0, ::) is reached through loopback.
 */
export function resolveAdminTarget(
  flags: { admin?: string; adminToken?: string },
  env: NodeJS.ProcessEnv,
): { ok: true; value: AdminTarget } | { ok: false; error: string } {
  const raw = (flags.admin ?? env[ADMIN_URL_ENV] ?? DEFAULT_ADMIN_URL).trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { ok: false, error: `--admin: ${JSON.stringify(raw)} is not a URL or host:port` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, error: `--admin: ${JSON.stringify(raw)} must be http:// or https://` };
  }
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  const token = flags.adminToken ?? env[ADMIN_TOKEN_ENV];
  return { ok: true, value: { baseUrl: url.origin + url.pathname.replace(/\/+$/, ''), ...(token ? { token } : {}) } };
}

/** The body of a 4xx from the admin API (transition refusals carry `code` and `guards`). */
export type AdminErrorBody = RefusalReply;

export type AdminResult<T> =
  | { readonly ok: true; readonly status: number; readonly body: T }
  /** HTTP 4xx: the server understood and said no (409 refused transition, 400 bad input, 401 token). */
  | { readonly ok: false; readonly kind: 'refused'; readonly status: number; readonly message: string; readonly body: AdminErrorBody }
  /** HTTP 5xx, or a reply that is not JSON. */
  | { readonly ok: false; readonly kind: 'server-error'; readonly status: number; readonly message: string; readonly body: unknown }
  /** No HTTP reply at all: refused connection, DNS, timeout. */
  | { readonly ok: false; readonly kind: 'unreachable'; readonly message: string };

export interface AdminClient {
  readonly target: AdminTarget;
  healthz(): Promise<AdminResult<HealthReply>>;
  state(): Promise<AdminResult<StateReply>>;
  transition(req: { to: string; reason?: string; force?: boolean }): Promise<AdminResult<TransitionReply>>;
  rollback(req: { reason: string }): Promise<AdminResult<TransitionReply>>;
  /** Close a breaker by hand (the error-rate breaker latches after a trip); `reason` goes to the audit log. */
  resetBreaker(name: string, reason: string): Promise<AdminResult<BreakerResetReply>>;
  gate(n: 1 | 2 | 3): Promise<AdminResult<GateReport>>;
  audit(opts?: { limit?: number }): Promise<AdminResult<AuditReply>>;
  shadowMismatches(opts?: { limit?: number }): Promise<AdminResult<MismatchPage>>;
  /** Any other route (Phase 4 commands: /gates/final, /snapshot, /decommission, /log, /report, /project). */
  request<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<AdminResult<T>>;
  /** The writer the databases recorded (README "Safety"); adopt it now, or clear a dead run's writer lock. */
  writer(action?: { adopt?: { reason: string }; unlock?: { reason: string; holder?: string } }): Promise<AdminResult<Record<string, unknown>>>;
}

export interface AdminClientOptions {
  /** Per request. Default 10000. */
  readonly timeoutMs?: number;
  /** Injected for tests; default the global fetch. */
  readonly fetch?: typeof fetch;
}

export function createAdminClient(target: AdminTarget, opts: AdminClientOptions = {}): AdminClient {
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<AdminResult<T>> {
    const url = target.baseUrl + path;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (target.token) headers.authorization = `Bearer ${target.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    let text: string;
    try {
      res = await doFetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await res.text();
    } catch (e) {
      return { ok: false, kind: 'unreachable', message: `cannot reach the admin API at ${target.baseUrl}: ${networkReason(e, timeoutMs)}` };
    }
    let json: unknown;
    try {
      json = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 120);
      return { ok: false, kind: 'server-error', status: res.status, message: `${method} ${path}: HTTP ${res.status}, not JSON: ${snippet}`, body: text };
    }
    if (res.ok) return { ok: true, status: res.status, body: json as T };
    const eb = (typeof json === 'object' && json !== null ? json : { error: String(json) }) as AdminErrorBody;
    const said = eb.reason ?? eb.error ?? res.statusText;
    if (res.status >= 500) return { ok: false, kind: 'server-error', status: res.status, message: `HTTP ${res.status}: ${said}`, body: json };
    return { ok: false, kind: 'refused', status: res.status, message: said || `HTTP ${res.status}`, body: eb };
  }

  return {
    target,
    healthz: () => call('GET', '/healthz'),
    state: () => call('GET', '/state'),
    transition: (req) => call('POST', '/transition', { to: req.to, reason: req.reason, force: req.force ?? false }),
    rollback: (req) => call('POST', '/rollback', { reason: req.reason }),
    resetBreaker: (name, reason) => call('POST', `/breakers/${encodeURIComponent(name)}/reset`, { reason }),
    // POST runs the gate (GET /gates/:n only reads the last result); the empty object is for the JSON content type.
    gate: (n) => call('POST', `/gates/${encodeURIComponent(String(n))}`, {}),
    audit: (o = {}) => call('GET', o.limit === undefined ? '/audit' : `/audit?limit=${o.limit}`),
    writer: (a = {}) =>
      a.adopt ? call('POST', '/writer/adopt', a.adopt) : a.unlock ? call('POST', '/writer/unlock', a.unlock) : call('GET', '/writer'),
    shadowMismatches: (o = {}) => call('GET', o.limit === undefined ? '/shadow/mismatches' : `/shadow/mismatches?limit=${o.limit}`),
    request: (method, path, body) => call(method, path, body),
  };
}

/** One line for a failed fetch: Node's fetch wraps the socket error in `cause`. */
function networkReason(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no reply within ${timeoutMs}ms`;
  const code = err?.cause?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is `pg-cutover start` running there? set --admin or $PGCUTOVER_ADMIN)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    default:
      return err?.cause?.message ?? err?.message ?? String(e);
  }
}
