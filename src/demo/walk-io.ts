/**
 * What the walkthrough acts and observes through, as an operator would: the `pg-cutover` commands and the admin
 * API (given by the CLI, which wires them: src/cli/walk-tools.ts; the demo does not import the CLI), and the
 * read/write split measured from the sidecar's /metrics.
 */
import type { HealthReply } from '../control/admin-dto.js';

export interface CliRun {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

type ApiResult<T> = { readonly ok: true; readonly body: T } | { readonly ok: false; readonly message: string };

/** The admin API calls the walkthrough makes (src/cli/admin-client.ts's AdminClient has them). */
export interface AdminApi {
  state(): Promise<ApiResult<{ readonly state: string; readonly since?: number }>>;
  healthz(): Promise<ApiResult<HealthReply>>;
  audit(o?: { limit?: number }): Promise<ApiResult<{ entries: readonly { readonly kind?: string; readonly by?: string; readonly reason?: string; readonly forced?: boolean }[] }>>;
  request<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiResult<T>>;
}

export interface Operator {
  /** Runs `pg-cutover <args>` against the sidecar, printing the command (or `shown`) and its output. */
  cli(args: string[], shown?: string): Promise<CliRun>;
  api: AdminApi;
}

/** Builds the operator's tools for the sidecar at `adminUrl`, printing through `say`. */
export type OperatorFactory = (adminUrl: string, say: (m: string) => void) => Operator;

/** Units per backend and kind in the current cutover state (pgcutover_units_in_state). */
export interface Split {
  readonly source: { read: number; write: number };
  readonly target: { read: number; write: number };
  /** pgcutover_statements_total: counted in every state (states that route everything to one side skip the read/write classification). */
  readonly statements: { source: number; target: number };
}

/** Reads pgcutover_units_in_state out of Prometheus text. */
export function parseSplit(metrics: string): Split {
  const s: Split = { source: { read: 0, write: 0 }, target: { read: 0, write: 0 }, statements: { source: 0, target: 0 } };
  const re = /^pgcutover_units_in_state\{backend="(source|target)",kind="(read|write)"\} (\d+(?:\.\d+)?)$/gm;
  for (const m of metrics.matchAll(re)) s[m[1] as 'source' | 'target'][m[2] as 'read' | 'write'] = Number(m[3]);
  const st = /^pgcutover_statements_total\{backend="(source|target)"\} (\d+(?:\.\d+)?)$/gm;
  for (const m of metrics.matchAll(st)) s.statements[m[1] as 'source' | 'target'] = Number(m[2]);
  return s;
}

/** The difference of two samples (a state change resets the counters: then `now` alone). */
export function splitSince(now: Split, before: Split | null): Split {
  if (!before) return now;
  const d = (a: number, b: number) => a - b;
  const reset = (['source', 'target'] as const).some((b) => now[b].read < before[b].read || now[b].write < before[b].write);
  const statements = { source: d(now.statements.source, before.statements.source), target: d(now.statements.target, before.statements.target) };
  if (reset) return { ...now, statements };
  return {
    source: { read: d(now.source.read, before.source.read), write: d(now.source.write, before.source.write) },
    target: { read: d(now.target.read, before.target.read), write: d(now.target.write, before.target.write) },
    statements,
  };
}

/**
 * "reads 10.2% to the target (51 of 500) · writes: source 212, target 0 · statements: source 1400, target 51".
 * Read/write units are counted only in states that classify statements (up to SHADOW_WRITES); from
 * WRITES_TO_AURORA on (and in SOURCE_PRIMARY) everything goes to one side unclassified: statements show it.
 */
export function formatSplit(s: Split): string {
  const reads = s.source.read + s.target.read;
  const stmts = `statements: source ${s.statements.source}, target ${s.statements.target}`;
  if (reads + s.source.write + s.target.write === 0) return `not classified in this state (one side takes everything) · ${stmts}`;
  const pct = reads === 0 ? 'n/a' : `${((100 * s.target.read) / reads).toFixed(1)}%`;
  return `reads ${pct} to the target (${s.target.read} of ${reads}) · writes: source ${s.source.write}, target ${s.target.write} · ${stmts}`;
}

export async function fetchSplit(adminUrl: string): Promise<Split> {
  const r = await fetch(`${adminUrl}/metrics`);
  return parseSplit(await r.text());
}

/** pgcutover_unit_latency_seconds' p99 for one backend and kind, in ms (null: not measured in this state). */
export async function fetchP99(adminUrl: string, backend: 'source' | 'target', kind: 'read' | 'write'): Promise<number | null> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const m = new RegExp(`^pgcutover_unit_latency_seconds\\{backend="${backend}",kind="${kind}",quantile="0.99"\\} (\\S+)$`, 'm').exec(text);
  const v = m ? Number(m[1]) : Number.NaN;
  return Number.isFinite(v) ? Math.round(v * 100_000) / 100 : null;
}
