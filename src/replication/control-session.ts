/**
 * A control session that outlives its connection: the long-running replication runtime keeps one
 * per side and purpose, and a database that goes away (restart, failover, network) must neither
 * crash the sidecar nor leave the probe stuck on a dead socket. Queries run one at a time (a
 * node-postgres client must not be given a second query while one runs); a lost connection is
 * replaced on the next query, with exponential backoff between failed attempts, and until then
 * queries fail at once with the reason, which the heartbeat and monitor report as their error.
 */
import pg from 'pg';
import { log } from '../support/log.js';
import { ControlUnreachable, controlClientConfig, controlError, errorText, type ControlError, type ControlLogin, type Db } from './control-conn.js';
import { isSessionLost, reconnectDelayMs } from './runtime-plan.js';

export interface ControlSessionOptions {
  /** The server's control login (control-server.ts hands it to every session of that server). */
  login: ControlLogin;
  /** application_name suffix, e.g. `heartbeat`. */
  purpose: string;
  /** Side name for logs and errors (`source`, `target`). */
  label: string;
  /** Give up connecting after this. Default 5 s. */
  connectTimeoutMs?: number;
  /**
   * A statement's bound. The server cancels it then (`statement_timeout`, 57014: the session stays); a
   * second later with no answer at all the session is given up (a hung server or network). Default 10 s.
   */
  queryTimeoutMs?: number;
  /** First backoff after a failed connect. Default 500 ms. */
  minBackoffMs?: number;
  /** Backoff cap. Default 15 s. */
  maxBackoffMs?: number;
  /** Runs once on every new connection, before any query (e.g. create the heartbeat table). */
  onConnect?: (db: Db) => Promise<void>;
  now?: () => number;
}

/** Connection states; every query starts from one of these. */
type Conn =
  | { readonly kind: 'down'; readonly failures: number; readonly retryAt: number; readonly error: string | null }
  | { readonly kind: 'up'; readonly client: pg.Client }
  | { readonly kind: 'closed' };

/** A query's answer or its failure, as a value. */
export type QueryOutcome<R> = { readonly ok: true; readonly rows: R[] } | { readonly ok: false; readonly error: ControlError };

export interface ControlSession {
  /** A Db for the replication code. Only `query(text, values)` is implemented (all it uses). */
  readonly db: Db;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Like query, with the failure as a value (never rejects). */
  ask<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<QueryOutcome<R>>;
  connected(): boolean;
  /** Why the last connect or query failed; null after a success. */
  lastError(): string | null;
  /** Ends the connection; queries fail from now on. */
  close(): Promise<void>;
}

export function controlSession(o: ControlSessionOptions): ControlSession {
  const now = o.now ?? Date.now;
  const minMs = o.minBackoffMs ?? 500;
  const maxMs = o.maxBackoffMs ?? 15_000;
  const timeoutMs = o.queryTimeoutMs ?? 10_000;
  let conn: Conn = { kind: 'down', failures: 0, retryAt: 0, error: null };
  let lastError: string | null = null;
  let chain: Promise<unknown> = Promise.resolve();

  const lost = (client: pg.Client, why: string) => {
    if (conn.kind !== 'up' || conn.client !== client) return;
    log.warn({ side: o.label, purpose: o.purpose, err: why }, 'control session lost; reconnecting on next use');
    // The first reconnect is immediate: a dropped session (a restart, a terminated backend) is
    // usually reachable again; backoff starts only once connecting fails.
    conn = { kind: 'down', failures: 0, retryAt: 0, error: why };
    lastError = why;
    client.end().catch(() => undefined);
  };

  const connect = async (failures: number): Promise<pg.Client> => {
    const client = new pg.Client({
      ...controlClientConfig(o.login, { purpose: o.purpose, connectTimeoutMs: o.connectTimeoutMs ?? 5_000, settings: { statement_timeout: String(timeoutMs) } }),
      query_timeout: timeoutMs + 1000,
      keepAlive: true,
    });
    // Without listeners an 'error' from an idle socket would be thrown at the process.
    client.on('error', (err) => lost(client, errorText(err)));
    client.on('end', () => lost(client, 'connection ended'));
    try {
      await client.connect();
      // Redundant with the startup option unless a pooler dropped it (control-conn.ts).
      await client.query('SET default_transaction_read_only = off');
      conn = { kind: 'up', client };
      if (failures > 0) log.info({ side: o.label, purpose: o.purpose, failures }, 'control session reconnected');
    } catch (err) {
      client.end().catch(() => undefined);
      const msg = errorText(err);
      const n = failures + 1;
      conn = { kind: 'down', failures: n, retryAt: now() + reconnectDelayMs(n, minMs, maxMs), error: msg };
      throw new ControlUnreachable(`cannot connect to the ${o.label}: ${msg}`);
    }
    // Setup that fails (e.g. DDL refused) is the caller's problem to report, not a reason to drop
    // a working session: the queries that need it will fail and say why.
    try {
      await o.onConnect?.(client);
    } catch (err) {
      log.warn({ side: o.label, purpose: o.purpose, err: errorText(err) }, 'control session setup failed');
    }
    return client;
  };

  const clientNow = async (): Promise<pg.Client> => {
    switch (conn.kind) {
      case 'up':
        return conn.client;
      case 'down': {
        const wait = conn.retryAt - now();
        if (wait > 0) throw new ControlUnreachable(`${o.label} unreachable (${conn.error ?? 'unknown'}); next attempt in ${wait} ms`);
        return connect(conn.failures);
      }
      case 'closed':
        throw new ControlUnreachable(`${o.label} ${o.purpose} session closed`);
      default: {
        const never: never = conn;
        throw new Error(`unknown session state ${String(never)}`);
      }
    }
  };

  const run = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> => {
    let client: pg.Client | null = null;
    try {
      client = await clientNow();
      const r = await client.query<R>(text, values);
      lastError = null;
      return r;
    } catch (err) {
      lastError = errorText(err);
      if (client && isSessionLost(err)) lost(client, lastError);
      throw err;
    }
  };

  const session: ControlSession = {
    // The replication code types its sessions as node-postgres clients but calls only
    // `query(text, values)`; this facade provides exactly that.
    db: { query: (text: string, values?: unknown[]) => session.query(text, values) } as unknown as Db,
    query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) {
      const p = chain.then(() => run<R>(text, values));
      chain = p.catch(() => undefined);
      return p;
    },
    ask<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<QueryOutcome<R>> {
      return session.query<R>(text, values).then(
        (r) => ({ ok: true as const, rows: r.rows }),
        (err: unknown) => ({ ok: false as const, error: controlError(err) }),
      );
    },
    connected: () => conn.kind === 'up',
    lastError: () => lastError ?? (conn.kind === 'down' ? conn.error : null),
    async close() {
      const c = conn;
      conn = { kind: 'closed' };
      // end() waits for the server to close the socket; a hung one must not hang our shutdown.
      if (c.kind === 'up') await Promise.race([c.client.end().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
    },
  };
  return session;
}
