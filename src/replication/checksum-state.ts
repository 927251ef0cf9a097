/**
 * Resumable gate 2: chunks already found equal are written to a state file as they finish, and a
 * later run against the same pair skips them (DESIGN.md: "chunked by primary-key ranges, so 2.3TB is
 * checkable in parallel and resumable"). Only equal chunks are kept; anything else is checked
 * again. A range matches only if its bounds are identical, which keyset planning reproduces as long
 * as the keys before it did not change.
 */
import { promises as fs } from 'node:fs';
import type { ChecksumProgressStore, ChunkResult } from './chunk-check.js';
import type { KeyRange } from './key-range.js';

interface StateFile {
  readonly version: 1;
  /** host:port/database of each side (no credentials): a state file belongs to one pair. */
  readonly pair: string;
  readonly done: Record<string, { source: ChunkResult['source']; target: ChunkResult['target'] }>;
}

/** `host:port/database` of a URL, for telling pairs apart without storing passwords. */
export function endpointId(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return url.replace(/password=\S+/g, '');
  }
}

const key = (table: string, range: KeyRange) => JSON.stringify([table, range.lo, range.hi]);

export async function openChecksumState(file: string, sourceUrl: string, targetUrl: string): Promise<ChecksumProgressStore> {
  const pair = `${endpointId(sourceUrl)} → ${endpointId(targetUrl)}`;
  let done: StateFile['done'] = {};
  try {
    const parsed = JSON.parse(await fs.readFile(file, 'utf8')) as Partial<StateFile>;
    if (parsed.version === 1 && parsed.pair === pair && parsed.done) done = parsed.done;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot read checksum state ${file}: ${(err as Error).message}`);
  }
  const resumed = Object.keys(done).length;
  let dirty = false;
  let lastWrite = 0;
  let writing: Promise<void> = Promise.resolve();
  const write = () => {
    dirty = false;
    lastWrite = Date.now();
    const body: StateFile = { version: 1, pair, done };
    // Write then rename: an interrupted write never leaves a torn file behind.
    writing = writing.then(async () => {
      await fs.writeFile(`${file}.tmp`, JSON.stringify(body));
      await fs.rename(`${file}.tmp`, file);
    });
    return writing;
  };
  return {
    resumed,
    lookup(table, range) {
      const hit = done[key(table, range)];
      return hit ? { range, source: hit.source, target: hit.target, verdict: { kind: 'equal', rechecks: 0 } } : undefined;
    },
    record(table, r) {
      if (r.verdict.kind !== 'equal') return;
      done[key(table, r.range)] = { source: r.source, target: r.target };
      dirty = true;
      if (Date.now() - lastWrite > 1000) void write();
    },
    async flush() {
      if (dirty) await write();
      await writing;
    },
    async complete() {
      await writing;
      await fs.rm(file, { force: true });
      await fs.rm(`${file}.tmp`, { force: true });
    },
  };
}
