/**
 * What the databases remember about the writer (DESIGN.md "Fencing", 3): one row per database in
 * pgcutover_control.writer with `{epoch, writer, fenced}` and the writer-change lock (holder, token). Every
 * switchover and rollback takes the lock on both databases first (source, then target: one order, no
 * deadlock), so a second request anywhere is refused with the holder's name; each record it writes is
 * conditional on its token, so a run that lost the lock cannot write. Sidecars read the record at start and on
 * every store reconnect (src/control/writer-sync.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Db } from './control-conn.js';
import { CONTROL_SCHEMA } from './fence-catalog.js';
import type { Role } from '../domain/role.js';
import { SqlState } from '../protocol/sqlstate.js';


export interface WriterRow {
  readonly epoch: number;
  readonly writer: Role;
  /** This database is fenced for application roles. */
  readonly fenced: boolean;
  readonly lockHolder: string | null;
  readonly lockToken: string | null;
  readonly lockAt: string | null;
}

const W = `${CONTROL_SCHEMA}.writer`;

/** Creates the control schema and tables if missing (idempotent; two sidecars racing is fine). */
export async function ensureControlSchema(db: Db): Promise<void> {
  const ddl = `
    CREATE SCHEMA IF NOT EXISTS ${CONTROL_SCHEMA};
    REVOKE ALL ON SCHEMA ${CONTROL_SCHEMA} FROM PUBLIC;
    CREATE TABLE IF NOT EXISTS ${W} (
      one boolean PRIMARY KEY DEFAULT true CHECK (one),
      epoch bigint NOT NULL DEFAULT 0,
      writer text NOT NULL DEFAULT 'source' CHECK (writer IN ('source', 'target')),
      fenced boolean NOT NULL DEFAULT false,
      lock_holder text, lock_token text, lock_at timestamptz,
      updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE IF NOT EXISTS ${CONTROL_SCHEMA}.fence (
      one boolean PRIMARY KEY DEFAULT true CHECK (one),
      roles text[] NOT NULL,
      changes jsonb NOT NULL,
      fenced_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO ${W} (one) VALUES (true) ON CONFLICT DO NOTHING;`;
  for (let i = 0; ; i++) {
    try {
      await db.query(ddl);
      return;
    } catch (err) {
      // Concurrent CREATE … IF NOT EXISTS can still collide in the catalogs (23505 / 42P07 / 42P06).
      const code = (err as { code?: string }).code;
      if (i < 3 && (code === SqlState.UniqueViolation || code === SqlState.DuplicateTable || code === SqlState.DuplicateSchema)) continue;
      throw err;
    }
  }
}

/** This database's row; before any writer change (no control schema yet): epoch 0, the source writes. */
export async function readWriterRow(db: Db): Promise<WriterRow> {
  const exists = await db.query<{ ok: boolean }>(`SELECT to_regclass('${W}') IS NOT NULL AS ok`);
  if (!exists.rows[0]!.ok) return { epoch: 0, writer: 'source', fenced: false, lockHolder: null, lockToken: null, lockAt: null };
  const r = await db.query<{ epoch: string; writer: Role; fenced: boolean; lock_holder: string | null; lock_token: string | null; lock_at: string | null }>(
    `SELECT epoch, writer, fenced, lock_holder, lock_token, lock_at::text FROM ${W}`,
  );
  const x = r.rows[0]!;
  return { epoch: Number(x.epoch), writer: x.writer, fenced: x.fenced, lockHolder: x.lock_holder, lockToken: x.lock_token, lockAt: x.lock_at };
}

/** What both databases say together: the newest epoch wins; a lock on either means a change is running. */
export interface WriterRecord {
  readonly epoch: number;
  readonly writer: Role;
  readonly source: WriterRow;
  readonly target: WriterRow;
  /** Holder of a writer-change lock on either database, or null. */
  readonly changing: string | null;
}

export function combineRecords(source: WriterRow, target: WriterRow): WriterRecord {
  const newest = target.epoch > source.epoch ? target : source;
  const changing = source.lockHolder ?? target.lockHolder;
  return { epoch: newest.epoch, writer: newest.writer, source, target, changing };
}

export async function readWriterRecord(source: Db, target: Db): Promise<WriterRecord> {
  const [s, t] = await Promise.all([readWriterRow(source), readWriterRow(target)]);
  return combineRecords(s, t);
}

/** A held writer-change lock: its token guards every record write of the run. */
export interface WriterLock {
  readonly holder: string;
  readonly token: string;
  /** The epoch this run writes: one above the newest on either database. */
  readonly epoch: number;
  /** The writer both databases recorded when the lock was taken. */
  readonly before: Role;
}

export class WriterLockBusy extends Error {
  constructor(readonly holder: string, readonly since: string | null, where: string) {
    super(`another writer change is running: ${holder} holds the writer lock on the ${where}${since ? ` since ${since}` : ''} (if that run is dead: pg-cutover writer unlock --reason …)`);
  }
}

/** `free`: only a free lock; `ours`: free or already held with this token; `strict`: only held with this token. */
type TakeMode = 'free' | 'ours' | 'strict';

async function take(db: Db, holder: string, token: string, mode: TakeMode = 'free'): Promise<WriterRow | null> {
  await ensureControlSchema(db);
  const where = mode === 'free' ? 'lock_holder IS NULL' : mode === 'ours' ? 'lock_holder IS NULL OR lock_token = $2' : 'lock_token = $2';
  const r = await db.query(`UPDATE ${W} SET lock_holder = $1, lock_token = $2, lock_at = now() WHERE ${where} RETURNING one`, [holder, token]);
  if ((r.rowCount ?? 0) === 0) return null;
  return readWriterRow(db);
}

/** The writer lock this run claimed on one database was cleared (`writer unlock`): the run must stop. */
export class WriterLockLost extends Error {
  constructor(readonly holder: string, where: string) {
    super(`the writer lock ${holder} claimed on the ${where} was cleared (pg-cutover writer unlock): this run stops; pg-cutover writer adopt settles the state`);
  }
}

/**
 * A rollback that cannot reach the target yet claims the lock on the source alone, so every sidecar (and a
 * second request) sees a writer change running while it waits; `token` from an earlier claim must still hold.
 * Returns the token, or throws WriterLockBusy (another run) / WriterLockLost (cleared by an operator).
 */
export async function claimWriterLock(db: Db, holder: string, token: string | null): Promise<string> {
  const t = token ?? randomUUID();
  if (await take(db, holder, t, token ? 'strict' : 'free')) return t;
  if (token) throw new WriterLockLost(holder, 'source');
  const cur = await readWriterRow(db);
  throw new WriterLockBusy(cur.lockHolder ?? 'someone', cur.lockAt, 'source');
}

/**
 * Takes the writer-change lock on both databases, or throws WriterLockBusy naming the holder. `resume`: the
 * token of this run's earlier claim (claimWriterLock), which must still hold on the source.
 */
export async function acquireWriterLock(source: Db, target: Db, holder: string, resume?: string): Promise<WriterLock> {
  const token = resume ?? randomUUID();
  const s = await take(source, holder, token, resume ? 'strict' : 'free');
  if (!s && resume) throw new WriterLockLost(holder, 'source');
  if (!s) {
    const cur = await readWriterRow(source);
    throw new WriterLockBusy(cur.lockHolder ?? 'someone', cur.lockAt, 'source');
  }
  let t: WriterRow | null;
  try {
    t = await take(target, holder, token, resume ? 'ours' : 'free');
  } catch (err) {
    // A resumed run keeps its claim on the source while the target is unreachable.
    if (!resume) await unlock(source, token).catch(() => undefined);
    throw err;
  }
  if (!t) {
    await unlock(source, token).catch(() => undefined);
    const cur = await readWriterRow(target);
    throw new WriterLockBusy(cur.lockHolder ?? 'someone', cur.lockAt, 'target');
  }
  const rec = combineRecords(s, t);
  return { holder, token, epoch: rec.epoch + 1, before: rec.writer };
}

async function unlock(db: Db, token: string): Promise<void> {
  await db.query(`UPDATE ${W} SET lock_holder = NULL, lock_token = NULL, lock_at = NULL WHERE lock_token = $1`, [token]);
}

export async function releaseWriterLock(source: Db, target: Db, lock: WriterLock): Promise<void> {
  await Promise.allSettled([unlock(source, lock.token), unlock(target, lock.token)]);
}

/**
 * Writes `{epoch, writer, fenced}` on one database, only while `lock` is still held there (the fencing token):
 * a run whose lock was taken away (writer-unlock) cannot overwrite a newer record.
 */
export async function recordWriter(db: Db, lock: WriterLock, writer: Role, fenced: boolean): Promise<void> {
  const r = await db.query(`UPDATE ${W} SET epoch = $1, writer = $2, fenced = $3, updated_at = now() WHERE lock_token = $4`, [lock.epoch, writer, fenced, lock.token]);
  if ((r.rowCount ?? 0) === 0) throw new Error(`the writer lock of ${lock.holder} is no longer held on this database: not recording ${writer} as writer`);
}

/**
 * The way out of a dead run's lock (audited by the caller): clears the lock on both databases. With
 * `expectHolder`, only when that holder still has it.
 */
export async function forceUnlock(source: Db, target: Db, expectHolder?: string): Promise<{ source: string | null; target: string | null }> {
  const one = async (db: Db) => {
    await ensureControlSchema(db);
    const r = await db.query<{ h: string | null }>(
      `UPDATE ${W} w SET lock_holder = NULL, lock_token = NULL, lock_at = NULL FROM (SELECT lock_holder AS h FROM ${W}) old
        WHERE w.lock_holder IS NOT NULL AND ($1::text IS NULL OR w.lock_holder = $1) RETURNING old.h`,
      [expectHolder ?? null],
    );
    return r.rows[0]?.h ?? null;
  };
  return { source: await one(source), target: await one(target) };
}
