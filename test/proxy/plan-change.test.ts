/**
 * A named statement whose result type changed (ALTER COLUMN … TYPE) after it was prepared: PostgreSQL answers
 * its next use with 0A000 "cached plan must not change result type" from the cached plan. Through the proxy the
 * statement was prepared on the target (a read in READS_100PCT) and its next use runs on the source (a read
 * right after the session's write stays on the writer), where the proxy re-Parses it: it must still get 0A000,
 * not a fresh plan returning the new type (issue 15). Compared with the same session run directly.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url(), { state: 'READS_100PCT_AURORA' });

async function onBoth(sql: string): Promise<void> {
  for (const s of [source, target]) {
    const c = new pg.Client({ connectionString: s.url() });
    await c.connect();
    await c.query(sql);
    await c.end();
  }
}

/** One session: prepare `getv`, maybe change the column's type on both servers, write, use `getv` twice. */
async function session(url: string, alter: boolean): Promise<{ out: string[]; ports: number[] }> {
  await onBoth('drop table if exists pc; create table pc (id int primary key, v int); insert into pc values (1, 42); create table if not exists pc_w (n int)');
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const port = async () => Number((await c.query('select inet_server_port() as p')).rows[0].p);
  const q = { name: 'getv', text: 'select v from pc where id = $1', values: [1] };
  const ports = [await port()];
  const out = [JSON.stringify((await c.query(q)).rows[0])];
  if (alter) await onBoth('alter table pc alter column v type text');
  await c.query('insert into pc_w values (1)');
  ports.push(await port());
  for (let i = 0; i < 2; i++) {
    try {
      const r = await c.query(q);
      out.push(`${JSON.stringify(r.rows[0])} type ${r.fields[0].dataTypeID}`);
    } catch (e) {
      const err = e as { code?: string; message: string };
      out.push(`${err.code} ${err.message}`);
    }
  }
  await c.end();
  return { out, ports };
}

t.test('after ALTER COLUMN TYPE: 0A000 from the cached plan, as directly', async (t) => {
  const direct = await session(source.url(), true);
  t.strictSame(direct.out, ['{"v":42}', '0A000 cached plan must not change result type', '0A000 cached plan must not change result type'], 'PostgreSQL directly');
  const proxied = await session(proxy.url(), true);
  t.strictSame(proxied.ports, [target.port, source.port], 'prepared on the target, used next on the source');
  t.strictSame(proxied.out, direct.out);
});

t.test('without a type change the statement is re-Parsed and answers as directly', async (t) => {
  const direct = await session(source.url(), false);
  t.strictSame(direct.out, ['{"v":42}', '{"v":42} type 23', '{"v":42} type 23']);
  const proxied = await session(proxy.url(), false);
  t.strictSame(proxied.ports, [target.port, source.port]);
  t.strictSame(proxied.out, direct.out);
});
