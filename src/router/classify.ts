/**
 * Statement classification for routing: read / write / transaction control / session state.
 * The real PostgreSQL grammar (libpg-query, WASM) decides; a bounded LRU keyed by the statement's
 * literal-masked shape (./shape.ts) makes the parser run once per shape, not once per statement.
 * Anything not known to be safe on a reader is a write: a wrong "write" costs a little load on the
 * writer, a wrong "read" sends a write to the wrong database.
 */
import { loadModule } from 'libpg-query';
import { Lru } from './lru.js';
import { shapeKey } from './shape.js';
import type { Role } from '../domain/role.js';
import { analyse, DEFAULT_WRITE_FUNCTIONS, type Analysis } from './classify-tree.js';

export { DEFAULT_WRITE_FUNCTIONS };

export type StatementClass = 'read' | 'write' | 'tx-begin' | 'tx-end' | 'tx-other' | 'session';
/** Session state that ties the client session to the backend that holds it. */
export type Pin = 'temp-table' | 'listen' | 'advisory-lock' | 'prepare';

export interface Classification {
  cls: StatementClass;
  /** BEGIN / START TRANSACTION … READ ONLY. */
  readOnlyTx?: boolean;
  /** BEGIN / START TRANSACTION … READ WRITE. */
  readWriteTx?: boolean;
  /** From a comment before the first token: `/* pg-cutover:source *\/` or `pg-cutover:target`. */
  hint?: Role;
  pins?: Pin;
  /** Tries to leave read-only mode; the proxy refuses this on a fenced backend (DESIGN.md, Fencing). */
  setsReadOnlyOff?: boolean;
  /** More than one statement in the string. */
  multi: boolean;
  /**
   * The session state a single statement sets, as the replay log keys it (src/router/session-state.ts):
   * `set:<name>`, `set:*` (RESET ALL), `prep:<name>`, `prep:*` (DEALLOCATE ALL), `*` (DISCARD ALL). Absent for
   * everything else, SET LOCAL and SET TRANSACTION included (they end with the transaction).
   */
  sessionKey?: string;
  /** Some statement of the string may change session state that must be replayed on another backend. */
  changesSession?: boolean;
  /**
   * A shadow transaction can run it: false for statements that end a transaction (COMMIT, ROLLBACK, PREPARE
   * TRANSACTION), cannot run inside one (VACUUM, … CONCURRENTLY, CREATE DATABASE, ALTER SYSTEM, tablespaces) or
   * may end one (DO).
   */
  shadowable: boolean;
  /** Why it is not a plain read (for logs and tests; never contains literal values). */
  reason?: string;
}

export interface ClassifierOptions {
  /** Extra functions that write or take locks (lower case; a trailing `*` matches a prefix). Default none. */
  writeFunctions?: string[];
  /** Shapes kept in the LRU. Default 10 000; 0 turns caching off. */
  cacheSize?: number;
  /** Longer statements are classified without caching, bounding the cache's memory. Default 8192 chars. */
  maxCachedLength?: number;
}

export interface ClassifierStats {
  hits: number;
  misses: number;
  size: number;
}

export interface Classifier {
  classify(sql: string): Classification;
  stats(): ClassifierStats;
}

/**
 * A statement whose classification read a literal (set_config's name, a DO body, a read-only GUC
 * value) is cached only when its text cannot hide read-only GUC handling, and a cached one is
 * reused only for such texts; the others go through the parser every time.
 */
const LITERAL_DANGER = /read_only|read\s+write|\\|u&/i;

let parserReady = false;

/** Loads the WASM parser; await once at startup, before createClassifier. */
export async function initClassifier(): Promise<void> {
  await loadModule();
  parserReady = true;
}


function functionMatcher(names: readonly string[]): (name: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const raw of names) {
    const n = raw.toLowerCase();
    if (n.endsWith('*')) prefixes.push(n.slice(0, -1));
    else exact.add(n);
  }
  return (name) => exact.has(name) || prefixes.some((p) => name.startsWith(p));
}

/** A classifier with its own shape cache. Call (and await) initClassifier() once before. */
export function createClassifier(opts: ClassifierOptions = {}): Classifier {
  if (!parserReady) throw new Error('createClassifier: await initClassifier() first (the WASM parser is not loaded)');
  const isWriteFunction = functionMatcher([...DEFAULT_WRITE_FUNCTIONS, ...(opts.writeFunctions ?? [])]);
  const cache = new Lru<string, Analysis>(opts.cacheSize ?? 10_000);
  const maxCachedLength = opts.maxCachedLength ?? 8192;
  let hits = 0;
  let misses = 0;
  let lastKey: string | null = null;
  let lastAnalysis: Analysis | null = null;
  return {
    classify(sql: string): Classification {
      if (sql.length > maxCachedLength) {
        misses++;
        return analyse(sql, isWriteFunction).c;
      }
      const key = shapeKey(sql);
      // The shape classified last, checked first: a session repeating one statement with other literals (a
      // point read) skips hashing the key and the LRU's move to the front.
      const cached = key === lastKey ? lastAnalysis : cache.get(key);
      if (cached !== undefined && cached !== null && !(cached.sensitive && LITERAL_DANGER.test(sql))) {
        hits++;
        lastKey = key;
        lastAnalysis = cached;
        return cached.c;
      }
      misses++;
      const a = analyse(sql, isWriteFunction);
      if (!(a.sensitive && LITERAL_DANGER.test(sql))) {
        cache.set(key, a);
        if (cache.max > 0) {
          lastKey = key;
          lastAnalysis = a;
        }
      }
      return a.c;
    },
    stats: () => ({ hits, misses, size: cache.size }),
  };
}
