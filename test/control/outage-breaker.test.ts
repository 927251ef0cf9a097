/**
 * Issue 16, item 3: the target goes down in WRITES_TO_AURORA while a client pool that backs off keeps
 * retrying (connection failures, far fewer attempts than the breaker's minimum sample count per window). The
 * error-rate breaker trips and the sidecar starts the rollback by itself. (With the target still unreachable
 * the rollback halts before unfencing the source: it cannot confirm the target's last writes reached it.)
 *
 * The outage is a TCP relay in front of the target that refuses and cuts connections, then lets them through
 * again (the embedded server itself cannot be restarted in place).
 */
import t from 'tap';
import net from 'node:net';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query, waitSynced } from '../helpers/replication.js';
import { setupNativeReplication } from '../../src/replication/native.js';
import type { CutoverState } from '../../src/control/states.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP relay to `port` that can be cut (refuse new, destroy open) and restored. */
async function relay(port: number) {
  let up = true;
  const open = new Set<net.Socket>();
  const server = net.createServer((c) => {
    if (!up) return c.destroy();
    const b = net.connect(port, '127.0.0.1');
    open.add(c).add(b);
    const end = () => {
      c.destroy();
      b.destroy();
      open.delete(c);
      open.delete(b);
    };
    c.on('error', end).on('close', end);
    b.on('error', end).on('close', end);
    c.pipe(b).pipe(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      up = false;
      for (const s of open) s.destroy();
    },
    restore() {
      up = true;
    },
    close: () => new Promise<void>((r) => (server.close(() => r()), [...open].forEach((s) => s.destroy()))),
  };
}

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
const gap = await relay(target.port);
t.teardown(() => gap.close());
const viaRelay = (url: string) => url.replace(`:${target.port}/`, `:${gap.port}/`);

// The proxy logs in as a non-superuser application role (the write fence needs one); the control plane as postgres.
const appUrl = (port: number) => `postgresql://app:app@127.0.0.1:${port}/postgres`;
for (const u of [source.url(), target.url()]) await query(u, "create role app login password 'app'");
await query(source.url(), 'create table ledger (id bigint generated always as identity primary key, client int not null, seq int not null, unique (client, seq))');
await query(source.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');
const setup = await setupNativeReplication(source.url(), target.url(), { tables: ['ledger'] });
if (!setup.ok) throw new Error(setup.errors.join('; '));
await waitSynced(target.url());
await query(target.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');

const proxy = await startProxy(t, appUrl(source.port), appUrl(gap.port), {
  sourceControl: source.url(),
  targetControl: viaRelay(target.url()),
  subscription: setup.value.subscription,
  timeScale: '0.001',
  gate3MinShadowed: 0,
  sidecarId: 'outage-test',
}, { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'app', password: 'app', method: 'scram-sha-256' }] }) });

t.test('target down in WRITES_TO_AURORA under a backing-off pool: the breaker trips, the rollback runs', async (t) => {
  const acked: string[] = [];
  const codes = new Map<string, number>();
  let stop = false;
  /** One pooled client: on failure it backs off 1 s (a typical pool retry), then reconnects. */
  const client = async (id: number) => {
    let seq = 0;
    while (!stop) {
      const c = new pg.Client({ connectionString: proxy.url('postgres', 'app', 'app'), connectionTimeoutMillis: 2000 });
      c.on('error', () => {});
      try {
        await c.connect();
        while (!stop) {
          seq++;
          try {
            await c.query('insert into ledger (client, seq) values ($1, $2)', [id, seq]);
            acked.push(`${id}:${seq}`);
          } catch (e) {
            const code = (e as { code?: string }).code ?? 'none';
            if (code === '23505') continue; // an earlier attempt did land
            throw e;
          }
          await sleep(20);
        }
      } catch (e) {
        const code = (e as { code?: string }).code ?? 'connection';
        codes.set(code, (codes.get(code) ?? 0) + 1);
        await sleep(1000);
      } finally {
        await c.end().catch(() => {});
      }
    }
  };
  const pool = [1, 2, 3].map(client);
  for (const to of ['READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES', 'WRITES_TO_AURORA'] as CutoverState[]) {
    const o = await proxy.controller.transition({ to, reason: 'outage test', force: true, by: 'test' });
    t.ok(o.ok, `${to}: ${o.ok ? 'ok' : o.reason}`);
    await sleep(300);
  }
  await sleep(1000);
  const before = acked.length;
  t.ok(before > 0, `writes acknowledged on the target before the outage (${before})`);

  gap.cut();
  const cutAt = Date.now();
  const deadline = Date.now() + 60_000;
  while (proxy.controller.snapshot().state === 'WRITES_TO_AURORA' && Date.now() < deadline) await sleep(50);
  const state = proxy.controller.snapshot().state;
  t.comment(`state ${state} ${Date.now() - cutAt} ms after the cut; client errors ${JSON.stringify([...codes])}`);
  t.equal(state, 'ROLLBACK', 'the error-rate breaker rolled back');
  const audit = (await (await fetch(`${proxy.adminUrl}/audit?limit=100`)).json()) as { entries: { kind: string; by: string; detail?: Record<string, unknown> }[] };
  const trip = audit.entries.find((e) => e.kind === 'breaker' && e.by === 'breaker:error-rate');
  t.ok(trip, 'breaker trip audited');
  t.comment(JSON.stringify(trip?.detail));

  // The target is unreachable, so the rollback cannot confirm that reverse replication brought every write made
  // there to the source: it stops before unfencing the source and stays in ROLLBACK for an operator. It must not
  // pretend (SOURCE_PRIMARY with the target's last writes missing on the source).
  await sleep(1500);
  t.equal(proxy.controller.snapshot().state, 'ROLLBACK', 'halted in ROLLBACK while the target is unreachable');
  const steps = ((await (await fetch(`${proxy.adminUrl}/audit?limit=100`)).json()) as typeof audit).entries.filter((e) => e.kind === 'rollback-step');
  t.ok(steps.length >= 2, `rollback steps audited (${steps.length})`);
  // Writes stay parked while the rollback is halted; the sidecar's teardown ends those clients.
  stop = true;
  gap.restore();
  void Promise.all(pool);
});
