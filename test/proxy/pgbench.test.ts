/**
 * pgbench through the proxy: -i (DDL + COPY FROM STDIN + VACUUM), then select-only (-S) and TPC-B with
 * every query protocol (-M simple|extended|prepared), 4 clients, 3 s each: no failed transaction, and the
 * proxy's statement counters show the traffic went through it to the source only.
 */
import t from 'tap';
import pg from 'pg';
import { pgbench, psql, startPg, type ExecResult } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';

const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url());
const url = proxy.url();

interface Summary {
  processed: number;
  failed: number;
  tps: number;
}

function summary(r: ExecResult): Summary {
  const processed = /number of transactions actually processed: (\d+)/.exec(r.stdout);
  const failed = /number of failed transactions: (\d+)/.exec(r.stdout);
  const tps = /tps = ([\d.]+)/.exec(r.stdout);
  return { processed: Number(processed?.[1] ?? -1), failed: Number(failed?.[1] ?? -1), tps: Number(tps?.[1] ?? 0) };
}

t.test('pgbench -i through the proxy', async (t) => {
  const r = await pgbench(['-i', '-s', '1', '-q', url], { timeoutMs: 60_000 });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /done in/);
  const n = await psql(url, 'select count(*) from pgbench_accounts');
  t.equal(n.stdout.trim(), '100000', 'COPY FROM STDIN loaded every account row');
});

for (const mode of ['simple', 'extended', 'prepared'] as const) {
  for (const workload of ['select-only', 'tpcb-like'] as const) {
    t.test(`pgbench -M ${mode} -b ${workload}, 4 clients × 200 transactions`, async (t) => {
      const before = proxy.proxy.stats.statements.source;
      const r = await pgbench(['-M', mode, '-b', workload, '-c', '4', '-j', '2', '-t', '200', '-n', url], { timeoutMs: 60_000 });
      t.equal(r.code, 0, `exit 0\n${r.stderr.slice(-2000)}`);
      const s = summary(r);
      t.equal(s.failed, 0, 'zero failed transactions');
      t.equal(s.processed, 800, `every transaction processed (${s.tps} tps)`);
      t.notMatch(r.stderr, /aborted|error/i, 'no client aborted');
      // -S is one SELECT per transaction; TPC-B has 7 statements (BEGIN … END).
      const perTx = workload === 'select-only' ? 1 : 7;
      t.ok(proxy.proxy.stats.statements.source - before >= s.processed * perTx, 'every statement went through the proxy to the source');
    });
  }
}

t.test('pgbench -C (a new proxy connection per transaction)', async (t) => {
  const accepted = proxy.proxy.stats.clientsAccepted;
  const r = await pgbench(['-C', '-S', '-c', '4', '-t', '10', '-n', url], { timeoutMs: 60_000 });
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.equal(summary(r).processed, 40);
  t.ok(proxy.proxy.stats.clientsAccepted - accepted >= 40, 'one login per transaction');
});

t.test('the pgbench tables exist on the source only, and the TPC-B history is there', async (t) => {
  const src = new pg.Client({ connectionString: source.url() });
  const tgt = new pg.Client({ connectionString: target.url() });
  await src.connect();
  await tgt.connect();
  t.teardown(() => Promise.all([src.end(), tgt.end()]));
  const q = "select count(*)::int as n from pg_tables where tablename like 'pgbench_%'";
  t.equal((await src.query(q)).rows[0].n, 4, 'source has the 4 pgbench tables');
  t.equal((await tgt.query(q)).rows[0].n, 0, 'target has none');
  const h = await src.query('select count(*)::int as n from pgbench_history');
  t.ok(h.rows[0].n > 0, `TPC-B wrote ${h.rows[0].n} history rows on the source`);
  // TPC-B keeps the balances consistent: the sum over branches equals the sum over history.
  const b = await src.query(
    'select (select sum(bbalance) from pgbench_branches) as b, (select sum(tbalance) from pgbench_tellers) as t, (select sum(delta) from pgbench_history) as h',
  );
  t.equal(b.rows[0].b, b.rows[0].h, 'branch balances match history');
  t.equal(b.rows[0].t, b.rows[0].h, 'teller balances match history');
});

t.test('no backend sessions are left behind', async (t) => {
  const src = new pg.Client({ connectionString: source.url() });
  await src.connect();
  t.teardown(() => src.end());
  const deadline = Date.now() + 5_000;
  let n = -1;
  while (Date.now() < deadline) {
    n = (await src.query("select count(*)::int as n from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() and application_name not like 'pg-cutover-control%'")).rows[0].n;
    if (n === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(n, 0);
  t.equal(proxy.proxy.clientCount, 0);
});
