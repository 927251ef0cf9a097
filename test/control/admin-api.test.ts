/**
 * The admin HTTP API's answers to bad input, against a real sidecar in front of a real PostgreSQL 14 and 15:
 * every mistake gets a 4xx with a JSON reason, and the cutover state is exactly as it was afterwards.
 */
import t from 'tap';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { CUTOVER_STATES } from '../../src/domain/states.js';

const TOKEN = 'admin-test-token';
const source = await startPg(t, 14);
const target = await startPg(t, 15);
const proxy = await startProxy(t, source.url(), target.url(), { adminToken: TOKEN });
const auth = { authorization: `Bearer ${TOKEN}` };

interface Answer {
  status: number;
  type: string | null;
  body: Record<string, unknown>;
}

async function call(method: string, path: string, opts: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const r = await fetch(`${proxy.adminUrl}${path}`, {
    method,
    headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
    body: opts.body,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await r.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { unparsed: text };
  }
  return { status: r.status, type: r.headers.get('content-type'), body };
}

const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
  call('POST', path, { body: typeof body === 'string' ? body : JSON.stringify(body), headers });

/** Runs `fn`, then checks the state snapshot (state, version, since, reason) is exactly as before. */
async function unchanged(t: { same(a: unknown, b: unknown, msg: string): unknown }, what: string, fn: () => Promise<void>): Promise<void> {
  const before = (await call('GET', '/state')).body;
  await fn();
  const after = (await call('GET', '/state')).body;
  t.same(
    { state: after.state, version: after.version, since: after.since, reason: after.reason },
    { state: before.state, version: before.version, since: before.since, reason: before.reason },
    `${what}: state unchanged`,
  );
}

t.test('bad JSON and bodies that are not an object: 400', async (t) => {
  for (const [body, want] of [
    ['{"to": ', /invalid JSON body/],
    ["{'to': 'SHADOW_WRITES'}", /invalid JSON body/],
    ['["READS_10PCT_AURORA"]', /must be an object/],
    ['"READS_10PCT_AURORA"', /must be an object/],
    ['42', /must be an object/],
    ['null', /must be an object/],
  ] as const) {
    await unchanged(t, body, async () => {
      for (const path of ['/transition', '/rollback']) {
        const r = await post(path, body);
        t.equal(r.status, 400, `${path} ${body}: 400`);
        t.match(r.body, { error: want });
        t.match(r.type, /application\/json/);
      }
    });
  }
  await unchanged(t, 'empty body', async () => {
    t.match(await post('/transition', ''), { status: 400, body: { error: /"to"/ } });
    t.match(await post('/rollback', ''), { status: 400, body: { error: /reason/ } });
  });
});

t.test('wrong field types: 400', async (t) => {
  await unchanged(t, 'field types', async () => {
    t.match(await post('/transition', { to: 5 }), { status: 400, body: { error: /"to"/ } });
    t.match(await post('/transition', { to: '' }), { status: 400, body: { error: /"to"/ } });
    t.match(await post('/transition', { to: 'READS_10PCT_AURORA', force: 'yes', reason: 'x' }), { status: 400, body: { error: /"force" must be true or false/ } });
    t.match(await post('/transition', { to: 'READS_10PCT_AURORA', reason: 7 }), { status: 400, body: { error: /"reason" must be a string/ } });
    t.match(await post('/rollback', { reason: 12 }), { status: 400, body: { error: /reason/ } });
  });
});

t.test('unknown state name: 400 listing the valid states', async (t) => {
  await unchanged(t, 'unknown state', async () => {
    const r = await post('/transition', { to: 'READS_25PCT_AURORA', reason: 'typo' });
    t.equal(r.status, 400);
    t.match(r.body, { code: 'unknown-state', error: /READS_25PCT_AURORA/ });
    for (const s of CUTOVER_STATES) t.match(r.body.error, s, `lists ${s}`);
  });
});

t.test('illegal transition: 409 with the reason', async (t) => {
  await unchanged(t, 'illegal', async () => {
    for (const to of ['WRITES_TO_AURORA', 'CUTOVER_COMPLETE']) {
      const r = await post('/transition', { to, force: true, reason: 'skip ahead' });
      t.equal(r.status, 409, `SOURCE_PRIMARY → ${to}: 409 even when forced`);
      t.match(r.body, { code: 'illegal-transition', state: 'SOURCE_PRIMARY', reason: /not a legal transition; from SOURCE_PRIMARY only: READS_10PCT_AURORA/ });
    }
    t.match(await post('/transition', { to: 'source_primary' }), { status: 409, body: { code: 'already-in-state' } }, 'to the current state: 409');
  });
  // Set by hand (no guards, no rollback runner) to reach the states these refusals need.
  await proxy.setState('READS_50PCT_AURORA', 'test setup');
  await unchanged(t, 'backwards', async () => {
    const r = await post('/transition', { to: 'READS_10PCT_AURORA', force: true, reason: 'step back' });
    t.match(r, { status: 409, body: { code: 'illegal-transition', state: 'READS_50PCT_AURORA', reason: /only: READS_100PCT_AURORA \(advance\), ROLLBACK \(rollback\)/ } }, 'backwards other than ROLLBACK: 409');
  });
  await proxy.setState('ROLLBACK', 'test setup');
  await unchanged(t, 'rollback-complete', async () => {
    const r = await post('/transition', { to: 'SOURCE_PRIMARY', force: true, reason: 'done, I think' });
    t.match(r, { status: 409, body: { code: 'illegal-transition', state: 'ROLLBACK', reason: /only when the rollback procedure completes/ } }, 'ROLLBACK → SOURCE_PRIMARY by hand: 409');
  });
  await proxy.setState('SOURCE_PRIMARY', 'test setup');
});

t.test('guard failure: 409 with every guard', async (t) => {
  await unchanged(t, 'guard', async () => {
    const r = await post('/transition', { to: 'READS_10PCT_AURORA', reason: 'gate 2 not run' });
    t.equal(r.status, 409);
    t.match(r.body, { code: 'guard-failed', state: 'SOURCE_PRIMARY', reason: /gate-2: gate 2 has not been run/ });
    const guards = r.body.guards as { guard: string; ok: boolean; detail: string }[];
    t.match(guards, [
      { guard: 'store-healthy', ok: true },
      { guard: 'no-open-breaker', ok: true },
      { guard: 'gate-2', ok: false, detail: /not been run/ },
    ]);
    const forcedNoReason = await post('/transition', { to: 'READS_10PCT_AURORA', force: true });
    t.match(forcedNoReason, { status: 400, body: { code: 'reason-required', reason: /forced transition needs a reason/ } }, 'force without a reason: 400');
    const blank = await post('/transition', { to: 'READS_10PCT_AURORA', force: true, reason: '   ' });
    t.match(blank, { status: 400, body: { code: 'reason-required' } }, 'a blank reason is no reason');
  });
});

t.test('rollback without a reason: 400', async (t) => {
  await unchanged(t, 'rollback reason', async () => {
    for (const body of [{}, { reason: '' }, { reason: '  ' }, { by: 'someone' }]) {
      const r = await post('/rollback', body);
      t.equal(r.status, 400, `${JSON.stringify(body)}: 400`);
      t.match(r.body, { error: /a rollback needs \{"reason": "..."\}/ });
    }
  });
});

t.test('missing or wrong bearer token: 401 and nothing changed; reads need none', async (t) => {
  await unchanged(t, 'token', async () => {
    const ok = { to: 'READS_10PCT_AURORA', force: true, reason: 'would succeed with the token' };
    for (const [what, headers] of [
      ['no token', {}],
      ['wrong token', { authorization: 'Bearer not-the-token' }],
      ['token prefix', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
      ['token plus a byte', { authorization: `Bearer ${TOKEN}x` }],
      ['basic scheme', { authorization: `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}` }],
      ['no scheme', { authorization: TOKEN }],
    ] as const) {
      const r = await post('/transition', ok, headers);
      t.equal(r.status, 401, `/transition, ${what}: 401`);
      t.match(r.body, { error: /bearer token/ });
      t.equal((await post('/rollback', { reason: 'no' }, headers)).status, 401, `/rollback, ${what}: 401`);
    }
    for (const path of ['/healthz', '/state', '/audit', '/metrics', '/shadow/mismatches']) {
      t.equal((await call('GET', path)).status, 200, `GET ${path} needs no token`);
    }
  });
  const audit = (await call('GET', '/audit?limit=1000')).body.entries as { reason: string }[];
  t.notOk(audit.some((e) => e.reason === 'would succeed with the token'), 'nothing was audited as a transition');
});

t.test('unknown path: 404; wrong method: 405', async (t) => {
  await unchanged(t, 'routing', async () => {
    for (const [method, path] of [['GET', '/nope'], ['POST', '/transitions'], ['GET', '/state/extra'], ['GET', '/gates'], ['POST', '/'], ['DELETE', '/x']] as const) {
      const r = await call(method, path, method === 'POST' ? { body: '{}', headers: auth } : {});
      t.equal(r.status, 404, `${method} ${path}: 404`);
      t.match(r.body, { error: /no such endpoint/ });
    }
    for (const [method, path, allow] of [['GET', '/transition', 'POST'], ['GET', '/rollback', 'POST'], ['POST', '/state', 'GET'], ['PUT', '/state', 'GET'], ['DELETE', '/gates/1', 'POST, GET']] as const) {
      const r = await call(method, path, method === 'POST' ? { body: '{}', headers: auth } : {});
      t.equal(r.status, 405, `${method} ${path}: 405`);
      t.match(r.body, { error: new RegExp(`use ${allow}`) });
    }
  });
});

t.test('gates: /gates/9 is 400; POST /gates/1 runs against the real servers; GET only reads the last result', async (t) => {
  await unchanged(t, 'gates', async () => {
    for (const n of ['9', '0', 'x', '1.5', '-1']) {
      for (const r of [await post(`/gates/${n}`, {}), await call('GET', `/gates/${n}`)]) {
        t.equal(r.status, 400, `/gates/${n}: 400`);
        t.match(r.body, { error: /gates are 1, 2 and 3/ });
      }
    }
    const bad = await post('/gates/%E0%A4%A', {});
    t.equal(bad.status, 400, 'a malformed percent-encoding: 400, not a crash');
    t.match(await call('GET', '/gates/2'), { status: 404, body: { error: /gate 2 has not been run.*POST \/gates\/2/ } }, 'GET runs nothing');
    t.equal((await post('/gates/2', {}, {})).status, 401, 'running a gate needs the token');
    t.equal((await call('POST', '/gates/2', { body: '{}', headers: { ...auth, 'content-type': 'text/plain' } })).status, 415, 'and a JSON content type');
    t.match(await call('GET', '/gates/2'), { status: 404 }, 'still not run');
    const g = await post('/gates/1', {});
    t.equal(g.status, 200);
    t.match(g.body, { gate: 1, passed: Boolean, at: Number });
    const criteria = g.body.criteria as { name: string; passed: boolean; threshold: unknown }[];
    t.ok(Array.isArray(criteria) && criteria.length >= 3, `${criteria.length} criteria`);
    for (const c of criteria) t.match(c, { name: String, passed: Boolean }, `criterion ${c.name}`);
    t.ok(criteria.some((c) => /reachable/i.test(c.name) && c.passed), 'both databases reachable');
    const again = await call('GET', '/gates/1');
    t.same(again, { ...again, status: 200, body: g.body }, 'GET /gates/1 returns the result POST produced');
  });
});

t.test("the audit's actor is the credential; the body's `by` is only a note", async (t) => {
  const r = await post('/transition', { to: 'READS_10PCT_AURORA', force: true, reason: 'actor test', by: 'mallory' });
  t.equal(r.status, 200, JSON.stringify(r.body));
  const audit = (await call('GET', '/audit?limit=1000')).body.entries as { reason: string; by: string }[];
  const e = audit.find((x) => x.reason === 'actor test');
  t.ok(e, 'transition audited');
  t.equal(e?.by, 'operator:admin-token (note: mallory)');
  await proxy.setState('SOURCE_PRIMARY', 'test setup');
});

t.test('oversized body: 413', async (t) => {
  await unchanged(t, 'oversized', async () => {
    const big = JSON.stringify({ to: 'READS_10PCT_AURORA', force: true, reason: 'x'.repeat(200_000) });
    const r = await post('/transition', big);
    t.equal(r.status, 413);
    t.match(r.body, { error: /larger than 65536 bytes/ });
    t.equal((await call('GET', '/healthz')).status, 200, 'the API still answers');
  });
});

t.test('a non-loopback admin address needs a token', async (t) => {
  await t.rejects(startProxy(t, source.url(), target.url(), { admin: '0.0.0.0:0' }), /--admin-token .*required/);
});
