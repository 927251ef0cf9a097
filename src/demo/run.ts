/**
 * `pg-cutover demo`: an embedded PostgreSQL 14 source and 15 target with the `shop` schema (seeded on the
 * source), and a sidecar in front of them. Stops everything and removes temp data on Ctrl-C / SIGTERM.
 */
import { onSignals } from '../support/signals.js';
import { log } from '../support/log.js';
import { DEMO_APP_ROLE, DEMO_CONTROL_ROLE } from './roles.js';
import { startPair, stopPair, type DemoPair } from './pair.js';
import type { EmbeddedPg } from './embedded.js';

export interface DemoOptions {
  scale: number;
  listen: string;
  admin: string;
  json: boolean;
  /** --time-scale of the sidecar. Default 0.0001: a day is 8.6 s. */
  timeScale?: string;
  /** More sidecar options (config schema keys). */
  sidecar?: Record<string, string>;
}

export async function runDemo(o: DemoOptions): Promise<void> {
  let parts: Partial<DemoPair> & { servers?: EmbeddedPg[] } = {};
  const stop = () => stopPair(parts);
  void onSignals(stop);
  try {
    const say = (m: string) => {
      if (!o.json) console.error(m);
    };
    const pair = await startPair(
      { scale: o.scale, listen: o.listen, admin: o.admin, timeScale: o.timeScale ?? '0.0001', say, ...(o.sidecar ? { sidecar: o.sidecar } : {}) },
      (p) => void (parts = p),
    );
    const { source, target } = pair;
    const proxy = pair.proxyUrl;
    const admin = pair.adminUrl;
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
The whole path, guided and without --force, on a pair of its own: npx pg-cutover demo --walkthrough
Phase 4, after walking to CUTOVER_COMPLETE (each stage waits its scaled guard; --force would be recorded as a deviation):
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
