/**
 * The final snapshot: pg_dump -Fc of a real PostgreSQL 14 streamed to S3 (multipart, through the S3 double)
 * or to a file, verified by reading it back (size, SHA-256, pg_restore --list). An interrupted upload fails
 * and is aborted; an archive changed after it was written fails verification.
 */
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPg } from '../helpers/servers.js';
import { query } from '../helpers/replication.js';
import { s3Double } from '../helpers/aws-s3.js';
import { parseSnapshotDest, takeSnapshot, verifySnapshot } from '../../src/replication/snapshot.js';

const BIN = '/usr/lib/postgresql/15/bin';
const source = await startPg(t, 14);
// ~9 MB of hex text: compressed by pg_dump -Fc to more than one 5 MiB part.
await query(source.url(), "create table blobs (id int primary key, v text); insert into blobs select g, md5(g::text) || md5((g*7)::text) || md5((g*13)::text) || md5((g*31)::text) from generate_series(1, 140000) g");
const s3 = await s3Double(t);
const aws = { endpoint: s3.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } };
const dir = mkdtempSync(join(tmpdir(), 'pgc-snap-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('destinations parse', async (t) => {
  t.same(parseSnapshotDest('s3://bucket/a/b.dump'), { kind: 's3', bucket: 'bucket', key: 'a/b.dump' });
  t.same(parseSnapshotDest('/tmp/x.dump'), { kind: 'file', path: '/tmp/x.dump' });
  t.equal(parseSnapshotDest('s3://bucket'), null);
});

t.test('multipart upload to S3, verified by reading it back', async (t) => {
  const r = await takeSnapshot({ sourceUrl: source.url(), pgBinDir: BIN, dest: { kind: 's3', bucket: 'archive', key: 'final/source.dump' }, aws });
  t.ok(r.ok, `snapshot ok ${r.error ?? ''}`);
  const parts = s3.calls.filter((c) => c.op === 'UploadPart');
  t.ok(parts.length >= 2, `multipart: ${parts.length} parts`);
  t.ok(s3.calls.some((c) => c.op === 'CompleteMultipartUpload'), 'completed');
  t.equal(s3.get('archive', 'final/source.dump')?.length, r.bytes, `stored ${r.bytes} B`);
  t.ok((r.tocEntries ?? 0) > 0, `pg_restore --list read ${r.tocEntries} entries`);
  t.match(r.sha256, /^[0-9a-f]{64}$/);
});

t.test('an interrupted upload fails, is aborted, and stores nothing', async (t) => {
  s3.state.interruptPart = 2;
  t.teardown(() => void (s3.state.interruptPart = null));
  const before = s3.calls.length;
  const r = await takeSnapshot({ sourceUrl: source.url(), pgBinDir: BIN, dest: { kind: 's3', bucket: 'archive', key: 'final/broken.dump' }, aws });
  t.notOk(r.ok, 'snapshot failed');
  t.match(r.error, /broken\.dump/, `error names the destination: ${r.error}`);
  const mine = s3.calls.slice(before);
  t.ok(mine.some((c) => c.op === 'AbortMultipartUpload'), 'the multipart upload was aborted');
  t.equal(s3.get('archive', 'final/broken.dump'), undefined, 'no object stored');
  t.equal(s3.uploads.size, 0, 'no upload left open');
});

t.test('to a file; a changed archive fails verification', async (t) => {
  const path = join(dir, 'source.dump');
  const r = await takeSnapshot({ sourceUrl: source.url(), pgBinDir: BIN, dest: { kind: 'file', path } });
  t.ok(r.ok, `file snapshot ok ${r.error ?? ''}`);
  const bytes = readFileSync(path);
  bytes[bytes.length - 10] ^= 0xff;
  writeFileSync(path, bytes);
  const v = await verifySnapshot({ dest: { kind: 'file', path }, pgBinDir: BIN }, { bytes: r.bytes!, sha256: r.sha256! });
  t.notOk(v.ok, 'verification fails');
  t.match(v.error, /SHA-256/, v.error ?? '');
});

t.test('pg_dump failing fails the snapshot', async (t) => {
  const r = await takeSnapshot({ sourceUrl: source.url().replace(/\/[^/]*$/, '/nosuchdb'), pgBinDir: BIN, dest: { kind: 'file', path: join(dir, 'x.dump') } });
  t.notOk(r.ok);
  t.match(r.error, /pg_dump exited/, r.error ?? '');
});
