import { SqlState } from './sqlstate.js';
import { USER_SETTINGS } from './user-settings.js';
/**
 * Which startup parameters a client may pass through the proxy to the backends (issue 14 item 5). A client
 * chooses its session's presentation (encoding, date style, time zone, search_path, application name) and the
 * settings any role may set for itself (user-settings.ts: statement_timeout, lock_timeout…, as PostgreSQL
 * accepts them at login; issue 15), nothing else: `replication` would open a walsender (a client created a
 * logical slot on the source), and default_transaction_read_only at login could switch the non-writer link's
 * read-only default off. Pure, never throws.
 *
 * Answers follow PgBouncer (src/client.c, set_startup_options / ignore_startup_parameters): an unknown
 * parameter is refused with FATAL 08P01 "unsupported startup parameter: NAME" unless the operator lists it in
 * --ignore-startup-parameters, which drops it silently; `options` may carry only `-c` settings of the list.
 * Custom settings (`some.var`, a dotted name) pass as PostgreSQL accepts them (isCustomSetting).
 * An unknown database gets PostgreSQL's own 3D000.
 */

/** Settings a client may choose at login (lower case: GUC names are case-insensitive). */
export const ALLOWED_STARTUP_SETTINGS: ReadonlySet<string> = new Set([
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'intervalstyle',
  'search_path',
  'extra_float_digits',
]);

/**
 * A custom (extension or placeholder) setting: two or more identifiers joined by dots, as PostgreSQL's
 * valid_custom_variable_name requires (guc.c). PostgreSQL accepts any of them at login (postgres.js's
 * `connection: { 'some.var': 'yay' }`). No core setting has a dot, so none of these can switch off the
 * fence's read-only default; one the backend refuses (a superuser-only extension setting) fails that login there.
 */
const CUSTOM_SETTING = /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)+$/;
export const isCustomSetting = (lowerName: string): boolean => CUSTOM_SETTING.test(lowerName);
const allowed = (lowerName: string): boolean => ALLOWED_STARTUP_SETTINGS.has(lowerName) || USER_SETTINGS.has(lowerName) || isCustomSetting(lowerName);

export interface StartupRefusal {
  ok: false;
  sqlstate: typeof SqlState.ProtocolViolation | typeof SqlState.InvalidCatalogName;
  message: string;
}

export type StartupParamsCheck = { ok: true; params: Record<string, string> } | StartupRefusal;

export interface StartupParamsPolicy {
  /** Database names the proxy serves (the backends' own). */
  databases: ReadonlySet<string>;
  /** Lower-case parameter names dropped silently (PgBouncer's ignore_startup_parameters). */
  ignore: ReadonlySet<string>;
}

const unsupported = (name: string, inOptions = false): StartupRefusal => ({
  ok: false,
  sqlstate: SqlState.ProtocolViolation,
  message: `unsupported startup parameter${inOptions ? ' in options' : ''}: ${name}`,
});

/** The parameters to pass on (user excluded), or the refusal. */
export function checkStartupParams(params: Readonly<Record<string, string>>, policy: StartupParamsPolicy): StartupParamsCheck {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    const name = key.toLowerCase();
    if (name === 'user' || key.startsWith('_pq_.')) continue; // user: the proxy's login; _pq_: negotiated away
    if (name === 'database') {
      if (value !== '' && !policy.databases.has(value)) return { ok: false, sqlstate: SqlState.InvalidCatalogName, message: `database "${value}" does not exist` };
      if (value !== '') out.database = value;
      continue;
    }
    if (name === 'replication') {
      if (/^(false|off|no|0)$/i.test(value)) continue;
      return { ok: false, sqlstate: SqlState.ProtocolViolation, message: 'unsupported startup parameter: replication (pg-cutover does not proxy replication connections)' };
    }
    if (name === 'options') {
      const o = checkOptions(value, policy);
      if (!o.ok) return o;
      if (o.options !== '') out.options = o.options;
      continue;
    }
    if (policy.ignore.has(name)) continue; // the operator's list wins, as PgBouncer's does
    if (allowed(name)) out[key] = value;
    else return unsupported(key);
  }
  return { ok: true, params: out };
}

/**
 * `options` as PostgreSQL splits it (pg_split_opts: whitespace separates, backslash escapes the next
 * character), each switch `-c name=value`, `-cname=value` or `--name=value`. Rebuilt from the kept settings.
 */
function checkOptions(value: string, policy: StartupParamsPolicy): { ok: true; options: string } | StartupRefusal {
  const words = splitOptions(value);
  const kept: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    let setting: string | null = null;
    if (w === '-c') setting = words[++i] ?? null;
    else if (w.startsWith('-c')) setting = w.slice(2);
    else if (w.startsWith('--')) setting = w.slice(2);
    if (setting === null || !setting.includes('=')) return unsupported(w, true);
    const eq = setting.indexOf('=');
    const name = setting.slice(0, eq).replace(/-/g, '_').toLowerCase();
    if (policy.ignore.has(name)) continue;
    if (allowed(name)) kept.push(`-c ${escapeOption(`${name}=${setting.slice(eq + 1)}`)}`);
    else return unsupported(name, true);
  }
  return { ok: true, options: kept.join(' ') };
}

function splitOptions(s: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

const escapeOption = (s: string): string => s.replace(/[\\\s]/g, (c) => `\\${c}`);
