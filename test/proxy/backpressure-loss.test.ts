/**
 * Backpressure on a backend that goes away: the proxy stops reading a client while the backend's socket is
 * full, and must read it again once that backend is gone. Here the target is a stand-in PostgreSQL (it logs
 * in, then stops reading and hangs up), so a large read fills its socket; the read is retried on the real
 * source, and the client's next query must still be read and answered.
 *
 * The race this guards was seen under load (a query hung forever after the target was stopped): a write to
 * a backend socket that had already ended returned false, the client was paused until a 'drain' that a
 * closing socket never emits, and the retried read's small write to the source did not pause it again.
 * That exact window (between the socket's 'end' and 'close') is not reproducible on demand; this test
 * covers the surrounding path, and test/control/breaker-rollback.test.ts the load that showed it.
 */
import t from 'tap';
import net from 'node:net';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';

/** Logs anyone in (trust), then reads nothing more and hangs up after `hangUpMs`. */
async function stallingBackend(t: { teardown(fn: () => unknown): void }, hangUpMs: number): Promise<number> {
  const server = net.createServer((sock) => {
    sock.once('data', () => {
      const auth = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
      const key = Buffer.alloc(13);
      key.write('K', 0);
      key.writeInt32BE(12, 1);
      key.writeInt32BE(4242, 5);
      key.writeInt32BE(7, 9);
      const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
      sock.write(Buffer.concat([auth, key, ready]));
      sock.once('data', () => {
        sock.pause();
        setTimeout(() => sock.destroy(), hangUpMs);
      });
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

t.test('a client paused by a full backend socket is read again when that backend hangs up', async (t) => {
  const source = await startPg(t, 14);
  const port = await stallingBackend(t, 500);
  const proxy = await startProxy(t, source.url(), `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable`, { state: 'READS_100PCT_AURORA' });
  const c = new pg.Client({ connectionString: proxy.url() });
  await c.connect();
  t.teardown(() => c.end().catch(() => {}));
  // 16 MB of query text: more than the loopback socket buffers hold while the stand-in reads nothing.
  const big = `select length('${'x'.repeat(16 * 1024 * 1024)}') as n`;
  const r = await c.query(big);
  t.equal(r.rows[0].n, 16 * 1024 * 1024, 'the read was retried on the source and answered');
  const next = await Promise.race([c.query('select 42 as v'), new Promise<never>((_, rej) => setTimeout(() => rej(new Error('the next query hung')), 5000))]);
  t.equal(next.rows[0].v, 42, 'the next query is read and answered');
  t.ok(proxy.proxy.stats.targetFallbacks >= 1, 'counted as a target fallback');
});
