/**
 * The proxy's own user list: who may log in to the proxy and how (it terminates client
 * authentication itself, like PgBouncer's auth_file). Two input forms:
 * - JSON `{"users":[{"name":"app","password":"...","method":"scram-sha-256"}]}` (file or env PGCUTOVER_USERS);
 * - PgBouncer userlist.txt lines `"user" "password"`, with an optional third field for the method.
 * A password is plaintext, a pg_authid SCRAM verifier (`SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`)
 * or a pg_authid md5 hash (`md5` + md5hex(password + username)), so hashes can be copied from the source;
 * `env:NAME` / `file:PATH` read it from elsewhere. JSON entries may add `backendPassword` (same forms).
 */
import { readFileSync } from 'node:fs';
import { looksLikeMd5Hash } from './md5.js';
import { fail, ok, type Result } from './result.js';
import { looksLikeScramVerifier, parseScramVerifier } from './scram-crypto.js';

export type { Result } from './result.js';

export const AUTH_METHODS = ['scram-sha-256', 'md5', 'trust'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];
/** Method used when an entry names none. */
export const DEFAULT_AUTH_METHOD: AuthMethod = 'scram-sha-256';

export interface UserEntry {
  name: string;
  method: AuthMethod;
  /** Plaintext, SCRAM verifier or md5 hash; not needed for `trust`. */
  password?: string;
  /** Password the proxy logs in to the backends with as this role, when it differs from `password`'s. */
  backendPassword?: string;
  /** Found on the source by --auth-lookup (its password is the source's pg_authid secret). */
  fromDatabase?: boolean;
}

export type PasswordKind = 'plaintext' | 'scram-verifier' | 'md5-hash';

export function passwordKind(password: string): PasswordKind {
  if (looksLikeScramVerifier(password)) return 'scram-verifier';
  if (looksLikeMd5Hash(password)) return 'md5-hash';
  return 'plaintext';
}

function isAuthMethod(m: string): m is AuthMethod {
  return (AUTH_METHODS as readonly string[]).includes(m);
}

interface RawEntry {
  where: string;
  name: unknown;
  password: unknown;
  method: unknown;
  backendPassword?: unknown;
}

/**
 * A secret given by reference rather than inline: `env:NAME` (that environment variable) or `file:PATH`
 * (the file's content, one trailing newline dropped). Anything else is the value itself.
 */
export function resolveSecret(value: string, env: NodeJS.ProcessEnv = process.env): Result<string> {
  if (value.startsWith('env:')) {
    const name = value.slice(4);
    const v = env[name];
    return v === undefined ? fail(`environment variable ${name} is not set`) : ok(v);
  }
  if (value.startsWith('file:')) {
    const path = value.slice(5);
    try {
      return ok(readFileSync(path, 'utf8').replace(/\r?\n$/, ''));
    } catch (e) {
      return fail(`cannot read ${path}: ${(e as Error).message}`);
    }
  }
  return ok(value);
}

/** Check one entry; returns the problems found (empty when it is usable). */
function checkEntry(raw: RawEntry): { entry?: UserEntry; errors: string[] } {
  const errors: string[] = [];
  if (typeof raw.name !== 'string' || raw.name.length === 0) {
    return { errors: [`${raw.where}: user name must be a non-empty string`] };
  }
  const who = `${raw.where} (user "${raw.name}")`;
  let method: AuthMethod = DEFAULT_AUTH_METHOD;
  if (raw.method !== undefined) {
    if (typeof raw.method !== 'string' || !isAuthMethod(raw.method)) {
      errors.push(`${who}: unknown method ${JSON.stringify(raw.method)} (expected one of ${AUTH_METHODS.join(', ')})`);
    } else {
      method = raw.method;
    }
  }
  if (raw.password !== undefined && typeof raw.password !== 'string') {
    errors.push(`${who}: password must be a string`);
    return { errors };
  }
  let password = raw.password as string | undefined;
  if (password !== undefined) {
    const r = resolveSecret(password);
    if (r.ok) password = r.value;
    else errors.push(`${who}: password: ${r.errors.join('; ')}`);
  }
  let backendPassword: string | undefined;
  if (raw.backendPassword !== undefined) {
    const r = typeof raw.backendPassword === 'string' ? resolveSecret(raw.backendPassword) : fail('must be a string');
    if (r.ok) backendPassword = r.value;
    else errors.push(`${who}: backendPassword: ${r.errors.join('; ')}`);
  }
  if (errors.length > 0) return { errors };
  if (method !== 'trust' && (password === undefined || password === '')) {
    return { errors: [`${who}: method ${method} needs a password (plaintext, SCRAM-SHA-256 verifier or md5 hash)`] };
  }
  if (password !== undefined && password !== '') {
    const kind = passwordKind(password);
    if (kind === 'scram-verifier' && !parseScramVerifier(password)) {
      errors.push(`${who}: malformed SCRAM-SHA-256 verifier (expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)`);
    } else if (method === 'scram-sha-256' && kind === 'md5-hash') {
      errors.push(`${who}: method scram-sha-256 cannot use an md5 hash as password; give the plaintext password or a SCRAM-SHA-256 verifier`);
    } else if (method === 'md5' && kind === 'scram-verifier') {
      errors.push(`${who}: method md5 cannot use a SCRAM-SHA-256 verifier as password; give the plaintext password or an md5 hash`);
    }
  }
  if (errors.length > 0) return { errors };
  const entry: UserEntry = { name: raw.name, method };
  if (password !== undefined && password !== '') entry.password = password;
  if (backendPassword !== undefined && backendPassword !== '') entry.backendPassword = backendPassword;
  return { entry, errors };
}

function collect(raws: RawEntry[]): Result<Map<string, UserEntry>> {
  const users = new Map<string, UserEntry>();
  const errors: string[] = [];
  for (const raw of raws) {
    const { entry, errors: problems } = checkEntry(raw);
    errors.push(...problems);
    if (!entry) continue;
    if (users.has(entry.name)) {
      errors.push(`${raw.where}: user "${entry.name}" is listed more than once`);
      continue;
    }
    users.set(entry.name, entry);
  }
  return errors.length > 0 ? { ok: false, errors } : ok(users);
}

/** Parse the JSON form. `source` names the input in messages (a path or an env variable). */
export function parseUsersJson(text: string, source: string): Result<Map<string, UserEntry>> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return fail(`${source}: invalid JSON: ${(e as Error).message}`);
  }
  const list = (doc as { users?: unknown } | null)?.users;
  if (typeof doc !== 'object' || doc === null || !Array.isArray(list)) {
    return fail(`${source}: expected an object {"users": [{"name", "password", "method"}, ...]}`);
  }
  const raws: RawEntry[] = [];
  const errors: string[] = [];
  list.forEach((item: unknown, i: number) => {
    const where = `${source}: users[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      errors.push(`${where}: expected an object with name, password and method`);
      return;
    }
    const o = item as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (!['name', 'password', 'method', 'backendPassword'].includes(key)) errors.push(`${where}: unknown field "${key}"`);
    }
    raws.push({ where, name: o.name, password: o.password, method: o.method, backendPassword: o.backendPassword });
  });
  const r = collect(raws);
  if (errors.length > 0) return { ok: false, errors: [...errors, ...(r.ok ? [] : r.errors)] };
  return r;
}

/**
 * Split one userlist.txt line into its double-quoted fields; `""` inside a field is a literal quote
 * (PgBouncer's auth_file format). Undefined if the line is not a sequence of quoted fields.
 */
function quotedFields(line: string): string[] | undefined {
  const fields: string[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c !== '"') return undefined;
    let value = '';
    i++;
    for (;;) {
      if (i >= line.length) return undefined;
      if (line[i] === '"') {
        if (line[i + 1] === '"') {
          value += '"';
          i += 2;
          continue;
        }
        i++;
        break;
      }
      value += line[i++];
    }
    fields.push(value);
  }
  return fields;
}

/** Parse the PgBouncer userlist.txt form. Blank lines and lines starting with ';' or '#' are comments. */
export function parseUserlist(text: string, source: string): Result<Map<string, UserEntry>> {
  const raws: RawEntry[] = [];
  const errors: string[] = [];
  text.split(/\r?\n/).forEach((rawLine, i) => {
    const line = rawLine.trim();
    if (line === '' || line.startsWith(';') || line.startsWith('#')) return;
    const where = `${source}:${i + 1}`;
    const fields = quotedFields(line);
    if (!fields || fields.length < 2 || fields.length > 3) {
      errors.push(`${where}: expected "user" "password" ["method"], each in double quotes`);
      return;
    }
    raws.push({ where, name: fields[0], password: fields[1], method: fields[2] });
  });
  const r = collect(raws);
  if (errors.length > 0) return { ok: false, errors: [...errors, ...(r.ok ? [] : r.errors)] };
  return r;
}

/** Parse either form: JSON when the text starts with '{', userlist.txt otherwise. */
export function parseUsers(text: string, source: string): Result<Map<string, UserEntry>> {
  return text.trimStart().startsWith('{') ? parseUsersJson(text, source) : parseUserlist(text, source);
}

export function loadUsersFile(path: string): Result<Map<string, UserEntry>> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return fail(`cannot read users file ${path}: ${(e as Error).message}`);
  }
  return parseUsers(text, path);
}

/** The env variable PGCUTOVER_USERS holds the JSON form. */
export function parseUsersEnv(value: string, name = 'PGCUTOVER_USERS'): Result<Map<string, UserEntry>> {
  return parseUsersJson(value, name);
}
