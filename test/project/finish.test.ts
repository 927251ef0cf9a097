/**
 * Phase 4 on real servers: a walk through every cutover state to CUTOVER_COMPLETE with writers through the
 * proxy (guards forced, scaled window), the forward slot advanced during the parallel run, then `gate final`
 * failing with named criteria (no snapshot, an upload interrupted, a source connection still open, a checksum
 * differing) and passing after a verified snapshot; `decommission` refused before, its dry run printing the
 * plan, then removing every replication object while the target keeps serving; the report served at
 * GET /report with charts from the run.
 */
import t from 'tap';
import pg from 'pg';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { query, waitSynced } from '../helpers/replication.js';
import { s3Double } from '../helpers/aws-s3.js';
import { sleep, until } from '../helpers/wait.js';
import { setupNativeReplication } from '../../src/replication/native.js';
import { registerFinishCommands } from '../../src/cli/finish-commands.js';
import { registerAdminCommands } from '../../src/cli/admin-commands.js';
import { dumpDom, findChromium, pngStats, screenshot } from '../helpers/chromium.js';
import type { CutoverState } from '../../src/domain/states.js';

process.env.AWS_ACCESS_KEY_ID = 'AKIDTEST';
process.env.AWS_SECRET_ACCESS_KEY = 'secret';

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
const appUrl = (s: typeof source) => `postgresql://app:app@127.0.0.1:${s.port}/postgres`;
for (const db of [source, target]) await query(db.url(), "create role app login password 'app'");
await query(source.url(), 'create table ledger (id bigint generated always as identity primary key, client int not null, seq int not null, unique (client, seq))');
await query(source.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');
// Not replicated, only archived: makes the dump span more than one 5 MiB multipart part.
await query(source.url(), "create table archive_only (id int primary key, v text); insert into archive_only select g, md5(g::text) || md5((g*7)::text) || md5((g*13)::text) || md5((g*31)::text) from generate_series(1, 140000) g");
const setup = await setupNativeReplication(source.url(), target.url(), { tables: ['ledger'] });
if (!setup.ok) throw new Error(setup.errors.join('; '));
await waitSynced(target.url());
await query(target.url(), 'grant all on ledger to app; grant usage, select, update on ledger_id_seq to app');
const s3 = await s3Double(t);
const dir = mkdtempSync(join(tmpdir(), 'pgc-finish-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// 90 days × 5e-7 ≈ 3.9 s of stability window.
const proxy = await startProxy(t, appUrl(source), appUrl(target), {
  sourceControl: source.url(),
  targetControl: target.url(),
  subscription: setup.value.subscription,
  timeScale: '0.0000005',
  gate3MinShadowed: 0,
  historyIntervalMs: 150,
  slotAdvanceIntervalMs: 200,
  awsEndpoint: s3.endpoint,
  awsRegion: 'us-east-1',
}, { PGCUTOVER_USERS: JSON.stringify({ users: [{ name: 'app', password: 'app', method: 'scram-sha-256' }] }) });

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  let code = 0;
  const io = { out: (s: string) => void (out += s), err: (s: string) => void (err += s), env: { PGCUTOVER_ADMIN: proxy.adminUrl }, setExitCode: (c: number) => void (code = c), exit: ((c: number) => { throw new Error(`exit ${c}: ${err}`); }) as (c: number) => never };
  const program = new Command('pg-cutover').exitOverride();
  registerAdminCommands(program, io);
  registerFinishCommands(program, io);
  await program.parseAsync(['node', 'pg-cutover', ...args]);
  return { code, out, err };
}
const admin = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(proxy.adminUrl + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: r.status, body: (r.headers.get('content-type') ?? '').includes('json') ? await r.json() : await r.text() };
};
type Crit = { name: string; passed: boolean; measured: unknown; detail?: string };
const failed = (b: { criteria: Crit[] }) => b.criteria.filter((c) => !c.passed).map((c) => c.name);

// Writers through the proxy for the whole walk.
let stop = false;
let acked = 0;
let reads = 0;
const errors = new Map<string, number>();
const reader = async () => {
  const c = new pg.Client({ connectionString: proxy.url('postgres', 'app', 'app') });
  c.on('error', () => {});
  await c.connect();
  while (!stop) {
    await c.query('select count(*) from ledger').then(() => reads++, () => undefined);
    await sleep(5);
  }
  await c.end().catch(() => {});
};
const writer = async (client: number) => {
  let seq = 0;
  while (!stop) {
    const c = new pg.Client({ connectionString: proxy.url('postgres', 'app', 'app') });
    c.on('error', () => {});
    try {
      await c.connect();
      while (!stop) {
        await c.query('insert into ledger (client, seq) values ($1, $2) on conflict do nothing', [client, ++seq]);
        acked++;
        await sleep(5);
      }
    } catch (e) {
      const code = String((e as { code?: string }).code ?? (e as Error).message);
      errors.set(code, (errors.get(code) ?? 0) + 1);
      await sleep(20); // a fence ended the session: reconnect
    } finally {
      await c.end().catch(() => {});
    }
  }
};
const writers = [...[1, 2].map(writer), reader()];

t.test('walk to CUTOVER_COMPLETE; the forward slot is advanced while writes are on the target', async (t) => {
  await sleep(300);
  const early = await admin('POST', '/decommission', {});
  t.equal(early.status, 409, `decommission refused before the final gate: ${JSON.stringify(early.body)}`);
  for (const to of ['READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES', 'WRITES_TO_AURORA', 'SOURCE_READ_ONLY', 'CUTOVER_COMPLETE'] as CutoverState[]) {
    const o = await proxy.controller.transition({ to, reason: 'finish test walk', force: true, by: 'test' });
    t.ok(o.ok, `→ ${to}${o.ok ? '' : `: ${o.reason}`}`);
    await sleep(250);
  }
  const slot = setup.value.subscription;
  const lsn = async () => (await query(source.url(), 'select confirmed_flush_lsn::text as l from pg_replication_slots where slot_name = $1', [slot])).rows[0].l as string;
  const before = await lsn();
  await until('the forward slot to advance', async () => (await lsn()) !== before && proxy.project() !== null, 15_000, 100);
  const adv = (await admin('GET', '/healthz')).body as { replication: unknown };
  t.ok(adv.replication, 'replication is watched');
  t.pass(`forward slot moved from ${before} to ${await lsn()} while writes are on the target`);
  const st = await cli(['status']);
  t.match(st.out, /guarantees/, 'status says what CUTOVER_COMPLETE guarantees');
  t.match(st.out, /pg-cutover gate final/, 'and what is left');
  stop = true;
  await Promise.all(writers);
  t.ok(acked > 50, `${acked} writes and ${reads} reads acknowledged through the walk (errors: ${JSON.stringify([...errors])})`);
});

t.test('gate final fails with named criteria, then passes after a verified snapshot', async (t) => {
  const g1 = await cli(['gate', 'final']);
  t.equal(g1.code, 1, 'gate final exits 1 before the snapshot');
  t.match(g1.out, /FAIL\s+source snapshot archived and verified: none/, g1.out);

  // An S3 upload interrupted midway: the snapshot fails, nothing is archived, the gate names it.
  s3.state.interruptPart = 2;
  const broken = await admin('POST', '/snapshot', { to: 's3://archive/pg14/final.dump' });
  s3.state.interruptPart = null;
  t.equal(broken.status, 502, `interrupted upload reported: ${JSON.stringify(broken.body).slice(0, 200)}`);
  t.ok(s3.calls.some((c) => c.op === 'AbortMultipartUpload'), 'the multipart upload was aborted');
  let g = (await admin('POST', '/gates/final', {})).body as { passed: boolean; criteria: Crit[] };
  t.notOk(g.passed);
  t.match(g.criteria.find((c) => c.name === 'source snapshot archived and verified')?.measured, /last attempt failed/);

  const snap = await cli(['snapshot', '--to', 's3://archive/pg14/final.dump']);
  t.equal(snap.code, 0, `snapshot: ${snap.out}${snap.err}`);
  t.ok(s3.calls.filter((c) => c.op === 'UploadPart' && c.key === 'archive/pg14/final.dump').length >= 2, 'uploaded in parts');

  // A source connection still open.
  const held = new pg.Client({ connectionString: appUrl(source), application_name: 'forgotten-batch-job' });
  await held.connect();
  g = (await admin('POST', '/gates/final', {})).body as { passed: boolean; criteria: Crit[] };
  const sessions = g.criteria.find((c) => c.name === 'application sessions on the source')!;
  t.notOk(sessions.passed, `an open source session fails the gate: ${sessions.measured} ${sessions.detail}`);
  t.match(sessions.detail, /forgotten-batch-job/);
  await held.end();

  // A checksum differing: a row changed on the source behind replication's back.
  await query(source.url(), 'update ledger set seq = -seq where id = (select min(id) from ledger)');
  g = (await admin('POST', '/gates/final', {})).body as { passed: boolean; criteria: Crit[] };
  const sum = g.criteria.find((c) => c.name.startsWith('checksum '))!;
  t.notOk(sum.passed, `a differing row fails the checksum: ${sum.measured} ${sum.detail}`);
  t.match(sum.detail, /differs: source \(\d+,\d+,-\d+\) \/ target \(\d+,\d+,\d+\)/, 'the changed value is shown on the source side');
  await query(source.url(), 'update ledger set seq = -seq where id = (select min(id) from ledger)');

  // The stability window (90 days scaled) has passed by now; wait for it if not.
  await until('the stability window', async () => {
    const r = (await admin('POST', '/gates/final', {})).body as { passed: boolean; criteria: Crit[] };
    return r.criteria.find((c) => c.name === 'no rollback within the stability window')?.passed;
  }, 20_000, 500);
  const ok = await cli(['gate', 'final']);
  t.equal(ok.code, 0, `gate final passes: ${ok.out}`);
  t.match(ok.out, /PASS\s+source snapshot archived and verified/);
  t.match(ok.out, /PASS\s+application sessions on the source: 0/);
  const last = (await admin('GET', '/gates/final')).body as { passed: boolean };
  t.equal(last.passed, true, 'GET /gates/final returns the last result');
});

t.test('decommission: dry run prints the plan; the run removes every replication object; the target keeps serving', async (t) => {
  const lesson = await cli(['log', 'add', 'the', 'forward', 'slot', 'must', 'be', 'advanced', 'during', 'the', 'parallel', 'run']);
  t.equal(lesson.code, 0);
  const dry = await cli(['decommission', '--dry-run']);
  t.equal(dry.code, 0, dry.err);
  t.match(dry.out, /drop-reverse-subscription: DROP SUBSCRIPTION pgcutover_reverse/);
  t.match(dry.out, /revoke-source-logins: ALTER ROLE … NOLOGIN on the source for app/);
  t.equal((await query(source.url(), 'select count(*)::int as n from pg_replication_slots')).rows[0].n, 1, 'the dry run changed nothing');
  const run = await cli(['decommission']);
  t.equal(run.code, 0, `${run.out}${run.err}`);
  for (const [name, db] of [['source', source], ['target', target]] as const) {
    const objs = (await query(db.url(), `select (select count(*) from pg_replication_slots)::int as slots, (select count(*) from pg_publication)::int as pubs,
      (select count(*) from pg_subscription)::int as subs, (to_regclass('public.pgcutover_heartbeat') is not null) as hb`)).rows[0];
    t.same(objs, { slots: 0, pubs: 0, subs: 0, hb: false }, `no replication object left on the ${name}`);
  }
  const login = await query(source.url(), "select rolcanlogin from pg_roles where rolname = 'app'");
  t.equal(login.rows[0].rolcanlogin, false, 'application logins revoked on the source');
  const c = new pg.Client({ connectionString: proxy.url('postgres', 'app', 'app') });
  await c.connect();
  await c.query('insert into ledger (client, seq) values (99, 1)');
  const n = (await c.query('select count(*)::int as n from ledger')).rows[0].n;
  await c.end();
  t.ok(n > 0, `the target serves reads and writes through the proxy after decommission (${n} rows)`);
  const again = await cli(['decommission']);
  t.equal(again.code, 0, 'a second run is a no-op');
  t.match(again.out, /skip record-end/);
  await proxy.project()!.tick();
  const p = (await admin('GET', '/project')).body as { phase: string; conditions: { success: { name: string; status: string }[] } };
  t.equal(p.phase, 'COMPLETE', 'the project state is COMPLETE');
  t.equal(p.conditions.success.find((x) => x.name === 'old cluster decommissioned')?.status, 'met');
  const st = await cli(['status']);
  t.match(st.out, /remaining\s+stop and retire the source cluster/, 'status: only retiring the source cluster is left');
});

t.test('the report: execution log, gates, charts from the run', async (t) => {
  const md = await admin('GET', '/report?format=md');
  t.equal(md.status, 200);
  const text = md.body as string;
  t.match(text, /\| Phase \| Started \| Gate attempted \| Gate result \| Notes \|/, 'the seed\'s table form');
  t.match(text, /PHASE_4_ACTIVE/);
  t.match(text, /### Gate final: PASSED/);
  t.match(text, /forced SHADOW_WRITES → WRITES_TO_AURORA/, 'forced transitions are deviations');
  t.match(text, /the forward slot must be advanced during the parallel run/, 'lessons');
  const html = (await admin('GET', '/report')).body as string;
  t.notMatch(html, /<script|https?:\/\/(?!www\.w3\.org\/2000\/svg)/, 'no script and no external reference');
  for (const id of ['state-timeline', 'read-split', 'p99-read', 'p99-write', 'error-rate', 'replication-lag', 'slot-retention']) {
    const svg = new RegExp(`<svg[^>]*id="${id}"[\\s\\S]*?</svg>`).exec(html)?.[0] ?? '';
    t.match(svg, /<(polyline|rect class="segment"|circle class="series")/, `chart ${id} is drawn from recorded data`);
  }
  const out = join(dir, 'report');
  const r = await cli(['report', '--out', out]);
  t.equal(r.code, 0, r.err);
  t.match(readFileSync(join(out, 'report.md'), 'utf8'), /!\[Replication lag \(s\)\]\(charts\/replication-lag\.svg\)/, 'the Markdown links its SVG charts');

  const bin = findChromium();
  if (!bin) return void t.comment('skipped: chromium is not installed (apt-get install chromium): the report was not opened in a browser');
  // Offline: the file alone, and no network (chromium's proxy is a dead port).
  const file = join(out, 'report.html');
  const dom = await dumpDom(bin, file);
  t.equal(dom.code, 0, `chromium --dump-dom ${dom.stderr.slice(-300)}`);
  const svgs = [...dom.stdout.matchAll(/<svg[^>]*id="([^"]+)"[\s\S]*?<\/svg>/g)];
  t.equal(svgs.length, 8, `8 charts in the rendered DOM (${svgs.map((m) => m[1]).join(', ')})`);
  for (const m of svgs.filter((x) => x[1] !== 'shadow-match')) t.match(m[0], /<(polyline|rect class="segment"|circle)/, `${m[1]} has drawn marks after rendering`);
  const png = join(dir, 'report.png');
  const shot = await screenshot(bin, file, png);
  t.equal(shot.code, 0, `chromium --screenshot ${shot.stderr.slice(-300)}`);
  const st = pngStats(png);
  t.ok(st.width >= 1000 && st.height >= 1000, `screenshot ${st.width}×${st.height}`);
  t.ok(st.distinctColors > 50 && st.inkShare > 0.03, `the screenshot is not blank: ${st.distinctColors} colours, ${(st.inkShare * 100).toFixed(1)}% ink`);
});
