/**
 * The demo's pair: an embedded PostgreSQL 14 source and 15 target with the `shop` schema (seeded on the
 * source), the demo roles, native logical replication source → target, and a sidecar in front of them.
 * `pg-cutover demo` and `pg-cutover demo --walkthrough` both start it here.
 */
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import { startEmbeddedPostgres, type EmbeddedPg } from './embedded.js';
import { createDatabase, createShopSchema, seedShop } from './schema.js';
import { loadStartConfig } from '../config/load.js';
import { startSidecar, type Sidecar } from '../sidecar.js';
import { setupNativeReplication } from '../replication/native.js';
import { createDemoRoles, DEMO_APP_ROLE, DEMO_CONTROL_ROLE, withUser } from './roles.js';

export interface PairOptions {
  /** Orders seeded on the source. */
  scale: number;
  listen: string;
  admin: string;
  /** --time-scale of the sidecar: stage guards of hours and days become seconds. */
  timeScale: string;
  /** More tables (and rows, on the source) before the roles are granted and replication starts. */
  prepare?: (c: pg.Client, side: 'source' | 'target') => Promise<void>;
  /**
   * The port the proxy's application links reach the target on, given the target's own port (a relay in
   * front of it, so a walkthrough can cut the application path). Default: the target's port.
   */
  targetAppPort?: (port: number) => Promise<number>;
  /** More sidecar options (config schema keys). */
  sidecar?: Record<string, string>;
  say: (m: string) => void;
}

export interface DemoPair {
  readonly source: EmbeddedPg;
  readonly target: EmbeddedPg;
  readonly sidecar: Sidecar;
  /** postgres:// URL of the proxy as the application role. */
  readonly proxyUrl: string;
  readonly adminUrl: string;
  /** Control-plane (never fenced) URLs of the shop database on each side. */
  readonly sourceControl: string;
  readonly targetControl: string;
  readonly subscription: string;
  readonly snapshotFile: string;
}

/**
 * Starts everything; `track` receives each thing to stop as soon as it exists, so a failure halfway (or a
 * signal) still stops what was started (stopPair).
 */
export async function startPair(o: PairOptions, track: (p: Partial<DemoPair> & { servers: EmbeddedPg[] }) => void): Promise<DemoPair> {
  if (!Number.isInteger(o.scale) || o.scale < 0) throw new Error(`--scale must be a whole number, got ${o.scale}`);
  const snapshotFile = join(tmpdir(), `pg-cutover-demo-${process.pid}.dump`);
  const servers: EmbeddedPg[] = [];
  track({ servers, snapshotFile });
  o.say('starting PostgreSQL 14 (source) and PostgreSQL 15 (target)...');
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
        o.say(`seeding shop on the source (${o.scale} orders)...`);
        await seedShop(c, { scale: o.scale });
      }
      await o.prepare?.(c, s === source ? 'source' : 'target');
    } finally {
      await c.end();
    }
    await createDemoRoles(s.url('postgres'), 'shop', 'demo');
  }
  // The proxy logs in as an application role, the control plane as its own: the fence can then work.
  const app = (s: EmbeddedPg, port = s.port) => withUser(s.url('shop').replace(`:${s.port}/`, `:${port}/`), DEMO_APP_ROLE, 'demo');
  const control = (s: EmbeddedPg) => withUser(s.url('shop'), DEMO_CONTROL_ROLE, 'demo');
  // The target fills by native logical replication (publication + subscription), not by copying.
  o.say('starting logical replication source → target...');
  const rep = await setupNativeReplication(control(source), control(target), { copySchema: false });
  if (!rep.ok) throw new Error(`replication setup failed: ${rep.errors.join('; ')}`);
  const targetPort = o.targetAppPort ? await o.targetAppPort(target.port) : target.port;
  const cfg = loadStartConfig(
    {
      source: app(source),
      target: app(target, targetPort),
      sourceControl: control(source),
      targetControl: control(target),
      listen: o.listen,
      admin: o.admin,
      subscription: rep.value.subscription,
      timeScale: o.timeScale,
      gate3MinShadowed: '100',
      // Phase 4 in a demo: the final gate's stability window is 7 days (60 s at 0.0001) instead of 90,
      // and `pg-cutover snapshot` archives the source to a local file.
      stabilityDays: '7',
      snapshotTo: snapshotFile,
      historyIntervalMs: '2000',
      ...o.sidecar,
    },
    {},
  );
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  const s = await startSidecar(cfg.value, {});
  if (!s.ok) throw new Error(s.errors.join('; '));
  const sidecar = s.value;
  track({ servers, snapshotFile, sidecar });
  return {
    source,
    target,
    sidecar,
    proxyUrl: `postgres://${DEMO_APP_ROLE}:demo@${sidecar.listen.host}:${sidecar.listen.port}/shop`,
    adminUrl: `http://${sidecar.admin.host}:${sidecar.admin.port}`,
    sourceControl: control(source),
    targetControl: control(target),
    subscription: rep.value.subscription,
    snapshotFile,
  };
}

/** Stops what `startPair` started (any part of it), removes the temporary data. */
export async function stopPair(p: Partial<DemoPair> & { servers?: EmbeddedPg[] }): Promise<void> {
  await p.sidecar?.stop(2000);
  await Promise.allSettled([...(p.servers ?? []).map((s) => s.stop()), p.snapshotFile ? rm(p.snapshotFile, { force: true }) : undefined]);
}
