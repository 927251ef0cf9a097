/**
 * Zero data loss through the proxy over the whole path: writers through pg-cutover while the state moves
 * SOURCE_PRIMARY → … → SHADOW_WRITES → WRITES_TO_AURORA (the write switchover) → ROLLBACK → SOURCE_PRIMARY.
 * A client-side ledger records every acknowledged write; afterwards each one is on the source, and source
 * and target hold the same rows.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query, tableChecksum, waitCaughtUp, waitSynced } from '../helpers/replication.js';
import { setupNativeReplication, resumeNativeReplication } from '../../src/replication/native.js';
import type { CutoverState } from '../../src/control/states.js';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
const appUrl = (s: typeof source) => `postgresql://app:app@127.0.0.1:${s.port}/postgres`;

await query(source.url(), "create role app login password 'app'");
await query(target.url(), "create role app login password 'app'");
await query(source.url(), 'create table ledger (id bigint generated always as identity primary key, client int not null, seq int not null, at timestamptz not null default now(), unique (client, seq))');
await query(source.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');
const setup = await setupNativeReplication(source.url(), target.url(), { tables: ['ledger'] });
if (!setup.ok) throw new Error(setup.errors.join('; '));
await waitSynced(target.url());
await query(target.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');

const proxy = await startProxy(t, appUrl(source), appUrl(target), {
  sourceControl: source.url(),
  targetControl: target.url(),
  subscription: setup.value.subscription,
  timeScale: '0.000001',
  gate3MinShadowed: 0,
  shadowSamplePct: 20,
}, { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'app', password: 'app', method: 'scram-sha-256' }] }) });

t.test('every acknowledged write survives switchover and rollback', async (t) => {
  const acked: [number, number][] = [];
  let stop = false;
  let errors = 0;
  const codes = new Map<string, number>();
  const writer = async (client: number) => {
    const c = new pg.Client({ connectionString: proxy.url('postgres', 'app', 'app') });
    c.on('error', () => {});
    await c.connect();
    let seq = 0;
    while (!stop) {
      seq++;
      for (;;) {
        try {
          await c.query('insert into ledger (client, seq) values ($1, $2)', [client, seq]);
          acked.push([client, seq]);
          break;
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === '23505') break; // an earlier attempt did land
          errors++;
          codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
          if (stop) break;
          await new Promise((r) => setTimeout(r, 20));
          if (!(c as unknown as { _connected?: boolean })._connected || code === '57P01' || code === '08006') return writer(client * 100 + seq);
        }
      }
    }
    await c.end().catch(() => {});
  };
  const writers = [1, 2, 3, 4].map(writer);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(400);
  for (const to of ['READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES', 'WRITES_TO_AURORA'] as CutoverState[]) {
    const o = await proxy.controller.transition({ to, reason: 'zero-loss test', force: true, by: 'test' });
    t.ok(o.ok, `→ ${to}${o.ok ? '' : `: ${o.reason}`}`);
    if (!o.ok) break;
    await sleep(400);
  }
  const onTargetOnly = (await query(target.url(), 'select count(*)::int as n from ledger')).rows[0].n;
  t.ok(onTargetOnly > 0, `writes landed on the target after the switchover (${onTargetOnly} rows there)`);
  const rb = await proxy.controller.rollback('zero-loss test rollback', 'test');
  t.ok(rb.ok, `→ ROLLBACK ${rb.ok ? '' : rb.reason}`);
  for (let i = 0; i < 300 && proxy.state() !== 'SOURCE_PRIMARY'; i++) await sleep(100);
  t.equal(proxy.state(), 'SOURCE_PRIMARY', 'the rollback procedure finished');
  await sleep(300);
  stop = true;
  await Promise.all(writers);
  t.ok(acked.length > 100, `${acked.length} acknowledged writes (${errors} retried errors: ${JSON.stringify([...codes])})`);

  const rows = (await query(source.url(), 'select client, seq from ledger')).rows as { client: number; seq: number }[];
  const have = new Set(rows.map((r) => `${r.client}:${r.seq}`));
  const lost = acked.filter(([c, s]) => !have.has(`${c}:${s}`));
  t.same(lost, [], 'every acknowledged write is on the source');

  const audit = (await proxy.controller['d'].store.audit(100)) as { kind: string; reason?: string; detail?: Record<string, unknown> }[];
  const sw = audit.find((a) => a.kind === 'switchover');
  t.ok(sw, 'the switchover is in the audit log');
  t.comment(`write pause during switchover: ${JSON.stringify(sw?.detail?.pauseMs)} ms`);
  t.ok(audit.filter((a) => a.kind === 'rollback-step').length >= 5, 'the rollback steps are in the audit log');

  const resumed = await resumeNativeReplication(target.url(), { subscription: setup.value.subscription });
  t.ok(resumed.ok, 'forward replication resumed');
  await waitCaughtUp(source, 30_000);
  t.equal(await tableChecksum(target.url(), 'ledger', 'id'), await tableChecksum(source.url(), 'ledger', 'id'), 'source and target hold the same rows');
});
