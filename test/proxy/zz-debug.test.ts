import t from 'tap';
import pg from 'pg';
import { startPg, psql } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url(), {logLevel: 'debug'});
t.test('x', async (t) => {
  for (const n of [100, 1000, 5000, 20000, 50000]) {
    const r = await psql(proxy.url(), `select count(*) from (select i, repeat(md5(i::text), 20) as pad from generate_series(1, ${n}) i) x`, {timeoutMs: 10000});
    console.error('psql count', n, r.code, r.stdout.trim());
    const r2 = await psql(proxy.url(), `select i, repeat(md5(i::text), 20) as pad from generate_series(1, ${n}) i`, {timeoutMs: 10000});
    console.error('psql', n, r2.code, r2.stdout.length, r2.stderr.slice(0,200), r2.signal);
  }
});
