/** A local double of the CloudWatch API at the SDK's endpoint setting (AWS cannot run here). */
import http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';

export interface Call {
  target: string;
  contentType: string;
  contentEncoding: string;
  authorization: string;
  body: Record<string, unknown>;
}

/**
 * A local double of the CloudWatch API as @aws-sdk/client-cloudwatch 3.1164 speaks it: AWS JSON 1.0
 * (POST /, X-Amz-Target: GraniteServiceVersion20100801.<Op>), with PutMetricData gzipped once
 * its body passes the SDK's 10 KiB request-compression threshold.
 */
export async function cloudWatchDouble(t: { teardown: (fn: () => unknown) => void }) {
  const calls: Call[] = [];
  const state = {
    fail: false,
    /** [seconds ago, value], in the order the double returns them. */
    cpu: [] as [number, number][],
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const encoding = String(req.headers['content-encoding'] ?? '');
      const raw = Buffer.concat(chunks);
      const text = (encoding === 'gzip' ? gunzipSync(raw) : raw).toString();
      const target = String(req.headers['x-amz-target'] ?? '');
      calls.push({
        target,
        contentType: String(req.headers['content-type']),
        contentEncoding: encoding,
        authorization: String(req.headers.authorization ?? ''),
        body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
      });
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify(payload));
      };
      if (state.fail) return reply(500, { __type: 'InternalServiceError', message: 'injected failure' });
      switch (target) {
        case 'GraniteServiceVersion20100801.PutMetricData':
          return reply(200, {});
        case 'GraniteServiceVersion20100801.GetMetricData': {
          const now = Date.now() / 1000;
          const ids = (calls.at(-1)!.body.MetricDataQueries as { Id: string }[]).map((q) => q.Id);
          return reply(200, {
            MetricDataResults: ids.map((Id) => ({
              Id,
              Label: 'CPUUtilization',
              Timestamps: state.cpu.map(([ago]) => now - ago),
              Values: state.cpu.map(([, v]) => v),
              StatusCode: 'Complete',
            })),
          });
        }
        default:
          return reply(400, { __type: 'UnknownOperationException', message: target });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { calls, state, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
