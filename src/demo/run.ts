/**
 * `pg-cutover demo`: an embedded PostgreSQL 14 source and 15 target with the `shop` schema (seeded on the
 * source), and a sidecar in front of them. Stops everything and removes temp data on Ctrl-C / SIGTERM.
 */
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { startEmbeddedPostgres, type EmbeddedPg } from './embedded.js';
import { createDatabase, createShopSchema, seedShop } from './schema.js';
import { loadStartConfig } from '../config/load.js';
import { startSidecar, type Sidecar } from '../sidecar.js';
import { onSignals } from '../support/signals.js';
import { log } from '../support/log.js';
import { setupNativeReplication } from '../replication/native.js';
import { createDemoRoles, DEMO_APP_ROLE, DEMO_CONTROL_ROLE, withUser } from './roles.js';

export interface DemoOptions {
  scale: number;
  listen: string;
  admin: string;
  json: boolean;
}

export async function runDemo(o: DemoOptions): Promise<void> {
  if (!Number.isInteger(o.scale) || o.scale < 0) throw new Error(`--scale must be a whole number, got ${o.scale}`);
  const servers: EmbeddedPg[] = [];
  let sidecar: Sidecar | null = null;
  const snapshotFile = join(tmpdir(), `pg-cutover-demo-${process.pid}.dump`);
  const stop = async () => {
    await sidecar?.stop(2000);
    await Promise.allSettled([...servers.map((s) => s.stop()), rm(snapshotFile, { force: true })]);
  };
  void onSignals(stop);
  try {
    const say = (m: string) => {
      if (!o.json) console.error(m);
    };
    say('starting PostgreSQL 14 (source) and PostgreSQL 15 (target)...');
    const [source, target] = await Promise.all([
      startEmbeddedPostgres({ major: 14, logical: true, password: 'demo' }),
      startEmbeddedPostgres({ major: 15, logical: true, password: 'demo' }),
    ]);
    servers.push(source, target);
    for (const s of servers) {
      await createDatabase(s.url('postgres'), 'shop');
      const c = new pg.Client({ connectionString: s.url('shop') });
      await c.connect();
      try {
        await createShopSchema(c);
        if (s === source) {
          say(`seeding shop on the source (${o.scale} orders)...`);
          await seedShop(c, { scale: o.scale });
        }
      } finally {
        await c.end();
      }
      await createDemoRoles(s.url('postgres'), 'shop', 'demo');
    }
    // The proxy logs in as an application role, the control plane as its own: the fence can then work.
    const app = (s: EmbeddedPg) => withUser(s.url('shop'), DEMO_APP_ROLE, 'demo');
    const control = (s: EmbeddedPg) => withUser(s.url('shop'), DEMO_CONTROL_ROLE, 'demo');
    // The target fills by native logical replication (publication + subscription), not by copying.
    say('starting logical replication source → target...');
    const rep = await setupNativeReplication(control(source), control(target), { copySchema: false });
    if (!rep.ok) throw new Error(`replication setup failed: ${rep.errors.join('; ')}`);
    const cfg = loadStartConfig(
      {
        source: app(source),
        target: app(target),
        sourceControl: control(source),
        targetControl: control(target),
        listen: o.listen,
        admin: o.admin,
        subscription: rep.value.subscription,
        // Stage guards of hours and days become seconds, so the whole path can be walked in a demo.
        timeScale: '0.0001',
        gate3MinShadowed: '100',
        // Phase 4 in a demo: the final gate's stability window is 7 days (60 s scaled) instead of 90 (13 min),
        // and `pg-cutover snapshot` archives the source to a local file.
        stabilityDays: '7',
        snapshotTo: snapshotFile,
        historyIntervalMs: '2000',
      },
      {},
    );
    if (!cfg.ok) throw new Error(cfg.errors.join('; '));
    const s = await startSidecar(cfg.value, {});
    if (!s.ok) throw new Error(s.errors.join('; '));
    sidecar = s.value;
    const proxy = `postgres://${DEMO_APP_ROLE}:demo@${s.value.listen.host}:${s.value.listen.port}/shop`;
    const admin = `http://${s.value.admin.host}:${s.value.admin.port}`;
    if (o.json) {
      console.log(JSON.stringify({ proxy, source: source.url('shop'), target: target.url('shop'), admin }));
    } else {
      console.log(`
pg-cutover demo is running.

  proxy   ${proxy}
  source  ${source.url('shop')}   (PostgreSQL 14, superuser)
  target  ${target.url('shop')}   (PostgreSQL 15, superuser)
  roles   the proxy logs in as ${DEMO_APP_ROLE} (fenced on the old writer), the control plane as ${DEMO_CONTROL_ROLE}
  admin   ${admin}   (GET /healthz, /state, /metrics)

Try:
  psql '${proxy}' -c 'select count(*) from orders'
  npx pg-cutover status --admin ${admin}
  npx pg-cutover gate 2 --admin ${admin}                      # row counts and checksums, both sides
  npx pg-cutover transition READS_10PCT_AURORA --admin ${admin}
  pgbench -n -S -T 10 '${proxy}'                              # (after pgbench -i through the proxy)
  npx pg-cutover rollback --reason 'just looking' --admin ${admin}
  curl ${admin}/metrics
Phase 4, after walking to CUTOVER_COMPLETE (--force --reason … skips the scaled guards, recorded as deviations):
  npx pg-cutover gate final --admin ${admin}                  # fails: no snapshot yet
  npx pg-cutover snapshot --admin ${admin}                    # pg_dump -Fc of the source, verified
  npx pg-cutover decommission --dry-run --admin ${admin}
  npx pg-cutover report --out ./report --admin ${admin}       # report.md, report.html (opens offline)

Ctrl-C stops everything and removes the temporary data.`);
    }
  } catch (e) {
    log.error({ err: e }, 'demo failed');
    await stop();
    throw e;
  }
}
