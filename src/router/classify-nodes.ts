/**
 * Parse-tree helpers and the readings of the statements that carry session facts: transaction control
 * (BEGIN … READ ONLY/WRITE, COMMIT, PREPARE TRANSACTION) and SET/RESET (read-only switches, the replay key).
 * Used by classify-tree.ts. Pure.
 */
import type { StatementClass, Pin } from './classify.js';

/**
 * Functions that write, take locks, or depend on state only the writer's session has (currval and
 * lastval fail on a backend that did not run nextval). A trailing `*` matches a prefix.
 */
export const DEFAULT_WRITE_FUNCTIONS: readonly string[] = [
  'nextval', 'setval', 'currval', 'lastval',
  'pg_advisory_lock*', 'pg_advisory_xact_lock*', 'pg_try_advisory_*', 'pg_advisory_unlock*',
  'set_config', 'lo_*', 'pg_notify', 'txid_current', 'pg_current_xact_id',
  'pg_backend_pid', 'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_switch_wal', 'pg_logical_emit_message',
  'pg_create_restore_point', 'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot',
  'pg_drop_replication_slot', 'pg_replication_slot_advance', 'pg_stat_reset*',
];


/** GUCs whose value decides whether the session may write (fencing sets them on for app roles). */
export const READ_ONLY_GUCS = new Set(['transaction_read_only', 'default_transaction_read_only']);
/** Text that may turn read-only off, after escapes (`\`, `U&`) are decoded. */
export const READ_ONLY_TEXT = /read_only|read\s+write/i;

export type Json = { [k: string]: unknown };
export const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

export interface Draft {
  cls: StatementClass;
  reason?: string;
  pins?: Pin;
  readOnlyTx?: boolean;
  readWriteTx?: boolean;
  setsReadOnlyOff?: boolean;
  /** The session-state key it sets (SET, RESET, PREPARE, DEALLOCATE, DISCARD ALL: see Classification.sessionKey). */
  key?: string;
  /** Cannot run inside a shadow's transaction, or would end it. */
  unsafe?: boolean;
}

export interface Ctx {
  isWriteFunction(name: string): boolean;
  /** Set when a decision depended on a literal's value. */
  sensitive: boolean;
}

/** Value of an A_Const node (protobuf JSON omits zero values: `ival: {}` is 0); undefined otherwise. */
export function constValue(node: unknown): string | number | boolean | undefined {
  const c = obj(obj(node)?.A_Const);
  if (!c) return undefined;
  if ('sval' in c) return String(obj(c.sval)?.sval ?? '');
  if ('ival' in c) return Number(obj(c.ival)?.ival ?? 0);
  if ('boolval' in c) return obj(c.boolval)?.boolval === true;
  return undefined;
}

/** True only for values PostgreSQL's parse_bool reads as true (on, true, yes and prefixes, 1). */
export function isTrue(v: string | number | boolean | undefined): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v === 1;
  if (typeof v !== 'string' || v.length === 0) return false;
  const s = v.toLowerCase();
  return s === 'on' || s === '1' || 'true'.startsWith(s) || 'yes'.startsWith(s);
}

/** READ ONLY → true, READ WRITE → false, neither → undefined, from BEGIN / SET TRANSACTION options. */
export function readOnlyOption(options: unknown): boolean | undefined {
  for (const o of arr(options)) {
    const d = obj(obj(o)?.DefElem);
    if (d?.defname === 'transaction_read_only') return constValue(d.arg) === 1;
  }
  return undefined;
}

export function markWrite(d: Draft, reason: string): void {
  if (d.cls === 'read') {
    d.cls = 'write';
    d.reason = reason;
  }
}

export function turnsReadOnlyOff(d: Draft, reason: string): void {
  d.setsReadOnlyOff = true;
  d.reason ??= reason;
}

export function transaction(t: Json): Draft {
  const kind = String(t.kind ?? '');
  switch (kind) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START': {
      const ro = readOnlyOption(t.options);
      if (ro === true) return { cls: 'tx-begin', readOnlyTx: true };
      if (ro === false) return { cls: 'tx-begin', readWriteTx: true, setsReadOnlyOff: true };
      return { cls: 'tx-begin' };
    }
    case 'TRANS_STMT_COMMIT':
    case 'TRANS_STMT_ROLLBACK':
      return t.chain === true ? { cls: 'tx-end', reason: 'AND CHAIN starts a new transaction', unsafe: true } : { cls: 'tx-end', unsafe: true };
    case 'TRANS_STMT_COMMIT_PREPARED':
    case 'TRANS_STMT_ROLLBACK_PREPARED':
      return { cls: 'tx-end', reason: 'ends a prepared (two-phase) transaction, which lives on the writer', unsafe: true };
    case 'TRANS_STMT_SAVEPOINT':
    case 'TRANS_STMT_RELEASE':
    case 'TRANS_STMT_ROLLBACK_TO':
      return { cls: 'tx-other' };
    case 'TRANS_STMT_PREPARE':
      return { cls: 'write', reason: 'PREPARE TRANSACTION', unsafe: true };
    default:
      return { cls: 'write', reason: `unknown transaction statement ${kind}` };
  }
}

/**
 * The key a SET or RESET is kept under for replay: `set:<name>` (the parser's name: SET TIME ZONE is
 * `timezone`, quoted names keep their case), `set:*` for RESET ALL; none for what lasts only to the end of the
 * transaction (SET LOCAL, SET TRANSACTION).
 */
function setKey(s: Json): string | undefined {
  if (s.is_local === true) return undefined;
  const raw = String(s.name ?? '');
  switch (s.kind) {
    case 'VAR_RESET_ALL':
      return 'set:*';
    case 'VAR_SET_MULTI':
      return raw.toUpperCase() === 'TRANSACTION' ? undefined : `set:${raw.toLowerCase()}`;
    default:
      return `set:${raw}`;
  }
}

export function setStatement(s: Json, ctx: Ctx): Draft {
  const name = String(s.name ?? '').toLowerCase();
  const d: Draft = { cls: 'session' };
  const key = setKey(s);
  if (key !== undefined) d.key = key;
  if (s.kind === 'VAR_SET_VALUE' && READ_ONLY_GUCS.has(name)) {
    ctx.sensitive = true;
    if (!isTrue(constValue(arr(s.args)[0]))) turnsReadOnlyOff(d, `SET ${name}`);
  } else if (s.kind === 'VAR_SET_MULTI' && (name === 'transaction' || name === 'session characteristics')) {
    if (readOnlyOption(s.args) === false) turnsReadOnlyOff(d, `SET ${name.toUpperCase()} READ WRITE`);
  } else if (name === 'standard_conforming_strings' || name === 'backslash_quote') {
    d.reason = 'changes how string literals are lexed (shapes assume standard_conforming_strings = on)';
  }
  return d;
}

