import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { START_OPTIONS, type OptionSpec } from './schema.js';
import { parseTableNotes, type TableNote } from '../replication/table-notes.js';
import { parseDatabaseUrl, type BackendTarget } from '../net/database-url.js';
import type { BackendLoginMode } from '../auth/backend-credential.js';
import type { ThrottleConfig } from '../auth/login-throttle.js';
import type { TlsMinVersion, TlsSettings } from '../proxy/tls-context.js';

/** A secret from a file: its content, one trailing newline dropped. */
export function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}
import { parseSnapshotDest } from '../replication/snapshot-dest.js';
import type { Role } from '../domain/role.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface StartConfig {
  source: BackendTarget;
  target: BackendTarget;
  /** The control plane's own (privileged) logins; default the proxy's. */
  control: { source: BackendTarget; target: BackendTarget };
  /** --target-readers: each reader's link (the --target login) and control (the --target-control login). */
  targetReaders: { name: string; link: BackendTarget; control: BackendTarget }[];
  /** Roles the write fence covers: the proxy's backend logins plus --app-roles (README "Safety"). */
  appRoles: string[];
  listen: HostPort;
  admin: HostPort;
  usersFile?: string;
  tls?: { cert: Buffer; key: Buffer };
  /** Paths and settings behind `tls`, for TlsHolder (reloadable). */
  tlsFiles?: TlsSettings;
  requireTls: boolean;
  auth: {
    backendLogin: BackendLoginMode;
    lookup: boolean;
    query: string;
    loginTimeoutMs: number;
    maxPendingLogins: number;
    throttle: ThrottleConfig;
  };
  state: string;
  maxClients: number;
  maxMessageBytes: number;
  maxPreparedBytes: number;
  /** Startup parameters dropped silently (lower case); others outside the allow-list are refused. */
  ignoreStartupParameters: string[];
  connectTimeoutMs: number;
  healthProbeMs: number;
  shutdownTimeoutMs: number;
  readYourWrites: boolean;
  freshnessSampleMs: number;
  maxReadStalenessMs: number;
  readSplit: 'random' | 'session-hash';
  /** Extra functions that write (lower case; a trailing `*` matches a prefix). */
  writeFunctions: string[];
  logLevel: string;
  logLevelFile?: string;
  redis?: string;
  redisPrefix: string;
  sidecarId: string;
  adminToken?: string;
  timeScale: number;
  unleashUrl?: string;
  unleashToken?: string;
  subscription?: string;
  gate2HoldMs: number;
  gate2Exclude: TableNote[];
  gate2Accept: TableNote[];
  gate3MinShadowed: number;
  gate3ReadP99Ms: number;
  gate3WriteP99Ms: number;
  shadow: { samplePct: number; poolSize: number; lagBudgetBytes: number; capMs: number; lockTimeoutMs: number; maskColumns: string[]; mode: 'rollback' | 'apply'; darkReadPct: number };
  dmsTaskArn?: string;
  lagProbe: boolean;
  alertWebhook?: string;
  scaleCommand?: string;
  scaleWebhook?: string;
  aws: { region?: string; endpoint?: string };
  targetClusterId?: string;
  targetInstanceId?: string;
  cloudwatchNamespace?: string;
  cloudwatchIntervalMs: number;
  /** Phase 4 (src/project, final gate, decommission). */
  finish: { snapshotTo?: string; pgBinDir: string; stabilityDays: number; slotAdvanceIntervalMs: number; slotRetentionAlertBytes: number; historyIntervalMs: number };
}

export type Loaded<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export function parseHostPort(v: string): HostPort | null {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(v.trim());
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/**
 * Merges flags over PGCUTOVER_* environment variables over defaults, and validates every option, collecting
 * one clear line per problem instead of stopping at the first.
 */
export function loadStartConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv): Loaded<StartConfig> {
  const errors: string[] = [];
  const raw = new Map<string, string | undefined>();
  for (const o of START_OPTIONS) {
    const f = flags[o.key];
    const v = f !== undefined && f !== null ? String(f) : env[o.env] ?? o.default;
    raw.set(o.key, v);
    if (v === undefined || v === '') {
      if (o.required) errors.push(`--${o.flag} (or ${o.env}) is required: ${o.doc}`);
      continue;
    }
    const problem = validate(o, v);
    if (problem) errors.push(`--${o.flag}: ${problem}`);
  }
  const get = (k: string) => raw.get(k);
  const cto = Number(get('connectTimeoutMs'));
  const parse = (flag: string, role: Role, u: string | undefined): BackendTarget | undefined => {
    if (!u) return undefined;
    const r = parseDatabaseUrl(u, role);
    if (!r.ok) {
      for (const e of r.errors) errors.push(`--${flag}: ${e}`);
      return undefined;
    }
    // --<flag>-password-file: the password kept out of argv (and out of the URL).
    const pwFile = get(flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) + 'PasswordFile');
    if (pwFile) {
      try {
        r.value.password = readSecretFile(pwFile);
      } catch (e) {
        errors.push(`--${flag}-password-file: ${(e as Error).message}`);
      }
    }
    // A connect_timeout in the URL wins over --connect-timeout-ms.
    if (!/[?&]connect_timeout=/.test(u)) r.value.connectTimeoutMs = cto;
    return r.value;
  };
  const source = parse('source', 'source', get('source'));
  const target = parse('target', 'target', get('target'));
  const sourceControl = parse('source-control', 'source', get('sourceControl')) ?? source;
  const targetControl = parse('target-control', 'target', get('targetControl')) ?? target;
  let tls: StartConfig['tls'];
  let tlsFiles: TlsSettings | undefined;
  const cert = get('tlsCert');
  const key = get('tlsKey');
  if ((cert && !key) || (key && !cert)) errors.push('--tls-cert and --tls-key must be given together');
  if (cert && key) {
    try {
      tls = { cert: readFileSync(cert), key: readFileSync(key) };
      tlsFiles = { certPath: cert, keyPath: key, minVersion: get('tlsMinVersion') as TlsMinVersion, ciphers: get('tlsCiphers')! };
    } catch (e) {
      errors.push(`--tls-cert/--tls-key: ${(e as Error).message}`);
    }
  }
  const requireTls = /^(true|1|yes|on)$/i.test(get('requireTls') ?? '');
  if (requireTls && !cert) errors.push('--require-tls needs --tls-cert and --tls-key');
  let adminToken = get('adminToken') || undefined;
  const tokenFile = get('adminTokenFile');
  if (tokenFile) {
    try {
      adminToken = readSecretFile(tokenFile);
      if (adminToken === '') errors.push(`--admin-token-file: ${tokenFile} is empty`);
    } catch (e) {
      errors.push(`--admin-token-file: ${(e as Error).message}`);
    }
  }
  const ts = Number(get('timeScale'));
  if (!(ts > 0 && ts <= 1000)) errors.push(`--time-scale: expected a number above 0, got "${get('timeScale')}"`);
  const listen = parseHostPort(get('listen')!);
  const admin = parseHostPort(get('admin')!);
  if (admin && !/^(127\.|localhost$|::1$)/.test(admin.host) && !adminToken) {
    errors.push(`--admin-token (or PGCUTOVER_ADMIN_TOKEN) is required when --admin listens on a non-loopback address (${admin.host})`);
  }
  if (get('subscription') && get('dmsTaskArn')) errors.push('--subscription and --dms-task-arn are exclusive: the target is fed by one replicator');
  const notes = (key: 'gate2Exclude' | 'gate2Accept', flag: string): TableNote[] => {
    const r = parseTableNotes(get(key));
    errors.push(...r.errors.map((e) => `${flag}: ${e}`));
    return r.notes;
  };
  const gate2Exclude = notes('gate2Exclude', '--gate2-exclude');
  const gate2Accept = notes('gate2Accept', '--gate2-accept');
  const snapTo = get('snapshotTo');
  if (snapTo && !parseSnapshotDest(snapTo)) errors.push(`--snapshot-to: expected s3://bucket/key or a file path, got "${snapTo}"`);
  if (get('targetClusterId') && get('targetInstanceId')) errors.push('--target-cluster-id and --target-instance-id are exclusive');
  const targetReaders: StartConfig['targetReaders'] = [];
  for (const spec of (get('targetReaders') ?? '').split(',').map((x) => x.trim()).filter(Boolean)) {
    const hp = parseHostPort(spec);
    if (hp === null) errors.push(`--target-readers: expected host:port, got "${spec}"`);
    else if (target && targetControl) {
      const name = `${hp.host.includes(':') ? `[${hp.host}]` : hp.host}:${hp.port}`;
      if (targetReaders.some((r) => r.name === name)) errors.push(`--target-readers: ${name} is listed twice`);
      else if (hp.host === target.host && hp.port === target.port) errors.push(`--target-readers: ${name} is --target itself (name its readers)`);
      else targetReaders.push({ name, link: { ...target, host: hp.host, port: hp.port }, control: { ...targetControl, host: hp.host, port: hp.port } });
    }
  }
  if (errors.length > 0 || !source || !target || !sourceControl || !targetControl || !listen || !admin) return { ok: false, errors };
  return {
    ok: true,
    value: {
      source,
      target,
      control: { source: sourceControl, target: targetControl },
      targetReaders,
      appRoles: [...new Set([source.user, target.user, ...get('appRoles')!.split(',').map((r) => r.trim()).filter(Boolean)])],
      listen,
      admin,
      usersFile: get('users'),
      tls,
      tlsFiles,
      requireTls,
      auth: {
        backendLogin: get('backendLogin') as BackendLoginMode,
        lookup: /^(true|1|yes|on)$/i.test(get('authLookup')!),
        query: get('authQuery')!,
        loginTimeoutMs: Number(get('loginTimeoutMs')),
        maxPendingLogins: Number(get('maxPendingLogins')),
        throttle: { maxFailures: Number(get('loginFailuresMax')), blockMs: Number(get('loginBlockMs')), maxDelayMs: Number(get('loginFailureDelayMs')) },
      },
      state: get('state')!.toUpperCase(),
      maxClients: Number(get('maxClients')),
      maxMessageBytes: Number(get('maxMessageBytes')),
      maxPreparedBytes: Number(get('maxPreparedBytes')),
      ignoreStartupParameters: get('ignoreStartupParameters')!.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean),
      connectTimeoutMs: cto,
      healthProbeMs: Number(get('healthProbeMs')),
      shutdownTimeoutMs: Number(get('shutdownTimeoutMs')),
      readYourWrites: /^(true|1|yes|on)$/i.test(get('readYourWrites')!),
      freshnessSampleMs: Number(get('freshnessSampleMs')),
      maxReadStalenessMs: Number(get('maxReadStalenessMs')),
      readSplit: get('readSplit') as StartConfig['readSplit'],
      writeFunctions: (get('writeFunctions') ?? '').split(',').map((f) => f.trim().toLowerCase()).filter((f) => f.length > 0),
      logLevel: get('logLevel')!,
      logLevelFile: get('logLevelFile') || undefined,
      redis: get('redis') || undefined,
      redisPrefix: get('redisPrefix')!,
      sidecarId: get('sidecarId') || `${hostname()}:${process.pid}`,
      adminToken,
      timeScale: Number(get('timeScale')),
      unleashUrl: get('unleashUrl') || undefined,
      unleashToken: get('unleashToken') || undefined,
      subscription: get('subscription') || undefined,
      gate2HoldMs: Number(get('gate2HoldMs')),
      gate2Exclude,
      gate2Accept,
      gate3MinShadowed: Number(get('gate3MinShadowed')),
      gate3ReadP99Ms: Number(get('gate3ReadP99Ms')),
      gate3WriteP99Ms: Number(get('gate3WriteP99Ms')),
      shadow: {
        samplePct: Math.min(100, Number(get('shadowSamplePct'))),
        poolSize: Number(get('shadowPoolSize')),
        lagBudgetBytes: Number(get('shadowLagBudgetBytes')),
        capMs: Number(get('shadowCapMs')),
        lockTimeoutMs: Number(get('shadowLockTimeoutMs')),
        maskColumns: get('shadowMaskColumns')!.split(',').map((c) => c.trim().toLowerCase()).filter(Boolean),
        mode: get('shadowMode') as 'rollback' | 'apply',
        darkReadPct: Math.min(100, Number(get('darkReadPct'))),
      },
      dmsTaskArn: get('dmsTaskArn') || undefined,
      lagProbe: /^(true|1|yes|on)$/i.test(get('lagProbe')!),
      alertWebhook: get('alertWebhook') || undefined,
      scaleCommand: get('scaleCommand') || undefined,
      scaleWebhook: get('scaleWebhook') || undefined,
      aws: { region: get('awsRegion') || undefined, endpoint: get('awsEndpoint') || undefined },
      targetClusterId: get('targetClusterId') || undefined,
      targetInstanceId: get('targetInstanceId') || undefined,
      cloudwatchNamespace: get('cloudwatchNamespace') || undefined,
      cloudwatchIntervalMs: Number(get('cloudwatchIntervalMs')),
      finish: {
        snapshotTo: get('snapshotTo') || undefined,
        pgBinDir: get('pgBinDir')!,
        stabilityDays: Number(get('stabilityDays')),
        slotAdvanceIntervalMs: Number(get('slotAdvanceIntervalMs')),
        slotRetentionAlertBytes: Number(get('slotRetentionAlertBytes')),
        historyIntervalMs: Number(get('historyIntervalMs')),
      },
    },
  };
}

function validate(o: OptionSpec, v: string): string | null {
  switch (o.type) {
    case 'int': {
      if (!/^\d+$/.test(v)) return `expected a whole number, got "${v}"`;
      if (o.min !== undefined && Number(v) < o.min) return `must be at least ${o.min}, got ${v}`;
      return null;
    }
    case 'hostport':
      return parseHostPort(v) ? null : `expected host:port, got "${v}"`;
    case 'enum': {
      const up = o.key === 'state' ? v.toUpperCase() : v;
      return o.choices!.includes(up) ? null : `expected one of ${o.choices!.join(', ')}, got "${v}"`;
    }
    case 'bool':
      return /^(true|false|1|0|yes|no|on|off)$/i.test(v) ? null : `expected true or false, got "${v}"`;
    case 'file':
    case 'url':
    case 'string':
      return null;
    default: {
      const never: never = o.type;
      throw new Error(`unknown option type ${String(never)}`);
    }
  }
}
