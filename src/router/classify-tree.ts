/**
 * The classifier's reading of one SQL string's parse tree (libpg-query's JSON): its class (read, write,
 * transaction control, session), and the facts the proxy needs of it, all from the one parse: routing hint,
 * session pin, read-only switch, the session-state key a replay keeps it under, and whether a shadow
 * transaction can run it. Pure.
 */
import { parseSync } from 'libpg-query';
import { leadingHint } from './shape.js';
import type { Classification, StatementClass, Pin } from './classify.js';
import type { Role } from '../domain/role.js';

/**
 * Functions that write, take locks, or depend on state only the writer's session has (currval and
 * lastval fail on a backend that did not run nextval). A trailing `*` matches a prefix.
 */
export const DEFAULT_WRITE_FUNCTIONS: readonly string[] = [
  'nextval', 'setval', 'currval', 'lastval',
  'pg_advisory_lock*', 'pg_advisory_xact_lock*', 'pg_try_advisory_*', 'pg_advisory_unlock*',
  'set_config', 'lo_*', 'pg_notify', 'txid_current', 'pg_current_xact_id',
  'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_switch_wal', 'pg_logical_emit_message',
  'pg_create_restore_point', 'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot',
  'pg_drop_replication_slot', 'pg_replication_slot_advance', 'pg_stat_reset*',
];

/** GUCs whose value decides whether the session may write (fencing sets them on for app roles). */
const READ_ONLY_GUCS = new Set(['transaction_read_only', 'default_transaction_read_only']);
/** Text that may turn read-only off, after escapes (`\`, `U&`) are decoded. */
const READ_ONLY_TEXT = /read_only|read\s+write/i;
const LITERAL_DANGER = /read_only|read\s+write|\\|u&/i;
/** parsenodes.h CURSOR_OPT_HOLD. */
const CURSOR_OPT_HOLD = 0x20;

type Json = { [k: string]: unknown };
const obj = (v: unknown): Json | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

interface Draft {
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

interface Ctx {
  isWriteFunction(name: string): boolean;
  /** Set when a decision depended on a literal's value. */
  sensitive: boolean;
}

/** Value of an A_Const node (protobuf JSON omits zero values: `ival: {}` is 0); undefined otherwise. */
function constValue(node: unknown): string | number | boolean | undefined {
  const c = obj(obj(node)?.A_Const);
  if (!c) return undefined;
  if ('sval' in c) return String(obj(c.sval)?.sval ?? '');
  if ('ival' in c) return Number(obj(c.ival)?.ival ?? 0);
  if ('boolval' in c) return obj(c.boolval)?.boolval === true;
  return undefined;
}

/** True only for values PostgreSQL's parse_bool reads as true (on, true, yes and prefixes, 1). */
function isTrue(v: string | number | boolean | undefined): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v === 1;
  if (typeof v !== 'string' || v.length === 0) return false;
  const s = v.toLowerCase();
  return s === 'on' || s === '1' || 'true'.startsWith(s) || 'yes'.startsWith(s);
}

/** READ ONLY → true, READ WRITE → false, neither → undefined, from BEGIN / SET TRANSACTION options. */
function readOnlyOption(options: unknown): boolean | undefined {
  for (const o of arr(options)) {
    const d = obj(obj(o)?.DefElem);
    if (d?.defname === 'transaction_read_only') return constValue(d.arg) === 1;
  }
  return undefined;
}

function markWrite(d: Draft, reason: string): void {
  if (d.cls === 'read') {
    d.cls = 'write';
    d.reason = reason;
  }
}

function turnsReadOnlyOff(d: Draft, reason: string): void {
  d.setsReadOnlyOff = true;
  d.reason ??= reason;
}

function funcCall(fc: Json, d: Draft, ctx: Ctx): void {
  const names = arr(fc.funcname);
  const name = String(obj(obj(names[names.length - 1])?.String)?.sval ?? '').toLowerCase();
  if (ctx.isWriteFunction(name)) markWrite(d, `function ${name}`);
  // Session-level advisory locks outlive the transaction; the _xact_ ones do not.
  if (name.startsWith('pg_advisory_lock') || name.startsWith('pg_try_advisory_lock')) d.pins ??= 'advisory-lock';
  if (name === 'set_config') {
    const args = arr(fc.args);
    const guc = constValue(args[0]);
    if (typeof guc !== 'string') turnsReadOnlyOff(d, 'set_config with a computed name');
    else {
      ctx.sensitive = true;
      if (READ_ONLY_GUCS.has(guc.toLowerCase()) && !isTrue(constValue(args[1]))) turnsReadOnlyOff(d, `set_config ${guc}`);
    }
  }
}

/**
 * Walks a statement that executes (its whole tree, generically): any locking clause, SELECT INTO,
 * data-modifying statement (CTEs, nested anywhere) or write function makes it a write.
 */
function walk(node: unknown, d: Draft, ctx: Ctx): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, d, ctx);
    return;
  }
  const o = obj(node);
  if (!o) return;
  for (const key in o) {
    const v = o[key];
    switch (key) {
      case 'lockingClause':
        if (arr(v).length > 0) markWrite(d, 'locking clause');
        break;
      case 'intoClause':
        markWrite(d, 'SELECT INTO');
        break;
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        markWrite(d, `data-modifying ${key}`);
        break;
      case 'FuncCall': {
        const fc = obj(v);
        if (fc) funcCall(fc, d, ctx);
        break;
      }
      case 'relpersistence':
        if (v === 't') d.pins ??= 'temp-table';
        break;
    }
    if (typeof v === 'object' && v !== null) walk(v, d, ctx);
  }
}

/** A temporary relation anywhere in a DDL statement (CREATE TEMP …, or the pg_temp schema). */
function mentionsTemp(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(mentionsTemp);
  const o = obj(node);
  if (!o) return false;
  if (o.relpersistence === 't' || o.schemaname === 'pg_temp') return true;
  for (const key in o) if (typeof o[key] === 'object' && mentionsTemp(o[key])) return true;
  return false;
}

function executes(body: Json, base: Draft, ctx: Ctx): Draft {
  const d = { ...base };
  walk(body, d, ctx);
  return d;
}

function transaction(t: Json): Draft {
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

function setStatement(s: Json, ctx: Ctx): Draft {
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

function classifyNode(node: unknown, ctx: Ctx): Draft {
  const o = obj(node);
  const type = o ? Object.keys(o)[0] : undefined;
  const body = type !== undefined ? obj(o![type]) : undefined;
  if (type === undefined || !body) return { cls: 'write', reason: 'unrecognised parse tree' };
  switch (type) {
    case 'SelectStmt':
      return executes(body, { cls: 'read' }, ctx);
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
    case 'CreateTableAsStmt':
    case 'CallStmt':
      return executes(body, { cls: 'write', reason: type }, ctx);
    case 'ExecuteStmt':
      return executes(body, { cls: 'write', reason: 'EXECUTE of a prepared statement' }, ctx);
    case 'VariableShowStmt':
      return { cls: 'read' };
    case 'ExplainStmt': {
      // Plain EXPLAIN only plans; ANALYZE (whatever its argument) runs the statement.
      const analyze = arr(body.options).some((x) => obj(obj(x)?.DefElem)?.defname === 'analyze');
      if (!analyze) return { cls: 'read' };
      const inner = classifyNode(body.query, ctx);
      return inner.cls === 'read' ? inner : { ...inner, reason: `EXPLAIN ANALYZE: ${inner.reason ?? inner.cls}` };
    }
    case 'CopyStmt':
      if (body.is_from === true) return { cls: 'write', reason: 'COPY FROM' };
      // COPY TO a server file or program has effects outside the database: keep it on the writer.
      if (body.filename !== undefined || body.is_program === true) return { cls: 'write', reason: 'COPY TO file or program' };
      return body.query !== undefined ? classifyNode(body.query, ctx) : { cls: 'read' };
    case 'DeclareCursorStmt': {
      const inner = classifyNode(body.query, ctx);
      const hold = (Number(body.options ?? 0) & CURSOR_OPT_HOLD) !== 0;
      return hold && inner.cls === 'read' ? { cls: 'session', reason: 'cursor WITH HOLD outlives its transaction' } : inner;
    }
    case 'DoStmt': {
      ctx.sensitive = true;
      // A DO block may COMMIT or ROLLBACK (PostgreSQL 11+): never run in a shadow's transaction.
      const d: Draft = { cls: 'write', reason: 'DO', unsafe: true };
      const as = arr(body.args).map((x) => obj(obj(x)?.DefElem)).find((x) => x?.defname === 'as');
      if (READ_ONLY_TEXT.test(String(obj(obj(as?.arg)?.String)?.sval ?? ''))) turnsReadOnlyOff(d, 'DO block mentions read-only settings');
      return d;
    }
    case 'TransactionStmt':
      return transaction(body);
    case 'VariableSetStmt':
      return setStatement(body, ctx);
    case 'PrepareStmt':
      return { cls: 'session', pins: 'prepare', key: `prep:${String(body.name ?? '')}` };
    case 'DeallocateStmt':
      return { cls: 'session', key: body.isall === true || body.name === undefined ? 'prep:*' : `prep:${String(body.name)}` };
    case 'DiscardStmt':
      return body.target === 'DISCARD_ALL' ? { cls: 'session', key: '*' } : { cls: 'session' };
    case 'VacuumStmt':
    case 'AlterSystemStmt':
    case 'CreatedbStmt':
    case 'DropdbStmt':
    case 'CreateTableSpaceStmt':
    case 'DropTableSpaceStmt':
    case 'AlterTableSpaceOptionsStmt':
    case 'AlterTableMoveAllStmt':
      return { cls: 'write', reason: type, unsafe: true };
    case 'ListenStmt':
      return { cls: 'session', pins: 'listen' };
    case 'UnlistenStmt':
    case 'LoadStmt':
    case 'ConstraintsSetStmt':
    case 'FetchStmt':
    case 'ClosePortalStmt':
      return { cls: 'session' };
    default: {
      // Every other statement (DDL, LOCK, GRANT, NOTIFY, …) changes something.
      const d: Draft = mentionsTemp(body) ? { cls: 'write', reason: type, pins: 'temp-table' } : { cls: 'write', reason: type };
      if (outsideTransaction(body)) d.unsafe = true;
      return d;
    }
  }
}

/**
 * DDL that cannot run inside a transaction block, or moves storage: … CONCURRENTLY (CREATE/DROP INDEX,
 * REINDEX, REFRESH MATERIALIZED VIEW, DETACH PARTITION) and anything naming a tablespace.
 */
function outsideTransaction(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(outsideTransaction);
  const o = obj(node);
  if (!o) return false;
  if (o.concurrent === true || o.tablespacename !== undefined || o.subtype === 'AT_SetTableSpace') return true;
  if (o.defname === 'concurrently') return true;
  for (const key in o) if (typeof o[key] === 'object' && outsideTransaction(o[key])) return true;
  return false;
}

const RANK: Record<StatementClass, number> = { read: 0, session: 1, 'tx-begin': 2, 'tx-end': 2, 'tx-other': 2, write: 3 };

/** One statement keeps its class; several take the most write-ish, and transaction control among them makes a write. */
function combine(parts: Draft[], hint: Role | undefined): Classification {
  const multi = parts.length > 1;
  let d: Draft;
  if (!multi) d = parts[0] ?? { cls: 'read' };
  else {
    d = { cls: 'read' };
    for (const p of parts) {
      if (p.cls.startsWith('tx-') && d.cls !== 'write') {
        d.cls = 'write';
        d.reason = 'transaction control in a multi-statement string';
      } else if (RANK[p.cls] > RANK[d.cls]) {
        d.cls = p.cls;
        d.reason = p.reason;
      }
      d.pins ??= p.pins;
      if (p.setsReadOnlyOff) d.setsReadOnlyOff = true;
      if (p.readWriteTx) d.readWriteTx = true;
    }
  }
  const c: Classification = { cls: d.cls, multi, shadowable: !parts.some((p) => p.unsafe === true) };
  if (!multi && d.key !== undefined) c.sessionKey = d.key;
  if (parts.some((p) => p.key !== undefined)) c.changesSession = true;
  if (d.readOnlyTx) c.readOnlyTx = true;
  if (d.readWriteTx) c.readWriteTx = true;
  if (hint) c.hint = hint;
  if (d.pins) c.pins = d.pins;
  if (d.setsReadOnlyOff) c.setsReadOnlyOff = true;
  if (d.reason !== undefined) c.reason = d.reason;
  return Object.freeze(c);
}

export interface Analysis {
  c: Classification;
  sensitive: boolean;
}

export function analyse(sql: string, isWriteFunction: (name: string) => boolean): Analysis {
  const hint = leadingHint(sql);
  if (sql.length === 0) return { c: combine([], hint), sensitive: false };
  let stmts: unknown[];
  try {
    stmts = arr(parseSync(sql).stmts);
  } catch (err) {
    // Keep literal text out of the reason: the entry is shared by every statement of this shape.
    const e = err as { message?: string; sqlDetails?: { cursorPosition?: number } };
    const msg = String(e.message ?? err).replace(/ at or near ".*"$/s, '');
    const at = e.sqlDetails?.cursorPosition;
    return { c: combine([{ cls: 'write', reason: `parse error: ${msg}${at !== undefined ? ` at offset ${at}` : ''}` }], hint), sensitive: false };
  }
  const ctx: Ctx = { isWriteFunction, sensitive: false };
  const parts = stmts.map((s) => classifyNode(obj(s)?.stmt, ctx));
  return { c: combine(parts, hint), sensitive: ctx.sensitive };
}
