import t from 'tap';
import net from 'node:net';
import { pgbench, psql, startPg, startRedis } from '../helpers/servers.js';

function redisCommand(port: number, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(cmd + '\r\n'));
    let got = '';
    s.on('data', (b) => {
      got += b.toString();
      if (got.endsWith('\r\n')) (s.destroy(), resolve(got.trim()));
    });
    s.on('error', reject);
  });
}

t.test('startRedis runs a private redis-server without persistence and stops it', async (t) => {
  const r = await startRedis(t);
  t.match(r.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
  t.equal(await redisCommand(r.port, 'PING'), '+PONG');
  t.equal(await redisCommand(r.port, 'CONFIG GET save'), '*2\r\n$4\r\nsave\r\n$0');
  t.equal(await redisCommand(r.port, 'SET k v'), '+OK');
  await r.stop();
  await r.stop();
  await t.rejects(redisCommand(r.port, 'PING'), { code: 'ECONNREFUSED' });
});

t.test('psql and pgbench run against a real server', async (t) => {
  const s = await startPg(t, 14);
  const ok = await psql(s.url(), `SELECT 1 + 1, 'x'`);
  t.same([ok.code, ok.stdout], [0, '2|x\n']);
  const bad = await psql(s.url(), 'SELECT nope');
  t.equal(bad.code, 1);
  t.match(bad.stderr, /column "nope" does not exist/);
  const init = await pgbench(['-i', '-s', '1', '-q', s.url()]);
  t.equal(init.code, 0, `pgbench -i${init.code ? `: ${init.stderr}` : ''}`);
  const run = await pgbench(['-n', '-S', '-t', '50', '-c', '2', s.url()]);
  t.equal(run.code, 0, `pgbench -S${run.code ? `: ${run.stderr}` : ''}`);
  t.match(run.stdout, /number of transactions actually processed: 100\/100/);
  const slow = await psql(s.url(), 'SELECT pg_sleep(5)', { timeoutMs: 300 });
  t.equal(slow.signal, 'SIGKILL', 'killed at the timeout');
});
