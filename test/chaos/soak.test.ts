/**
 * Capacity and endurance (issue 17): many concurrent clients on one `pg-cutover start` process, then a soak
 * under steady load sampling the process's RSS and open descriptors. Short version (npm test): 200 clients
 * and ~12 s; full version (PGCUTOVER_LONG=1): 2,000 clients and 10 minutes, written to bench/RELIABILITY.md.
 * The fd limit: `npm run test:chaos` raises it with `ulimit -n`; the proxy needs ~2 descriptors per client.
 */
import t from 'tap';
import pg from 'pg';
import { startPg } from '../helpers/servers.js';
import { spawnSidecar, transpileCli } from '../helpers/sidecar-process.js';
import { LEDGER_DDL, Load, errorKind, lostWrites, openFds, rssMb } from '../helpers/chaos-load.js';
import { LONG, writeSection } from '../helpers/chaos-report.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLIENTS = LONG ? 2000 : 200;
const SOAK_MS = LONG ? 10 * 60_000 : 12_000;
const SAMPLE_MS = LONG ? 15_000 : 2_000;

// Every proxy session holds one source connection (the writer link opens at login).
const [bin, source, target] = await Promise.all([transpileCli(t), startPg(t, 14, { settings: { max_connections: String(CLIENTS + 100) } }), startPg(t, 15)]);
for (const db of [source, target]) {
  const c = new pg.Client({ connectionString: db.url() });
  await c.connect();
  await c.query(LEDGER_DDL);
  await c.end();
}
const sc = await spawnSidecar(t, bin, 'soak', ['--source', source.url(), '--target', target.url(), '--state', 'READS_50PCT_AURORA', '--max-clients', String(CLIENTS + 50)]);
const url = `postgresql://postgres:postgres@127.0.0.1:${sc.listenPort}/postgres`;
const pid = sc.proc.pid!;
const sections: string[] = [];

t.test(`${CLIENTS} concurrent clients`, async (t) => {
  const rssBefore = rssMb(pid);
  const fdsBefore = openFds(pid);
  const errors = new Map<string, number>();
  const clients: pg.Client[] = [];
  // Log in in waves of 100 (the whole herd at once mostly measures the SCRAM CPU cost of the test process).
  for (let i = 0; i < CLIENTS; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, CLIENTS - i) }, async () => {
        const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 30_000 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          clients.push(c);
        } catch (e) {
          errors.set(errorKind(e), (errors.get(errorKind(e)) ?? 0) + 1);
        }
      }),
    );
  }
  const connected = clients.length;
  let queried = 0;
  await Promise.all(
    clients.map(async (c) => {
      try {
        await c.query('select count(*) from chaos_ledger');
        queried++;
      } catch (e) {
        errors.set(errorKind(e), (errors.get(errorKind(e)) ?? 0) + 1);
      }
    }),
  );
  const rssPeak = rssMb(pid);
  const fdsPeak = openFds(pid);
  const late = new pg.Client({ connectionString: url });
  await late.connect();
  const lateOk = (await late.query('select 1 as one')).rows[0].one === 1;
  await late.end();
  await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  let fdsAfter = openFds(pid);
  for (let i = 0; i < 100 && fdsAfter !== null && fdsBefore !== null && fdsAfter > fdsBefore + 10; i++) {
    await sleep(100);
    fdsAfter = openFds(pid);
  }
  const rssAfter = rssMb(pid);
  t.equal(connected, CLIENTS, `all ${CLIENTS} logged in`);
  t.equal(queried, connected, 'every one ran a query');
  t.ok(lateOk, 'one more client gets in and runs a query while they are all connected');
  t.ok(sc.alive(), 'the sidecar is up');
  t.ok(fdsAfter !== null && fdsBefore !== null && fdsAfter <= fdsBefore + 10, `descriptors returned: ${fdsBefore} → peak ${fdsPeak} → ${fdsAfter}`);
  const errs = [...errors].map(([k, v]) => `${v}× ${k}`).join('; ') || 'none';
  t.comment(JSON.stringify({ connected, queried, errors: errs, rssBefore, rssPeak, rssAfter, fdsBefore, fdsPeak, fdsAfter }));
  sections.push(
    `### ${CLIENTS} concurrent clients on one sidecar\n\n| logged in | ran a query | errors | one more client | RSS MB before → peak → after | fds before → peak → after |\n|---|---|---|---|---|---|\n` +
      `| ${connected} / ${CLIENTS} | ${queried} | ${errs} | ${lateOk ? 'got in' : 'REFUSED'} | ${rssBefore} → ${rssPeak} → ${rssAfter} | ${fdsBefore} → ${fdsPeak} → ${fdsAfter} |`,
  );
});

t.test(`soak: ${SOAK_MS / 1000} s of steady load`, async (t) => {
  const samples: { s: number; rss: number | null; fds: number | null; writes: number }[] = [];
  const load = new Load({ urls: () => [url], workers: 8, idBase: 5_000_000_000 }).start();
  const t0 = Date.now();
  // The first sample after a warm-up: the JIT, the classifier cache and the pools settle in the first seconds.
  await sleep(Math.min(SAMPLE_MS, 5000));
  while (Date.now() - t0 < SOAK_MS) {
    samples.push({ s: Math.round((Date.now() - t0) / 1000), rss: rssMb(pid), fds: openFds(pid), writes: load.writesOk });
    await sleep(SAMPLE_MS);
  }
  samples.push({ s: Math.round((Date.now() - t0) / 1000), rss: rssMb(pid), fds: openFds(pid), writes: load.writesOk });
  await load.stop();
  const ledger = await lostWrites(source.url(), load.acked);
  const first = samples[0]!;
  const last = samples.at(-1)!;
  const maxRss = Math.max(...samples.map((x) => x.rss ?? 0));
  const growth = (last.rss ?? 0) - (first.rss ?? 0);
  t.equal(ledger.lost, 0, `0 of ${ledger.acked} acknowledged writes lost`);
  t.ok(growth < 64, `RSS growth under load ${growth.toFixed(1)} MB (< 64 MB): ${first.rss} → ${last.rss}, max ${maxRss}`);
  t.ok((last.fds ?? 0) - (first.fds ?? 0) <= 10, `descriptors steady: ${first.fds} → ${last.fds}`);
  t.ok(sc.alive());
  const errs = Object.entries(load.snapshot().errors).map(([k, v]) => `${v}× ${k}`).join('; ') || 'none';
  sections.push(
    `### Soak: ${SOAK_MS / 60_000 >= 1 ? `${SOAK_MS / 60_000} min` : `${SOAK_MS / 1000} s`}, 8 workers, one sidecar\n\n` +
      `${load.writesOk} writes and ${load.readsOk} reads acknowledged; client errors: ${errs}; acked ${ledger.acked}, found ${ledger.found}, **lost ${ledger.lost}**. ` +
      `RSS ${first.rss} → ${last.rss} MB (max ${maxRss}), fds ${first.fds} → ${last.fds}.\n\n| s | RSS MB | fds | writes so far |\n|---|---|---|---|\n` +
      samples.map((x) => `| ${x.s} | ${x.rss} | ${x.fds} | ${x.writes} |`).join('\n'),
  );
});

t.teardown(() => writeSection('2-capacity', 'Capacity and soak', sections.join('\n\n')));
