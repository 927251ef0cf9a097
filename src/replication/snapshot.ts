/**
 * The source's final snapshot (seed Phase 4): `pg_dump -Fc` streamed to S3 with the AWS SDK v3 multipart
 * upload (@aws-sdk/lib-storage), or to a file, hashed on the way; then verified by reading it back: size,
 * SHA-256 and `pg_restore --list` (the archive's table of contents parses, entry count). Errors are values.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { AwsClientSettings } from './dms-monitor.js';
import { describeDest, type SnapshotDest } from './snapshot-dest.js';

export { describeDest, parseSnapshotDest, type SnapshotDest } from './snapshot-dest.js';

export interface SnapshotOptions {
  /** libpq URI of the source (the control login: it must read every table). */
  readonly sourceUrl: string;
  /** Directory holding pg_dump and pg_restore (major ≥ the source's). */
  readonly pgBinDir: string;
  readonly dest: SnapshotDest;
  readonly aws?: AwsClientSettings;
  /** Multipart part size (bytes, ≥ 5 MiB: S3's minimum). Default 8 MiB. */
  readonly partSize?: number;
  readonly now?: () => number;
}

export interface SnapshotRecord {
  readonly ok: boolean;
  readonly location: string;
  readonly startedAt: number;
  readonly ms: number;
  readonly bytes?: number;
  readonly sha256?: string;
  /** Entries `pg_restore --list` read from the archive read back. */
  readonly tocEntries?: number;
  readonly error?: string;
}

export interface Verification {
  readonly ok: boolean;
  readonly bytes: number;
  readonly sha256: string;
  readonly tocEntries: number;
  readonly error?: string;
}

export function s3Client(aws: AwsClientSettings = {}): S3Client {
  return new S3Client({
    region: aws.region ?? process.env.AWS_REGION ?? 'us-east-1',
    ...(aws.endpoint ? { endpoint: aws.endpoint, forcePathStyle: true } : {}),
    ...(aws.credentials ? { credentials: aws.credentials } : {}),
    // Parts carry Content-MD5-free bodies of known length; checksums only where S3 requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
  });
}

/** Counts bytes and hashes what passes through. */
function meter(): Transform & { bytes: number; digest(): string } {
  const h = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      (t as unknown as { bytes: number }).bytes += chunk.length;
      cb(null, chunk);
    },
  }) as Transform & { bytes: number; digest(): string };
  t.bytes = 0;
  t.digest = () => h.digest('hex');
  return t;
}

/** Runs pg_dump -Fc, streams it to the destination, then verifies what was stored. */
export async function takeSnapshot(o: SnapshotOptions): Promise<SnapshotRecord> {
  const now = o.now ?? Date.now;
  const startedAt = now();
  const location = describeDest(o.dest);
  const done = (r: Omit<SnapshotRecord, 'location' | 'startedAt' | 'ms'>): SnapshotRecord => ({ location, startedAt, ms: now() - startedAt, ...r });
  const dump = spawn(`${o.pgBinDir}/pg_dump`, ['-Fc', '--no-owner', '-d', o.sourceUrl], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  dump.stderr.on('data', (c: Buffer) => void (stderr = (stderr + c.toString()).slice(-2000)));
  const exited = new Promise<number>((resolve) => {
    dump.on('error', (e) => ((stderr += e.message), resolve(-1)));
    dump.on('close', (code) => resolve(code ?? -1));
  });
  const m = meter();
  const body = new PassThrough();
  // A failed pg_dump must fail the upload (and abort the multipart upload), not store a truncated archive.
  void exited.then((code) => {
    if (code !== 0) body.destroy(new Error(`pg_dump exited with ${code}: ${stderr.trim()}`));
  });
  try {
    const stored = storeStream(o, body);
    await Promise.all([pipeline(dump.stdout, m, body), stored, exited.then((c) => (c === 0 ? undefined : Promise.reject(new Error(`pg_dump exited with ${c}: ${stderr.trim()}`))))]);
  } catch (e) {
    dump.kill('SIGKILL');
    return done({ ok: false, error: `${location}: ${(e as Error).message}` });
  }
  const written = { bytes: m.bytes, sha256: m.digest() };
  const v = await verifySnapshot(o, written);
  if (!v.ok) return done({ ok: false, ...written, tocEntries: v.tocEntries, error: v.error });
  return done({ ok: true, ...written, tocEntries: v.tocEntries });
}

async function storeStream(o: SnapshotOptions, body: Readable): Promise<void> {
  if (o.dest.kind === 'file') {
    await fs.mkdir(dirname(o.dest.path), { recursive: true });
    await pipeline(body, createWriteStream(o.dest.path));
    return;
  }
  const client = s3Client(o.aws);
  try {
    const up = new Upload({
      client,
      params: { Bucket: o.dest.bucket, Key: o.dest.key, Body: body, ContentType: 'application/octet-stream' },
      partSize: Math.max(5 * 1024 * 1024, o.partSize ?? 8 * 1024 * 1024),
      queueSize: 2,
      // An interrupted upload is aborted (AbortMultipartUpload): no half archive left behind to be mistaken for one.
      leavePartsOnError: false,
    });
    await up.done();
  } finally {
    client.destroy();
  }
}

async function openStored(o: Pick<SnapshotOptions, 'dest' | 'aws'>): Promise<{ stream: Readable; close(): void }> {
  if (o.dest.kind === 'file') {
    const stream = createReadStream(o.dest.path);
    return { stream, close: () => stream.destroy() };
  }
  const client = s3Client(o.aws);
  const r = await client.send(new GetObjectCommand({ Bucket: o.dest.bucket, Key: o.dest.key }));
  return { stream: r.Body as Readable, close: () => client.destroy() };
}

/**
 * Reads the stored archive back: its size and SHA-256 must equal what was written (`expect`), and
 * `pg_restore --list` must read its table of contents.
 */
export async function verifySnapshot(o: Pick<SnapshotOptions, 'dest' | 'aws' | 'pgBinDir'>, expect: { bytes: number; sha256: string }): Promise<Verification> {
  let opened: Awaited<ReturnType<typeof openStored>>;
  try {
    opened = await openStored(o);
  } catch (e) {
    return { ok: false, bytes: 0, sha256: '', tocEntries: 0, error: `cannot read ${describeDest(o.dest)}: ${(e as Error).message}` };
  }
  const m = meter();
  const list = spawn(`${o.pgBinDir}/pg_restore`, ['--list'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  list.stdout.on('data', (c: Buffer) => void (out += c.toString()));
  list.stderr.on('data', (c: Buffer) => void (err = (err + c.toString()).slice(-2000)));
  const exited = new Promise<number>((resolve) => {
    list.on('error', (e) => ((err += e.message), resolve(-1)));
    list.on('close', (code) => resolve(code ?? -1));
  });
  // pg_restore may stop reading early (it only needs the TOC): keep hashing to the end either way.
  list.stdin.on('error', () => undefined);
  let readError: string | null = null;
  try {
    await pipeline(opened.stream, m, new Transform({
      transform(chunk: Buffer, _e, cb) {
        if (list.stdin.writable) list.stdin.write(chunk);
        cb();
      },
      flush(cb) {
        list.stdin.end();
        cb();
      },
    }));
  } catch (e) {
    readError = (e as Error).message;
    list.stdin.destroy();
  } finally {
    opened.close();
  }
  const code = await exited;
  const tocEntries = out.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';')).length;
  const got = { bytes: m.bytes, sha256: m.digest(), tocEntries };
  const problems: string[] = [];
  if (readError) problems.push(`read back failed: ${readError}`);
  if (got.bytes !== expect.bytes) problems.push(`size ${got.bytes} B read back, ${expect.bytes} B written`);
  if (got.sha256 !== expect.sha256) problems.push(`SHA-256 ${got.sha256.slice(0, 16)}… read back, ${expect.sha256.slice(0, 16)}… written`);
  if (code !== 0) problems.push(`pg_restore --list exited with ${code}: ${err.trim().slice(0, 300)}`);
  else if (tocEntries === 0) problems.push('pg_restore --list found no entries');
  return problems.length === 0 ? { ok: true, ...got } : { ok: false, ...got, error: problems.join('; ') };
}
