/**
 * Gate 1 (DESIGN.md "Gates"): both databases reachable, pg_settings compared with an allow-list,
 * round-trip latency p50/p99 from this host, TLS, and a role audit (superusers, roles that can log
 * in, the application's roles present on the target, pg_hba trust rules where readable).
 */
import { connectControl, errorText, type Db } from './control-conn.js';
import { criterion, gateResult, notJudged, type Criterion, type GateResult } from '../domain/gate-result.js';
import { percentile } from '../domain/percentile.js';
import { fenceProblems, unfenceable } from './fence-catalog.js';
import { compareRoles, roleSnapshot } from './role-parity.js';
import { DEFAULT_SETTINGS_ALLOW_LIST, describeDifferences, diffSettings, type SettingRow } from './settings-diff.js';
import type { Role } from '../domain/role.js';

export interface Gate1Options {
  /** Application roles must have the same pg_authid secret on the target (SCRAM pass-through in use). Default false: reported. */
  sameSecrets?: boolean;
  /** Extra setting names whose difference is expected (added to the default allow-list). */
  allowSettings?: readonly string[];
  /** `SELECT 1` round trips per side. Default 50. */
  latencySamples?: number;
  /** Default 1 ms (DESIGN.md). */
  latencyP50Ms?: number;
  /** Default 5 ms: one scheduling hiccup on a busy host should not fail the gate, ten should. */
  latencyP99Ms?: number;
  /** Our connections must use TLS. Default true. */
  requireTls?: boolean;
  /** Superusers allowed on each side; undefined: reported, not judged. */
  expectedSuperusers?: readonly string[];
  /** Roles allowed to log in on each side; undefined: reported, not judged. */
  expectedLoginRoles?: readonly string[];
  /** The target must be able to publish, for reverse replication after the write switchover. Default true. */
  requireReversePublisher?: boolean;
  connectTimeoutMs?: number;
  /** Application roles the write fence must be able to fence on both sides (README "Safety"); undefined: not judged. */
  appRoles?: readonly string[];
}

interface Side {
  readonly label: Role;
  readonly db: Db | null;
  readonly connectMs: number;
  readonly error: string | null;
}

async function open(url: string, label: Role, timeoutMs: number): Promise<Side> {
  const started = process.hrtime.bigint();
  try {
    const db = await connectControl(url, { purpose: 'gate1', connectTimeoutMs: timeoutMs });
    return { label, db, connectMs: Number(process.hrtime.bigint() - started) / 1e6, error: null };
  } catch (err) {
    return { label, db: null, connectMs: Number(process.hrtime.bigint() - started) / 1e6, error: errorText(err) };
  }
}

/** Round-trip times of `SELECT 1`, in ms. */
export async function roundTrips(db: Db, n: number): Promise<number[]> {
  const out: number[] = [];
  await db.query('SELECT 1'); // warm: the first one pays for plan caching and socket wake-up
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await db.query('SELECT 1');
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

async function settings(db: Db): Promise<SettingRow[]> {
  return (await db.query<SettingRow>('SELECT name, setting, source FROM pg_settings')).rows;
}

async function roles(db: Db) {
  const r = await db.query<{ rolname: string; rolsuper: boolean; rolcanlogin: boolean }>(
    `SELECT rolname, rolsuper, rolcanlogin FROM pg_roles WHERE rolname NOT LIKE 'pg\\_%' ORDER BY rolname`,
  );
  return { superusers: r.rows.filter((x) => x.rolsuper).map((x) => x.rolname), login: r.rows.filter((x) => x.rolcanlogin).map((x) => x.rolname) };
}

/** TLS of our own session, and the server's `ssl` setting. */
async function tls(db: Db): Promise<{ session: boolean; server: string }> {
  const r = await db.query<{ ssl: boolean | null; server: string }>(
    `SELECT (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()) AS ssl, current_setting('ssl') AS server`,
  );
  return { session: r.rows[0]!.ssl === true, server: r.rows[0]!.server };
}

/** pg_hba lines that let TCP clients in without a password; null when pg_hba_file_rules is not readable. */
async function hbaTrust(db: Db): Promise<string[] | null> {
  try {
    const r = await db.query<{ line_number: number; type: string; database: string[]; user_name: string[]; address: string | null }>(
      `SELECT line_number, type, database, user_name, address FROM pg_hba_file_rules WHERE auth_method = 'trust' AND type LIKE 'host%'`,
    );
    return r.rows.map((x) => `line ${x.line_number}: ${x.type} ${x.database.join(',')} ${x.user_name.join(',')} ${x.address ?? ''}`.trim());
  } catch {
    return null; // not a superuser, or a managed service hiding the file (RDS/Aurora)
  }
}

function subset(name: string, got: readonly string[], expected: readonly string[] | undefined): Criterion {
  if (!expected) return criterion(name, got.join(', ') || 'none', 'reported', true);
  const extra = got.filter((x) => !expected.includes(x));
  return criterion(name, got.join(', ') || 'none', `⊆ {${expected.join(', ')}}`, extra.length === 0, extra.length ? `unexpected: ${extra.join(', ')}` : undefined);
}

export async function runGate1(sourceUrl: string, targetUrl: string, opts: Gate1Options = {}): Promise<GateResult> {
  const started = Date.now();
  const timeout = opts.connectTimeoutMs ?? 10_000;
  const [src, tgt] = await Promise.all([open(sourceUrl, 'source', timeout), open(targetUrl, 'target', timeout)]);
  const c: Criterion[] = [];
  try {
    for (const s of [src, tgt]) c.push(criterion(`${s.label} reachable`, s.db ? `${s.connectMs.toFixed(1)} ms` : 'no', 'connects', s.db !== null, s.error ?? undefined));
    if (!src.db || !tgt.db) return gateResult(1, c, started);
    const [sa, ta] = [src.db, tgt.db];

    const diff = diffSettings(await settings(sa), await settings(ta), [...DEFAULT_SETTINGS_ALLOW_LIST, ...(opts.allowSettings ?? [])]);
    const notes = [
      diff.unexpected.length ? `look at: ${describeDifferences(diff.unexpected)}` : '',
      diff.versionDefaults.length ? `version defaults: ${describeDifferences(diff.versionDefaults)}` : '',
      diff.allowed.length ? `expected: ${diff.allowed.map((d) => d.name).join(', ')}` : '',
      diff.onlySource.length ? `only on source: ${diff.onlySource.join(', ')}` : '',
      diff.onlyTarget.length ? `only on target: ${diff.onlyTarget.join(', ')}` : '',
    ].filter(Boolean);
    c.push(criterion('pg_settings differences outside the allow-list', diff.unexpected.length, 0, diff.unexpected.length === 0, notes.join('\n')));

    const n = opts.latencySamples ?? 50;
    for (const s of [src, tgt]) {
      const rt = await roundTrips(s.db!, n);
      const p50 = percentile(rt, 50)!;
      const p99 = percentile(rt, 99)!;
      c.push(criterion(`${s.label} round trip p50 (ms)`, Number(p50.toFixed(3)), opts.latencyP50Ms ?? 1, p50 < (opts.latencyP50Ms ?? 1), `${n} × SELECT 1`));
      c.push(criterion(`${s.label} round trip p99 (ms)`, Number(p99.toFixed(3)), opts.latencyP99Ms ?? 5, p99 < (opts.latencyP99Ms ?? 5)));
    }

    const needTls = opts.requireTls ?? true;
    for (const s of [src, tgt]) {
      const t = await tls(s.db!);
      c.push(criterion(`${s.label} TLS`, t.session ? 'on' : 'off', needTls ? 'on' : 'reported', !needTls || t.session, `server ssl = ${t.server}`));
    }

    const [sr, tr] = [await roles(sa), await roles(ta)];
    for (const [label, r] of [['source', sr], ['target', tr]] as const) {
      c.push(subset(`${label} superusers`, r.superusers, opts.expectedSuperusers));
      c.push(subset(`${label} login roles`, r.login, opts.expectedLoginRoles));
    }
    const missing = sr.login.filter((x) => !tr.login.includes(x));
    c.push(criterion('source login roles missing on the target', missing.length ? missing.join(', ') : 'none', 'none', missing.length === 0,
      missing.length ? 'applications using these roles could not log in after the switch' : undefined));
    c.push(...compareRoles(await roleSnapshot(sa), await roleSnapshot(ta), opts.sameSecrets ?? false));

    for (const s of [src, tgt]) {
      const trust = await hbaTrust(s.db!);
      c.push(trust === null
        ? notJudged(`${s.label} pg_hba trust rules over TCP`, null, 0, 'pg_hba_file_rules not readable here')
        : criterion(`${s.label} pg_hba trust rules over TCP`, trust.length, 0, trust.length === 0, trust.join('; ') || undefined));
    }

    if (opts.appRoles) {
      for (const s of [src, tgt]) {
        const problems = await fenceProblems(s.db!, opts.appRoles);
        c.push(criterion(`${s.label} application roles can be fenced`, problems.length ? `${problems.length} problem(s)` : opts.appRoles.join(', '), 'no superuser, CREATEROLE or control role among them', problems.length === 0, problems.join('\n') || undefined));
        const uncovered = await unfenceable(s.db!, opts.appRoles);
        c.push(criterion(`${s.label} writes the fence cannot cover`, uncovered.length ? `${uncovered.length} found` : 'none', 'none', uncovered.length === 0, uncovered.join('\n') || undefined));
      }
    }

    if (opts.requireReversePublisher ?? true) {
      const wl = (await ta.query<{ v: string }>(`SELECT current_setting('wal_level') AS v`)).rows[0]!.v;
      c.push(criterion('target wal_level (reverse replication after the switch)', wl, 'logical', wl === 'logical'));
    }
    return gateResult(1, c, started);
  } finally {
    await Promise.all([src.db?.end().catch(() => undefined), tgt.db?.end().catch(() => undefined)]);
  }
}
