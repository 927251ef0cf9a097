import t from 'tap';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { Command } from 'commander';
import { startAdmin, type Reply, type Route } from '../../src/control/admin-api.js';
import { registerAdminCommands } from '../../src/cli/admin-commands.js';
import { groupMismatches } from '../../src/cli/shadow-report.js';
import { resolveAdminTarget } from '../../src/cli/admin-client.js';
import { inertText, oneLine } from '../../src/cli/sanitize.js';
import { REPO_ROOT, repoPath } from '../helpers/repo.js';

const T0 = Date.parse('2025-06-01T12:00:00Z');
const TOKEN = 'admin-secret';

/**
 * A stand-in admin API for what a real server does not produce on demand (5xx, non-JSON, control characters, an
 * outage mid-watch): the real admin HTTP server (routes, bearer token) with canned handlers whose bodies use the
 * real reply types' fields (src/control/admin-dto.ts). test/cli/admin-real.test.ts runs every command against a
 * real sidecar.
 */
async function fakeAdmin(t: { teardown(fn: () => unknown): void }) {
  const calls: { method: string; path: string; body: unknown; query: string }[] = [];
  const replies: Record<string, Reply> = {};
  const state = { state: 'READS_10PCT_AURORA', version: 3, since: T0 - 2 * 3600_000, reason: 'gate 2 passed', readPercent: 10, writesTo: 'source', degraded: false };
  const health = { status: 'ok', reasons: [], backends: {}, state: state.state, clients: 0, store: 'memory', unleash: null, breakers: [], replication: null };
  const route = (method: 'GET' | 'POST', path: string, mutates: boolean, dflt: () => Reply): Route => ({
    method,
    path,
    mutates,
    handler: ({ body, params, query }) => {
      const p = path.replace(':n', params.n ?? '');
      calls.push({ method, path: p, body, query: query.toString() });
      return replies[`${method} ${p}`] ?? dflt();
    },
  });
  const admin = await startAdmin({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    routes: [
      route('GET', '/healthz', false, () => ({ status: 200, body: health })),
      route('GET', '/state', false, () => ({ status: 200, body: state })),
      route('POST', '/transition', true, () => ({ status: 200, body: { ...state, state: 'READS_50PCT_AURORA', version: 4, since: T0, readPercent: 50 } })),
      route('POST', '/rollback', true, () => ({ status: 200, body: { ...state, state: 'ROLLBACK', version: 4, since: T0, reason: 'p99 too high' } })),
      route('POST', '/gates/:n', true, () => ({ status: 404, body: { error: 'no such gate' } })),
      route('GET', '/audit', false, () => ({ status: 200, body: { entries: [] } })),
      route('GET', '/shadow/mismatches', false, () => ({ status: 200, body: { active: false, total: 0, offset: 0, limit: 100, items: [] } })),
    ],
  });
  t.teardown(() => admin.close());
  return { url: `http://127.0.0.1:${admin.port}`, port: admin.port, calls, replies, state, health };
}

class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** Runs `pg-cutover <args>` in-process through a fresh commander program; returns exit code and output. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}, extra: { watchStop?: AbortSignal } = {}) {
  let out = '';
  let err = '';
  let code = 0;
  const program = new Command('pg-cutover');
  registerAdminCommands(program, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    env,
    setExitCode: (c) => void (code = c),
    exit: (c) => {
      throw new Exited(c);
    },
    isTTY: false,
    now: () => T0,
    ...extra,
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (!(e instanceof Exited)) throw e;
    code = e.code;
  }
  return { code, out, err };
}

t.test('admin target: flag, env, host:port, default', async (t) => {
  t.match(resolveAdminTarget({}, {}), { ok: true, value: { baseUrl: 'http://127.0.0.1:9187' } });
  t.match(resolveAdminTarget({}, { PGCUTOVER_ADMIN: '0.0.0.0:9999', PGCUTOVER_ADMIN_TOKEN: 'x' }), { ok: true, value: { baseUrl: 'http://127.0.0.1:9999', token: 'x' } });
  t.match(resolveAdminTarget({ admin: 'https://admin.example:8443/', adminToken: 'y' }, { PGCUTOVER_ADMIN: 'ignored:1' }), {
    ok: true,
    value: { baseUrl: 'https://admin.example:8443', token: 'y' },
  });
  t.match(resolveAdminTarget({ admin: 'ftp://x' }, {}), { ok: false, error: /http/ });
});

t.test('status: table by default, JSON with --json', async (t) => {
  const a = await fakeAdmin(t);
  const human = await cli(['status', '--admin', a.url]);
  t.equal(human.code, 0);
  t.match(human.out, /^state\s+READS_10PCT_AURORA$/m);
  t.match(human.out, /^version\s+3$/m);
  t.match(human.out, /^since\s+2025-06-01 10:00:00Z \(2h ago\)$/m);
  t.match(human.out, /^reads\s+10% to target$/m);
  t.match(human.out, /^writes\s+to source$/m);
  t.match(human.out, /^degraded\s+no$/m);
  const json = await cli(['status', '--json'], { PGCUTOVER_ADMIN: `127.0.0.1:${a.port}` });
  t.equal(json.code, 0);
  t.same(JSON.parse(json.out), { ...a.state, health: a.health }, 'address from $PGCUTOVER_ADMIN as host:port');

  a.replies['GET /healthz'] = {
    status: 200,
    body: {
      ...a.health,
      status: 'ok',
      clients: 12,
      breakers: [
        { name: 'error-rate', status: 'closed', value: 0, threshold: 0.01 },
        { name: 'replication-lag', status: 'open', value: 90, threshold: 60 },
      ],
      replication: { mode: 'native', state: 'CDC_ACTIVE', lagSeconds: 90.04, replicationError: null },
    },
  };
  const withHealth = await cli(['status', '--admin', a.url]);
  t.match(withHealth.out, /^clients\s+12$/m, 'clients from /healthz');
  t.match(withHealth.out, /^breakers\s+error-rate closed, replication-lag OPEN \(90 > 60\)$/m, 'breakers, open ones with their reading');
  t.match(withHealth.out, /^replication\s+native CDC_ACTIVE, lag 90\.0 s$/m, 'replication state and lag');
  t.match(withHealth.out, /^health\s+ok$/m);
  const withHealthJson = JSON.parse((await cli(['status', '--json', '--admin', a.url])).out);
  t.match(withHealthJson, { state: 'READS_10PCT_AURORA', health: { clients: 12, breakers: [{ name: 'error-rate' }, { name: 'replication-lag', status: 'open' }], replication: { state: 'CDC_ACTIVE' } } }, 'status --json carries what the table shows');
  a.replies['GET /healthz'] = { status: 503, body: { ...a.health, status: 'degraded', reasons: ['target unreachable: connect ECONNREFUSED', 'replication failed'], clients: 3 } };
  const degraded = await cli(['status', '--admin', a.url]);
  t.equal(degraded.code, 0, 'status still answers');
  t.match(degraded.out, /^health\s+DEGRADED: target unreachable: connect ECONNREFUSED; replication failed$/m, 'a 503 /healthz shows why');
  t.match(degraded.out, /^clients\s+3$/m);
});

t.test('transition: accepted, refused with guards, bad token, bad input', async (t) => {
  const a = await fakeAdmin(t);
  const env = { PGCUTOVER_ADMIN: a.url, PGCUTOVER_ADMIN_TOKEN: TOKEN };

  const ok = await cli(['transition', 'reads-50pct-aurora', '--reason', 'stable for 48h'], env);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /transition accepted: now READS_50PCT_AURORA/);
  t.same(a.calls.at(-1), { method: 'POST', path: '/transition', body: { to: 'READS_50PCT_AURORA', reason: 'stable for 48h', force: false }, query: '' });

  a.replies['POST /transition'] = {
    status: 409,
    body: {
      error: 'transition refused',
      code: 'guard-failed',
      reason: 'READS_10PCT_AURORA → READS_50PCT_AURORA refused: min-stable: in READS_10PCT_AURORA for 2h, needs 1d',
      guards: [
        { guard: 'store-healthy', ok: true, detail: 'store reachable' },
        { guard: 'min-stable', ok: false, detail: 'in READS_10PCT_AURORA for 2h, needs 1d' },
      ],
    },
  };
  const refused = await cli(['transition', 'READS_50PCT_AURORA'], env);
  t.equal(refused.code, 1, 'refusal exits 1');
  t.equal(refused.out, '');
  t.match(refused.err, /transition to READS_50PCT_AURORA refused \(guard-failed\): READS_10PCT_AURORA → READS_50PCT_AURORA refused: min-stable/);
  t.match(refused.err, /GUARD\s+RESULT\s+DETAIL\n\s+store-healthy\s+ok\s+store reachable\n\s+min-stable\s+FAIL\s+in READS_10PCT_AURORA for 2h, needs 1d/);
  const refusedJson = await cli(['transition', 'READS_50PCT_AURORA', '--json'], env);
  t.equal(refusedJson.code, 1);
  t.match(JSON.parse(refusedJson.out), { status: 409, code: 'guard-failed', guards: [{ guard: 'store-healthy' }, { guard: 'min-stable', ok: false }] });

  const forced = await cli(['transition', 'READS_50PCT_AURORA', '--force', '--reason', 'demo'], env);
  t.equal(forced.code, 1);
  t.same(a.calls.at(-1)!.body, { to: 'READS_50PCT_AURORA', reason: 'demo', force: true });

  const noToken = await cli(['transition', 'READS_50PCT_AURORA', '--admin', a.url]);
  t.equal(noToken.code, 1, '401 is a refusal');
  t.match(noToken.err, /refused: missing or wrong bearer token/);
  const flagToken = await cli(['transition', 'READS_50PCT_AURORA', '--admin', a.url, '--admin-token', TOKEN, '--reason', 'r']);
  t.equal(flagToken.code, 1, 'token from --admin-token reaches the handler (which refuses, as set up)');

  const n = a.calls.length;
  const unknown = await cli(['transition', 'READS_20PCT'], env);
  t.equal(unknown.code, 2, 'unknown state is a usage error');
  t.match(unknown.err, /unknown cutover state "READS_20PCT"; valid states: SOURCE_PRIMARY/);
  const forceNoReason = await cli(['transition', 'SHADOW_WRITES', '--force'], env);
  t.equal(forceNoReason.code, 2);
  t.match(forceNoReason.err, /--force needs --reason/);
  const missingArg = await cli(['transition'], env);
  t.equal(missingArg.code, 2, 'commander usage error exits 2');
  t.match(missingArg.err, /missing required argument 'STATE'/);
  t.equal(a.calls.length, n, 'no request for usage errors');
});

t.test('rollback, gate, audit', async (t) => {
  const a = await fakeAdmin(t);
  const env = { PGCUTOVER_ADMIN: a.url, PGCUTOVER_ADMIN_TOKEN: TOKEN };

  const noReason = await cli(['rollback'], env);
  t.equal(noReason.code, 2);
  t.match(noReason.err, /required option '--reason <text>' not specified/);
  const rb = await cli(['rollback', '--reason', 'p99 too high'], env);
  t.equal(rb.code, 0, rb.err);
  t.match(rb.out, /rollback started\nstate\s+ROLLBACK/);
  t.same(a.calls.at(-1)!.body, { reason: 'p99 too high' });

  a.replies['POST /gates/2'] = {
    status: 200,
    body: {
      gate: 2,
      passed: true,
      at: T0,
      ms: 1200,
      criteria: [
        { name: 'row counts equal', measured: '12/12 tables', threshold: 'all', passed: true },
        { name: 'cdc lag', measured: '1.2s', threshold: '< 10s', passed: true },
      ],
    },
  };
  a.replies['POST /gates/3'] = {
    status: 200,
    body: { gate: 3, passed: false, at: T0, ms: 3, criteria: [{ name: 'shadow mismatches', measured: 4, threshold: 0, passed: false, detail: '4 unexplained' }] },
  };
  const g2 = await cli(['gate', '2'], env);
  t.equal(g2.code, 0);
  t.match(g2.out, /^gate 2: PASSED\nCRITERION\s+MEASURED\s+THRESHOLD\s+RESULT\s+DETAIL\nrow counts equal\s+12\/12 tables\s+all\s+ok\ncdc lag\s+1\.2s\s+< 10s\s+ok\n$/);
  const g3 = await cli(['gate', '3'], env);
  t.equal(g3.code, 1, 'a failed gate exits 1');
  t.match(g3.out, /gate 3: FAILED[\s\S]*shadow mismatches\s+4\s+0\s+FAIL\s+4 unexplained/);
  const g1 = await cli(['gate', '1', '--json'], env);
  t.equal(g1.code, 1, '404 from the server');
  t.same(JSON.parse(g1.out), { status: 404, error: 'no such gate' });
  const g7 = await cli(['gate', '7'], env);
  t.equal(g7.code, 2);

  a.replies['GET /audit'] = {
    status: 200,
    body: {
      entries: [
        { at: T0, by: 'operator:cli', kind: 'transition', from: 'SOURCE_PRIMARY', to: 'READS_10PCT_AURORA', reason: 'gate 2 passed', forced: false },
        {
          at: T0 + 60_000,
          by: 'breaker:error-rate',
          kind: 'transition',
          from: 'READS_10PCT_AURORA',
          to: 'ROLLBACK',
          reason: 'target errors 3.2% > 1%',
          forced: false,
        },
        { at: T0 + 60_002, by: 'rollback-runner', kind: 'rollback-step', reason: '1 writes off the target (state published)', detail: { started: T0 + 60_000, ended: T0 + 60_002, ok: true } },
        { at: T0 + 60_050, by: 'rollback-runner', kind: 'rollback-step', reason: '2 drain in-flight target transactions', detail: { started: T0 + 60_002, ended: T0 + 60_050, ok: false, error: '1 still open' } },
      ],
    },
  };
  const audit = await cli(['audit', '--limit', '2'], env);
  t.equal(audit.code, 0, audit.err);
  t.equal(a.calls.at(-1)!.query, 'limit=2');
  const lines = audit.out.trimEnd().split('\n');
  t.match(lines[0], /^TIME\s+BY\s+KIND\s+CHANGE\s+FORCED\s+REASON\s+RESULT$/);
  t.match(lines[1], /^2025-06-01 12:00:00Z\s+operator:cli\s+transition\s+SOURCE_PRIMARY → READS_10PCT_AURORA\s+gate 2 passed$/);
  t.match(lines[2], /^2025-06-01 12:01:00Z\s+breaker:error-rate\s+transition\s+READS_10PCT_AURORA → ROLLBACK\s+target errors 3.2% > 1%$/);
  t.match(lines[3], /^2025-06-01 12:01:00Z\s+rollback-runner\s+rollback-step\s+1 writes off the target \(state published\)\s+ok  2ms$/);
  t.match(lines[4], /^2025-06-01 12:01:00Z\s+rollback-runner\s+rollback-step\s+2 drain in-flight target transactions\s+FAIL: 1 still open  48ms$/);
  t.equal(lines[1]!.indexOf('transition'), lines[2]!.indexOf('transition'), 'columns aligned');
  const auditJson = await cli(['audit', '--json'], env);
  t.equal(JSON.parse(auditJson.out).entries.length, 4);
  t.equal(a.calls.at(-1)!.query, 'limit=50', 'default limit');
});

t.test('control characters from the server are printed inert (no ANSI escapes, no forged lines)', async (t) => {
  const a = await fakeAdmin(t);
  const env = { PGCUTOVER_ADMIN: a.url, PGCUTOVER_ADMIN_TOKEN: TOKEN };
  const evil = 'ok\x1b[2J\x1b[31mred\r\n2025-06-01 12:00:00Z  operator:root  transition  forged\u009b1m\u202eevil';
  a.replies['GET /audit'] = { status: 200, body: { entries: [{ at: T0, by: `operator:x\x07`, kind: 'transition', to: 'ROLLBACK', reason: evil }, { at: T0, by: 'rollback-runner', kind: 'rollback-step', reason: 'step', detail: { ok: false, error: evil } }] } };
  a.replies['GET /state'] = { status: 200, body: { ...a.state, reason: evil, [`k\x1b]0;title\x07`]: evil } };
  a.replies['POST /rollback'] = { status: 409, body: { error: evil, code: 'x\x1by' } };
  const outputs = [
    (await cli(['audit'], env)).out,
    (await cli(['status'], env)).out,
    (await cli(['rollback', '--reason', 'r'], env)).err,
  ];
  for (const out of outputs) {
    t.notMatch(out, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/, 'no control character but the newline');
    t.notMatch(out, /\n2025-06-01 12:00:00Z  operator:root/, 'no forged line');
    t.match(out, /\\x1b\[2J/, 'the escape is shown, not obeyed');
  }
  const audit = outputs[0]!.trimEnd().split('\n');
  t.equal(audit.length, 3, 'header, one entry, one step');
  const json = (await cli(['audit', '--json'], env)).out;
  t.notMatch(json, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/, '--json: escaped too');
  t.equal(JSON.parse(json).entries[0].reason, evil, '--json: the same value once parsed');
});

t.test('sanitizers: oneLine escapes everything; inertText keeps newlines and valid JSON', async (t) => {
  t.equal(oneLine('a\x1b[31mb\r\nc\u009b'), 'a\\x1b[31mb\\r\\nc\\x9b');
  t.equal(inertText('line 1\x1b[2J\rline\u202e\n'), 'line 1\\u001b[2J\\u000dline\\u202e\n');
  const json = inertText(JSON.stringify({ r: 'x\u009by\u2066' }, null, 2));
  t.same(JSON.parse(json), { r: 'x\u009by\u2066' }, 'JSON stays JSON, same value');
});

t.test('shadow report groups mismatches by fingerprint', async (t) => {
  const a = await fakeAdmin(t);
  const rec = (fingerprint: string, cls: string, at: string, extra: object = {}) => ({
    at,
    cls,
    explained: cls === 'lag-suspect',
    fingerprint,
    statement: 0,
    source: { ok: true, tag: 'UPDATE', rows: 1, hash: 'aa' },
    shadow: { ok: true, tag: 'UPDATE', rows: 1, hash: 'bb' },
    ...extra,
  });
  const upd = 'UPDATE accounts SET balance = balance + $? WHERE id = $?';
  const ins = 'INSERT INTO orders (user_id) VALUES ($?)';
  a.replies['GET /shadow/mismatches'] = {
    status: 200,
    body: {
      active: true,
      total: 7,
      offset: 0,
      limit: 1000,
      items: [
        rec(upd, 'value', '2025-06-01T12:00:05Z'),
        rec(ins, 'error-on-target-only', '2025-06-01T12:00:04Z', { shadow: { ok: false, sqlstate: '23505', rows: 0, hash: '' } }),
        rec(upd, 'lag-suspect', '2025-06-01T12:00:03Z'),
        rec(upd, 'lag-suspect', '2025-06-01T12:00:02Z'),
        rec(upd, 'value', '2025-06-01T12:00:01Z'),
      ],
    },
  };
  const r = await cli(['shadow', 'report', '--admin', a.url]);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^5 mismatches of 7 held, 3 unexplained, 2 statement shapes\n/);
  t.match(r.out, /COUNT\s+UNEXPLAINED\s+CLASSES\s+LAST SEEN\s+STATEMENT SHAPE\n4\s+2\s+value 2, lag-suspect 2\s+2025-06-01 12:00:05Z\s+UPDATE accounts/);
  t.match(r.out, /example: value at statement 0: source UPDATE 1 row hash aa; target UPDATE 1 row hash bb\n1\s+1\s+error-on-target-only/);
  t.match(r.out, /example: error-on-target-only at statement 0: source UPDATE 1 row hash aa; target ERROR 23505/);
  t.equal(a.calls.at(-1)!.query, 'limit=1000');

  const j = await cli(['shadow', 'report', '--admin', a.url, '--json']);
  const report = JSON.parse(j.out);
  t.match(report, {
    total: 7,
    fetched: 5,
    unexplained: 3,
    groups: [
      { fingerprint: upd, count: 4, unexplained: 2, classes: { value: 2, 'lag-suspect': 2 }, firstAt: '2025-06-01T12:00:01.000Z', lastAt: '2025-06-01T12:00:05.000Z', example: { at: '2025-06-01T12:00:05Z' } },
      { fingerprint: ins, count: 1, unexplained: 1 },
    ],
  });

  t.same(groupMismatches({ active: false, total: 0, offset: 0, limit: 100, items: [] }).groups, []);
  const none = await cli(['shadow', 'report', '--admin', a.url], {});
  t.equal(none.code, 0);
  const noSub = await cli(['shadow'], {});
  t.equal(noSub.code, 2, '`shadow` alone shows help and exits 2');
});

t.test('errors: unreachable sidecar, server error, non-JSON reply, timeout', async (t) => {
  const closedPort = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
  const down = await cli(['status', '--admin', `127.0.0.1:${closedPort}`]);
  t.equal(down.code, 2);
  t.equal(down.out, '');
  t.equal(down.err, `pg-cutover: cannot reach the admin API at http://127.0.0.1:${closedPort}: connection refused (is \`pg-cutover start\` running there? set --admin or $PGCUTOVER_ADMIN)\n`, 'one line');
  const badUrl = await cli(['status', '--admin', 'ftp://x']);
  t.equal(badUrl.code, 2);

  const a = await fakeAdmin(t);
  a.replies['GET /state'] = { status: 500, body: { error: 'internal error' } };
  const boom = await cli(['status', '--admin', a.url]);
  t.equal(boom.code, 2, '5xx is not a refusal');
  t.match(boom.err, /status: HTTP 500: internal error/);
  a.replies['GET /state'] = { status: 502, body: '<html><body>Bad Gateway</body></html>', contentType: 'text/html' };
  const html = await cli(['status', '--admin', a.url]);
  t.equal(html.code, 2);
  t.match(html.err, /HTTP 502, not JSON: <html><body>Bad Gateway/);

  const silent = http.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => {
    silent.closeAllConnections();
    silent.close();
  });
  const slow = await cli(['status', '--admin', `127.0.0.1:${(silent.address() as net.AddressInfo).port}`, '--timeout', '200']);
  t.equal(slow.code, 2);
  t.match(slow.err, /no reply within 200ms/);
});

t.test('status --watch polls until stopped, keeps going through an outage', async (t) => {
  const a = await fakeAdmin(t);
  const ac = new AbortController();
  const run = cli(['status', '--watch', '--interval', '50', '--admin', a.url], {}, { watchStop: ac.signal });
  const polls = () => a.calls.filter((c) => c.path === '/state').length;
  await waitFor(() => polls() >= 2);
  a.replies['GET /state'] = { status: 503, body: { error: 'draining' } };
  await waitFor(() => polls() >= 4);
  ac.abort();
  const r = await run;
  t.equal(r.code, 0, 'stopping the watch is a normal end');
  t.match(r.out, /state\s+READS_10PCT_AURORA[\s\S]*unavailable: HTTP 503: draining/);
  t.ok((r.out.match(/\(Ctrl-C to stop\)/g) ?? []).length >= 4);

  const ac2 = new AbortController();
  delete a.replies['GET /state'];
  const n = a.calls.length;
  const nd = cli(['status', '--watch', '--json', '--interval', '50', '--admin', a.url], {}, { watchStop: ac2.signal });
  await waitFor(() => a.calls.length >= n + 3);
  ac2.abort();
  const lines = (await nd).out.trim().split('\n').map((l) => JSON.parse(l));
  t.ok(lines.length >= 3, 'one JSON line per poll');
  t.match(lines[0], { at: String, state: 'READS_10PCT_AURORA', version: 3 });
});

/** Runs the commands in a real node process (TypeScript loaded as tap does), as `pg-cutover` would. */
function realCli(args: string[], env: NodeJS.ProcessEnv = {}, onStdout?: (s: string, kill: (sig: NodeJS.Signals) => void) => void) {
  const tsLoader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const entry = repoPath('src/cli/admin-commands.ts');
  const script = [
    "import { Command } from 'commander';",
    `const { registerAdminCommands } = await import(${JSON.stringify(entry)});`,
    "const program = new Command('pg-cutover');",
    'registerAdminCommands(program);',
    "await program.parseAsync(process.argv.slice(1), { from: 'user' });",
  ].join('\n');
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    const child = spawn(process.execPath, [...tsLoader, '--input-type=module', '-e', script, '--', ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, TS_NODE_TRANSPILE_ONLY: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      onStdout?.(out, (sig) => child.kill(sig));
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, out, err });
    });
  });
}

t.test('real process: exit codes and Ctrl-C on --watch', async (t) => {
  const a = await fakeAdmin(t);
  a.replies['POST /transition'] = { status: 409, body: { error: 'transition refused', code: 'illegal-transition', reason: 'SOURCE_PRIMARY → SHADOW_WRITES is not a legal transition' } };
  let signalled = false;
  const [watch, refused, usage] = await Promise.all([
    realCli(['status', '--watch', '--interval', '100', '--admin', a.url], {}, (out, kill) => {
      if (!signalled && (out.match(/Ctrl-C to stop/g) ?? []).length >= 2) {
        signalled = true;
        kill('SIGINT');
      }
    }),
    realCli(['transition', 'shadow_writes', '--reason', 'x'], { PGCUTOVER_ADMIN: a.url, PGCUTOVER_ADMIN_TOKEN: TOKEN }),
    realCli(['rollback'], { PGCUTOVER_ADMIN: a.url }),
  ]);
  t.equal(watch.code, 0, `Ctrl-C ends --watch with 0 (${watch.err})`);
  t.match(watch.out, /state\s+READS_10PCT_AURORA/);
  t.equal(refused.code, 1, refused.err);
  t.match(refused.err, /pg-cutover: transition to SHADOW_WRITES refused \(illegal-transition\): SOURCE_PRIMARY → SHADOW_WRITES is not a legal transition/);
  t.equal(usage.code, 2, usage.err);
  t.match(usage.err, /required option '--reason <text>' not specified/);
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
