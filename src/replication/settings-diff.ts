/**
 * pg_settings comparison for gate 1. Differences fall in three groups: expected (instance paths,
 * version numbers, replication plumbing: the allow-list), version defaults (a setting left at its
 * built-in default on both sides whose default changed between majors, e.g. hash_mem_multiplier
 * 1 → 2 in PostgreSQL 15), and the rest, which an operator must look at. Pure.
 */

export interface SettingRow {
  readonly name: string;
  readonly setting: string;
  /** pg_settings.source: `default`, `configuration file`, `command line`, ... */
  readonly source: string;
}

/** Differences that are expected between two servers of one migration. */
export const DEFAULT_SETTINGS_ALLOW_LIST: readonly string[] = [
  // Where this instance lives.
  'config_file', 'data_directory', 'hba_file', 'ident_file', 'external_pid_file', 'port', 'listen_addresses',
  'unix_socket_directories', 'cluster_name', 'ssl_cert_file', 'ssl_key_file', 'ssl_ca_file', 'ssl_crl_file', 'ssl_crl_dir',
  'log_directory', 'log_filename', 'krb_server_keyfile', 'data_directory_mode',
  // What it is.
  'server_version', 'server_version_num', 'shared_memory_size', 'shared_memory_size_in_huge_pages',
  // Replication plumbing: the source publishes, the target may differ until reverse replication.
  'wal_level', 'max_replication_slots', 'max_wal_senders', 'max_logical_replication_workers', 'max_sync_workers_per_subscription',
  'wal_sender_timeout', 'wal_receiver_timeout', 'rds.logical_replication',
  // Our own session (fencing, our application_name).
  'application_name', 'default_transaction_read_only', 'transaction_read_only',
];

export interface SettingDifference {
  readonly name: string;
  readonly source: string | null;
  readonly target: string | null;
}

export interface SettingsDiff {
  /** Differences to look at. */
  readonly unexpected: readonly SettingDifference[];
  /** On the allow-list. */
  readonly allowed: readonly SettingDifference[];
  /** Built-in default on both sides, and the default changed. */
  readonly versionDefaults: readonly SettingDifference[];
  /** Present on one side only (a setting added or removed between majors, or a platform's own). */
  readonly onlySource: readonly string[];
  readonly onlyTarget: readonly string[];
}

export function diffSettings(source: readonly SettingRow[], target: readonly SettingRow[], allow: Iterable<string> = DEFAULT_SETTINGS_ALLOW_LIST): SettingsDiff {
  const allowed = new Set(allow);
  const s = new Map(source.map((r) => [r.name, r]));
  const t = new Map(target.map((r) => [r.name, r]));
  const out = { unexpected: [] as SettingDifference[], allowed: [] as SettingDifference[], versionDefaults: [] as SettingDifference[] };
  for (const [name, a] of s) {
    const b = t.get(name);
    if (!b || a.setting === b.setting) continue;
    const d = { name, source: a.setting, target: b.setting };
    if (allowed.has(name)) out.allowed.push(d);
    else if (a.source === 'default' && b.source === 'default') out.versionDefaults.push(d);
    else out.unexpected.push(d);
  }
  return {
    ...out,
    onlySource: [...s.keys()].filter((n) => !t.has(n)).sort(),
    onlyTarget: [...t.keys()].filter((n) => !s.has(n)).sort(),
  };
}

export function describeDifferences(ds: readonly SettingDifference[], max = 20): string {
  const shown = ds.slice(0, max).map((d) => `${d.name}: ${d.source ?? '∅'} → ${d.target ?? '∅'}`);
  return shown.join('; ') + (ds.length > max ? `; … ${ds.length - max} more` : '');
}
