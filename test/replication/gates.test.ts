import t from 'tap';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pgbench, startPg } from '../helpers/servers.js';
import { createShopSchema, seedShop } from '../../src/demo/schema.js';
import { connectControl } from '../../src/replication/control-conn.js';
import { setupNativeReplication } from '../../src/replication/native.js';
import { waitForCaughtUp } from '../../src/replication/apply-wait.js';
import { runGate1 } from '../../src/replication/gate1.js';
import { runGate2 } from '../../src/replication/gate2.js';
import { formatGate, type GateResult } from '../../src/domain/gate-result.js';

const [src, dst] = await Promise.all([startPg(t, 14, { logical: true }), startPg(t, 15, { logical: true })]);
const s = await connectControl(src.url());
const d = await connectControl(dst.url());
t.teardown(() => Promise.all([s.end(), d.end()]));
await createShopSchema(s);
const seeded = await seedShop(s, { scale: 20_000 });
const setup = await setupNativeReplication(src.url(), dst.url());
if (!setup.ok) throw new Error(setup.errors.join('\n'));
const caughtUp = await waitForCaughtUp(s, d, 'pgcutover', { timeoutMs: 45_000 });
if (!caughtUp.ok) throw new Error('replication did not catch up');

const find = (g: GateResult, name: string) => g.criteria.find((c) => c.name === name);

t.test('gate 1 on a healthy pair: every criterion measured, passes with TLS not required', async (t) => {
  const g = await runGate1(src.url(), dst.url(), { requireTls: false, latencyP50Ms: 5, latencyP99Ms: 50 });
  t.comment(formatGate(g));
  t.ok(g.passed, 'passed');
  for (const name of ['source reachable', 'target reachable', 'pg_settings differences outside the allow-list', 'source round trip p50 (ms)',
    'target round trip p99 (ms)', 'source TLS', 'target superusers', 'source login roles', 'source login roles missing on the target',
    'target pg_hba trust rules over TCP', 'target wal_level (reverse replication after the switch)']) {
    t.ok(find(g, name), `criterion: ${name}`);
  }
  t.match(find(g, 'pg_settings differences outside the allow-list')?.detail, /version defaults: .*hash_mem_multiplier: 1 → 2/);
  t.equal(find(g, 'source superusers')?.measured, 'postgres');
});

t.test('gate 1 fails on TLS, an unexpected setting and a role missing on the target, and says which', async (t) => {
  await d.query(`ALTER SYSTEM SET work_mem = '12MB'`);
  await d.query('SELECT pg_reload_conf()');
  await s.query(`CREATE ROLE shop_app LOGIN PASSWORD 'x'`);
  t.teardown(async () => {
    await d.query('ALTER SYSTEM RESET work_mem');
    await d.query('SELECT pg_reload_conf()');
    await s.query('DROP ROLE shop_app');
  });
  await new Promise((r) => setTimeout(r, 200)); // reload is asynchronous
  const g = await runGate1(src.url(), dst.url(), { latencyP50Ms: 5, latencyP99Ms: 50, expectedSuperusers: ['postgres'] });
  t.comment(formatGate(g));
  t.notOk(g.passed);
  t.equal(find(g, 'source TLS')?.passed, false, 'TLS off is a failure by default');
  const settings = find(g, 'pg_settings differences outside the allow-list');
  t.equal(settings?.measured, 1);
  t.match(settings?.detail, /work_mem: 4096 → 12288/);
  t.equal(find(g, 'source login roles missing on the target')?.measured, 'shop_app');
  t.equal(find(g, 'target superusers')?.passed, true);
});

t.test('gate 2 passes on the replicated pair while pgbench writes to the source', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgc-gate2-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'w.sql');
  await fs.writeFile(script, [
    '\\set id random(1, 20000)',
    "UPDATE orders SET status = CASE WHEN status = 'paid' THEN 'shipped' ELSE 'paid' END, updated_at = now() WHERE id = :id;",
    "INSERT INTO transactions (order_id, amount, provider, provider_ref) VALUES (:id, 1.00, 'stripe', 'bench-' || :id || '-' || random());",
    '',
  ].join('\n'));
  // Rate-limited, spread over the whole table, inserting at the tail: live traffic, not a stress test.
  const writes = pgbench(['-n', '-f', script, '-c', '2', '-R', '100', '-T', '6', src.url()], { timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 500));
  const progress: number[] = [];
  const g = await runGate2(src.url(), dst.url(), { chunkRows: 2000, concurrency: 3, lagWindowMs: 3000, onProgress: (p) => progress.push(p.doneChunks) });
  const bench = await writes;
  t.equal(bench.code, 0, bench.stderr.slice(-500));
  t.comment(formatGate(g));
  t.ok(g.passed, 'passed under live writes');
  t.ok(progress.length >= 25, `progress reported per chunk (${progress.length})`);
  t.match(find(g, 'rows users')?.measured, `source ${seeded.users}, target ${seeded.users}`);
  t.match(find(g, 'checksum orders')?.measured, /^(\d+)\/\1 chunks equal$/);
  t.equal(find(g, 'tables without a replica identity')?.measured, 0);
  t.ok((find(g, 'replication lag max over the window (s)')?.measured as number) < 10);
  t.equal(find(g, 'replication errors during the check')?.measured, 0);
  t.notOk(g.criteria.some((c) => c.name.includes('pgcutover_heartbeat')), 'the heartbeat table is not compared');
});

t.test('gate 2 resumes from its state file after an interruption, and removes it when done', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgc-gate2-state-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const stateFile = path.join(dir, 'gate2.json');
  let seen = 0;
  await t.rejects(runGate2(src.url(), dst.url(), {
    chunkRows: 2000, concurrency: 1, lagWindowMs: 0, stateFile,
    onProgress: () => {
      if (++seen === 10) throw new Error('interrupted');
    },
  }), /interrupted/);
  const saved = JSON.parse(await fs.readFile(stateFile, 'utf8'));
  t.equal(Object.keys(saved.done).length, 10, 'ten finished chunks recorded');
  t.notMatch(JSON.stringify(saved), /postgres:postgres/, 'no credentials in the state file');
  const resumed: number[] = [];
  const g = await runGate2(src.url(), dst.url(), { chunkRows: 2000, concurrency: 1, lagWindowMs: 0, stateFile, onProgress: (p) => resumed.push(p.resumed) });
  t.ok(g.passed, 'the resumed run passes');
  t.equal(resumed[0], 10, 'ten chunks taken from the earlier run');
  await t.rejects(fs.stat(stateFile), { code: 'ENOENT' }, 'state file removed on completion');
});

t.test('gate 2 fails after rows change directly on the target, naming table, key range and rows', async (t) => {
  await d.query(`UPDATE orders SET note = 'tampered' WHERE id = 12345`);
  await d.query(`DELETE FROM transactions WHERE id = 777`);
  await d.query(`INSERT INTO users (id, email, full_name) VALUES (999999, 'ghost@example.com', 'Ghost')`);
  await s.query('CREATE TABLE audit_log (at timestamptz, what text)');
  await d.query('CREATE TABLE audit_log (at timestamptz, what text)');
  const g = await runGate2(src.url(), dst.url(), { chunkRows: 2000, concurrency: 3, lagWindowMs: 1000, tables: ['users', 'orders', 'transactions', 'audit_log'] });
  t.comment(formatGate(g));
  t.notOk(g.passed);
  const orders = find(g, 'checksum orders');
  t.equal(orders?.passed, false);
  t.match(orders?.detail, /id in \(1\d{4}, 1\d{4}\]: id=12345 differs: source \(12345,.*\) \/ target \(12345,.*tampered/);
  t.equal(find(g, 'rows orders')?.passed, true, 'an UPDATE keeps the count');
  const tx = find(g, 'checksum transactions');
  t.match(tx?.detail, /id in \(-∞, \d+\]: id=777 missing on target/);
  t.match(find(g, 'rows transactions')?.measured, /source (\d+), target (?!\1)\d+/);
  t.match(find(g, 'checksum users')?.detail, /id in \(\d+, \+∞\): id=999999 only on target/, 'the open last range catches rows beyond the source');
  t.equal(find(g, 'tables without a replica identity')?.measured, 1);
  t.match(find(g, 'tables without a replica identity')?.detail, /audit_log/);
});

t.test('under live inserts at the tail, a row only the target has beyond the source\'s last key is still found', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pgc-gate2-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'ins.sql');
  await fs.writeFile(script, "INSERT INTO transactions (order_id, amount, provider, provider_ref) VALUES (1, 1.00, 'adyen', 'tail-' || random());\n");
  await d.query(`INSERT INTO transactions (id, order_id, amount, provider, provider_ref) VALUES (9000000, 1, 1.00, 'paypal', 'ghost')`);
  const writes = pgbench(['-n', '-f', script, '-c', '2', '-R', '200', '-T', '4', src.url()], { timeoutMs: 60_000 });
  await new Promise((r) => setTimeout(r, 500));
  const g = await runGate2(src.url(), dst.url(), { chunkRows: 5000, lagWindowMs: 500, tables: ['transactions'] });
  await writes;
  t.comment(formatGate(g));
  const tx = find(g, 'checksum transactions');
  t.equal(tx?.passed, false);
  t.match(tx?.detail, /id=9000000 only on target/);
  t.match(tx?.detail, /id=777 missing on target/, 'and the earlier deletion');
  t.notMatch(tx?.detail, /unstable/, 'the growing tail is compared up to the source\'s last key, so it settles');
});
