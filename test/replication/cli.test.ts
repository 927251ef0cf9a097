import t from 'tap';
import { Command } from 'commander';
import { startPg } from '../helpers/servers.js';
import { registerReplicationCommands } from '../../src/cli/replication.js';
import { connectControl } from '../../src/replication/control-conn.js';
import { waitForCaughtUp } from '../../src/replication/apply-wait.js';

const [src, dst] = await Promise.all([startPg(t, 14, { logical: true }), startPg(t, 15, { logical: true })]);
const s = await connectControl(src.url());
t.teardown(() => s.end());
await s.query(`CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL); INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 5000) i;`);

async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  let code = 0;
  const program = new Command('pg-cutover').exitOverride();
  registerReplicationCommands(program, { out: (x) => void (out += x), err: (x) => void (err += x), setExitCode: (c) => void (code = c), progressTTY: false });
  await program.parseAsync(['node', 'pg-cutover', ...args, '--source', src.url(), '--target', dst.url()]);
  return { out, err, code };
}

t.test('replicate setup, status, pause, resume, validate, teardown', async (t) => {
  const setup = await run('replicate', 'setup');
  t.equal(setup.code, 0, setup.err);
  t.match(setup.out, /created publication pgcutover \(source\) and subscription pgcutover \(target\)/);
  t.match(setup.out, /schema copied to the target: items\n/, 'the heartbeat table is created by pg-cutover itself, not copied');
  const d = await connectControl(dst.url());
  t.teardown(() => d.end());
  t.ok((await waitForCaughtUp(s, d, 'pgcutover', { timeoutMs: 30_000 })).ok, 'caught up');

  const status = await run('replicate', 'status');
  t.equal(status.code, 0);
  t.match(status.out, /subscription pgcutover: enabled, apply worker \d+/);
  t.match(status.out, /items\s+r\s+ready/);
  const js = JSON.parse((await run('replicate', 'status', '--json')).out);
  t.equal(js.ok, true);
  t.equal(js.subscription.tables.length, 2);

  t.match((await run('replicate', 'pause')).out, /subscription pgcutover disabled/);
  t.match((await run('replicate', 'status')).out, /DISABLED \(paused\)/);
  t.match((await run('replicate', 'resume')).out, /subscription pgcutover enabled/);
  t.ok((await waitForCaughtUp(s, d, 'pgcutover', { timeoutMs: 30_000 })).ok, 'resumed and caught up');

  const v = await run('validate', '--gate', '2', '--chunk-rows', '1000');
  t.equal(v.code, 0, v.out + v.err);
  t.match(v.out, /Gate 2: PASSED/);
  t.match(v.out, /checksum items\s+6\/6 chunks equal\s+all chunks\s+PASS/);

  await d.query(`UPDATE items SET name = 'changed on the target' WHERE id = 4321`);
  const bad = await run('validate', '--gate', '2', '--chunk-rows', '1000', '--json');
  t.equal(bad.code, 1, 'exit code 1 on a failed gate');
  const res = JSON.parse(bad.out);
  t.equal(res.passed, false);
  const crit = res.gates[0].criteria.find((c: { name: string }) => c.name === 'checksum items');
  t.match(crit.detail, /id in \(4000, 5000\]: id=4321 differs/);

  const g1 = await run('validate', '--gate', '1', '--no-require-tls', '--latency-p50-ms', '50', '--latency-p99-ms', '500');
  t.equal(g1.code, 0, g1.out);
  t.match(g1.out, /Gate 1: PASSED/);

  const down = await run('replicate', 'teardown');
  t.match(down.out, /subscription dropped, slot dropped, publication dropped/);
  const none = await run('replicate', 'pause');
  t.equal(none.code, 1);
  t.match(none.err, /no subscription pgcutover on the target/);
});

t.test('setup against a source without wal_level=logical exits 1 with the reason', async (t) => {
  const plain = await startPg(t, 14);
  let err = '';
  let code = 0;
  const program = new Command('pg-cutover').exitOverride();
  registerReplicationCommands(program, { out: () => undefined, err: (x) => void (err += x), setExitCode: (c) => void (code = c) });
  await program.parseAsync(['node', 'pg-cutover', 'replicate', 'setup', '--source', plain.url(), '--target', dst.url()]);
  t.equal(code, 1);
  t.match(err, /wal_level = replica; logical replication needs wal_level = logical/);
});
