/**
 * The classifier's reading of one SQL string's parse tree (libpg-query's JSON): its class (read, write,
 * transaction control, session), and the facts the proxy needs of it, all from the one parse: routing hint,
 * session pin, read-only switch, the session-state key a replay keeps it under, and whether a shadow
 * transaction can run it. Pure.
 */
import { parseSync } from 'libpg-query';
import { leadingHint } from './shape.js';
import type { Classification, StatementClass } from './classify.js';
import type { Role } from '../domain/role.js';
import { arr, constValue, isTrue, markWrite, obj, READ_ONLY_GUCS, READ_ONLY_TEXT, setStatement, transaction, turnsReadOnlyOff, type Ctx, type Draft, type Json } from './classify-nodes.js';

export { DEFAULT_WRITE_FUNCTIONS } from './classify-nodes.js';

/** parsenodes.h CURSOR_OPT_HOLD. */
const CURSOR_OPT_HOLD = 0x20;

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
