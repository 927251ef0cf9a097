/**
 * A local double of S3 at the SDK's endpoint setting (path-style, `forcePathStyle: true`): PutObject,
 * GetObject, HeadObject and the multipart upload lib-storage uses (CreateMultipartUpload, UploadPart,
 * CompleteMultipartUpload, AbortMultipartUpload). It can interrupt one part (the connection is cut, every
 * attempt) to test an upload that fails midway.
 */
import http from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface S3Call {
  readonly op: string;
  readonly key: string;
  readonly bytes: number;
  readonly part?: number;
}

/** aws-chunked bodies (streaming with a trailing checksum): `<hex>[;ext]\r\n<data>\r\n … 0\r\n<trailers>\r\n\r\n`. */
function decodeAwsChunked(b: Buffer): Buffer {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = b.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(b.subarray(i, eol).toString().split(';')[0]!, 16);
    if (!(size > 0)) break;
    out.push(b.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

const xml = (body: string) => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const etag = (b: Buffer) => `"${createHash('md5').update(b).digest('hex')}"`;

export async function s3Double(t: { teardown: (fn: () => unknown) => void }) {
  const objects = new Map<string, Buffer>();
  const uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();
  const calls: S3Call[] = [];
  const state = { interruptPart: null as number | null, nextId: 1 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://s3');
      const key = decodeURIComponent(url.pathname.slice(1)); // bucket/key
      const raw = Buffer.concat(chunks);
      const body = String(req.headers['content-encoding'] ?? '').includes('aws-chunked') ? decodeAwsChunked(raw) : raw;
      const q = url.searchParams;
      const reply = (status: number, payload = '', headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/xml', ...headers });
        res.end(payload);
      };
      const noKey = () => reply(404, xml(`<Error><Code>NoSuchKey</Code><Message>no such key</Message><Key>${key}</Key></Error>`));
      if (req.method === 'POST' && q.has('uploads')) {
        const id = `upload-${state.nextId++}`;
        uploads.set(id, { key, parts: new Map() });
        calls.push({ op: 'CreateMultipartUpload', key, bytes: 0 });
        const [bucket, ...rest] = key.split('/');
        return reply(200, xml(`<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${rest.join('/')}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`));
      }
      if (req.method === 'PUT' && q.has('uploadId')) {
        const part = Number(q.get('partNumber'));
        calls.push({ op: 'UploadPart', key, bytes: body.length, part });
        if (state.interruptPart === part) {
          req.socket.destroy(); // the connection drops mid-upload
          return;
        }
        const u = uploads.get(q.get('uploadId')!);
        if (!u) return reply(404, xml('<Error><Code>NoSuchUpload</Code></Error>'));
        u.parts.set(part, body);
        return reply(200, '', { etag: etag(body) });
      }
      if (req.method === 'POST' && q.has('uploadId')) {
        const u = uploads.get(q.get('uploadId')!);
        calls.push({ op: 'CompleteMultipartUpload', key, bytes: 0 });
        if (!u) return reply(404, xml('<Error><Code>NoSuchUpload</Code></Error>'));
        const whole = Buffer.concat([...u.parts.entries()].sort((a, b) => a[0] - b[0]).map((x) => x[1]));
        objects.set(key, whole);
        uploads.delete(q.get('uploadId')!);
        return reply(200, xml(`<CompleteMultipartUploadResult><Location>http://s3/${key}</Location><Key>${key}</Key><ETag>${etag(whole)}</ETag></CompleteMultipartUploadResult>`));
      }
      if (req.method === 'DELETE' && q.has('uploadId')) {
        calls.push({ op: 'AbortMultipartUpload', key, bytes: 0 });
        uploads.delete(q.get('uploadId')!);
        return reply(204);
      }
      if (req.method === 'PUT') {
        calls.push({ op: 'PutObject', key, bytes: body.length });
        objects.set(key, body);
        return reply(200, '', { etag: etag(body) });
      }
      if (req.method === 'GET' || req.method === 'HEAD') {
        calls.push({ op: req.method === 'GET' ? 'GetObject' : 'HeadObject', key, bytes: 0 });
        const o = objects.get(key);
        if (!o) return noKey();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(o.length), etag: etag(o) });
        return res.end(req.method === 'GET' ? o : undefined);
      }
      reply(400, xml('<Error><Code>NotImplemented</Code></Error>'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  t.teardown(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    objects,
    uploads,
    calls,
    state,
    /** Bytes of an object, or undefined. */
    get: (bucket: string, key: string) => objects.get(`${bucket}/${key}`),
  };
}
