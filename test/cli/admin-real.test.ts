/**
 * Every admin command against the REAL admin API: a sidecar started in-process (state in memory) in front of a
 * real PostgreSQL 14 and 15. What the CLI prints comes from the fields the server really sends (typed once in
 * src/control/admin-dto.ts), never from a stand-in's guesses. test/cli/admin-commands.test.ts covers what a real
 * server does not produce on demand (5xx, non-JSON, timeouts, control characters, an outage during --watch).
 */
import t from 'tap';
import { Command } from 'commander';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { registerAdminCommands } from '../../src/cli/admin-commands.js';

const TOKEN = 'cli-real-token';
const source = await startPg(t, 14);
const target = await startPg(t, 15);
// Time scale 0.001: the rollback's read ramp takes a moment, not minutes (min-stable still refuses a quick step).
const sidecar = await startProxy(t, source.url(), target.url(), { adminToken: TOKEN, timeScale: '0.001' });
const env = { PGCUTOVER_ADMIN: sidecar.adminUrl, PGCUTOVER_ADMIN_TOKEN: TOKEN };

class Exited extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** `pg-cutover <args>` in-process through a fresh commander program: exit code and output. */
async function cli(args: string[], e: NodeJS.ProcessEnv = env) {
  let out = '';
  let err = '';
  let code = 0;
  const program = new Command('pg-cutover');
  registerAdminCommands(program, {
    out: (s) => void (out += s),
    err: (s) => void (err += s),
    env: e,
    setExitCode: (c) => void (code = c),
    exit: (c) => {
      throw new Exited(c);
    },
    isTTY: false,
  });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (x) {
    if (!(x instanceof Exited)) throw x;
    code = x.code;
  }
  return { code, out, err };
}

// Each subtest reads the state it needs; none depends on another having run.

t.test('status: the state, what it guarantees, and health from /healthz', async (t) => {
  const r = await cli(['status']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^state\s+\w+$/m);
  t.match(r.out, /^version\s+\d+$/m);
  t.match(r.out, /^since\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(.* ago\)$/m);
  t.match(r.out, /^reads\s+\d+% to target$/m);
  t.match(r.out, /^writes\s+to (source|target)$/m);
  t.match(r.out, /^degraded\s+(no|YES)$/m);
  t.match(r.out, /^guarantees\s+\S/m, 'guarantees from the state meaning');
  t.match(r.out, /^clients\s+\d+$/m, 'clients from /healthz');
  t.match(r.out, /^health\s+(ok|DEGRADED: .+)$/m, 'health from /healthz');
  const j = await cli(['status', '--json']);
  const body = JSON.parse(j.out);
  t.match(body, { state: String, version: Number, since: Number, readPercent: Number, effectiveReadPercent: Number, writesTo: String, health: { status: String, breakers: Array } });
});

t.test('transition: accepted (forced, with a reason), refused with the guards the server judged', async (t) => {
  const back = await cli(['transition', 'SOURCE_PRIMARY', '--force', '--reason', 'test start']);
  t.ok(back.code === 0 || /already-in-state/.test(back.err), back.err);
  const ok = await cli(['transition', 'reads-10pct-aurora', '--force', '--reason', 'cli test']);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /transition accepted: now READS_10PCT_AURORA \(forced\)\nstate\s+READS_10PCT_AURORA/);
  const refused = await cli(['transition', 'READS_50PCT_AURORA']);
  t.equal(refused.code, 1, 'a refusal exits 1');
  t.match(refused.err, /transition to READS_50PCT_AURORA refused \(guard-failed\)/);
  t.match(refused.err, /GUARD\s+RESULT\s+DETAIL\n\s+store-healthy\s+ok\s+\S/, 'guard names from the real body');
  t.match(refused.err, /\n\s+min-stable\s+FAIL\s+\S/);
  const j = await cli(['transition', 'READS_50PCT_AURORA', '--json']);
  t.match(JSON.parse(j.out), { status: 409, code: 'guard-failed', guards: [{ guard: 'store-healthy', ok: true }] });
  const noToken = await cli(['transition', 'READS_50PCT_AURORA', '--reason', 'x'], { PGCUTOVER_ADMIN: sidecar.adminUrl });
  t.equal(noToken.code, 1, 'a 401 is a refusal');
  t.match(noToken.err, /refused: .*token/);
});

t.test('gate 3: each criterion with its measured value, threshold and verdict', async (t) => {
  const r = await cli(['gate', '3']);
  t.equal(r.code, 1, 'gate 3 fails outside SHADOW_WRITES: exit 1');
  t.match(r.out, /^gate 3: FAILED\nCRITERION\s+MEASURED\s+THRESHOLD\s+RESULT\s+DETAIL\n/);
  t.match(r.out, /^shadow writes active\s+false\s+SHADOW_WRITES\s+FAIL\s+gate 3 is judged in SHADOW_WRITES$/m, 'measured and threshold as sent');
  t.match(r.out, /^unexplained shadow mismatches\s+0\s+0\s+ok$/m);
  const j = JSON.parse((await cli(['gate', '3', '--json'])).out);
  t.match(j, { gate: 3, passed: false, at: Number, ms: Number, criteria: [{ name: 'shadow writes active', measured: false, threshold: 'SHADOW_WRITES', passed: false }] });
});

t.test('gate 1 against both real databases', async (t) => {
  const r = await cli(['gate', '1']);
  t.match(r.out, /^gate 1: (PASSED|FAILED)\nCRITERION/);
  t.equal(r.code, /^gate 1: PASSED/.test(r.out) ? 0 : 1, 'exit code follows the verdict');
  t.notMatch(r.out, /^\S+\s{2,}\s*(ok|FAIL)\s*$/m, 'no criterion without a measured value');
});

t.test('rollback, then the audit log shows the transition and each rollback step', async (t) => {
  const to10 = await cli(['transition', 'READS_10PCT_AURORA', '--force', '--reason', 'before rollback']);
  t.ok(to10.code === 0 || /already-in-state/.test(to10.err), to10.err);
  const rb = await cli(['rollback', '--reason', 'cli rollback test']);
  t.equal(rb.code, 0, rb.err);
  t.match(rb.out, /^rollback started\nstate\s+(ROLLBACK|SOURCE_PRIMARY)$/m);
  await sidecar.controller.rollbackDone();
  const audit = await cli(['audit', '--limit', '100']);
  t.equal(audit.code, 0, audit.err);
  const lines = audit.out.trimEnd().split('\n');
  t.match(lines[0], /^TIME\s+BY\s+KIND\s+CHANGE\s+FORCED\s+REASON\s+RESULT$/);
  t.ok(lines.some((l) => /\stransition\s+READS_10PCT_AURORA → ROLLBACK\s.*cli rollback test/.test(l)), 'the rollback transition');
  t.ok(lines.some((l) => /\srollback-step\s.*\s(ok|FAIL)/.test(l) && /\d+ms/.test(l)), 'a rollback step with its outcome and duration');
  const j = JSON.parse((await cli(['audit', '--json', '--limit', '5'])).out);
  t.ok(Array.isArray(j.entries) && j.entries.length <= 5 && j.entries.every((e: { at: unknown; by: unknown; kind: unknown }) => typeof e.at === 'number' && typeof e.by === 'string' && typeof e.kind === 'string'));
});

t.test('breaker reset: closes an open breaker, says what it was, audits who and why; an unknown name is refused', async (t) => {
  const b = sidecar.controller.breakers;
  b.observeReplicationError('cli test: apply worker stopped');
  b.evaluate();
  t.ok(b.isOpen('replication-error'), 'the breaker is open');
  t.teardown(() => b.observeReplicationError(null));
  const r = await cli(['breaker', 'reset', 'replication-error', '--reason', 'cli reset test']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'breaker replication-error reset (was open)\n');
  t.notOk(b.isOpen('replication-error'), 'closed by the reset');
  const audit = JSON.parse((await cli(['audit', '--json', '--limit', '20'])).out) as { entries: { kind: string; by: string; reason?: string; detail?: Record<string, unknown> }[] };
  t.match(audit.entries.find((e) => e.kind === 'breaker' && /^replication-error reset/.test(e.reason ?? '')), { by: /^operator:/, reason: 'replication-error reset: cli reset test', detail: { name: 'replication-error', was: 'open' } });
  const j = await cli(['breaker', 'reset', 'error-rate', '--reason', 'json', '--json']);
  t.same(JSON.parse(j.out), { reset: 'error-rate', was: 'closed' });
  const bad = await cli(['breaker', 'reset', 'nope', '--reason', 'x']);
  t.not(bad.code, 0, 'refused');
  t.match(bad.err, /no breaker "nope"; breakers: error-rate, replication-lag, target-cpu, replication-error/);
  const noReason = await cli(['breaker', 'reset', 'error-rate']);
  t.not(noReason.code, 0, 'a reset needs a reason');
});

t.test('shadow report with no shadower yet', async (t) => {
  const r = await cli(['shadow', 'report']);
  t.equal(r.code, 0, r.err);
  t.equal(r.out, 'no shadow mismatches recorded\n');
  t.match(JSON.parse((await cli(['shadow', 'report', '--json'])).out), { total: 0, fetched: 0, unexplained: 0, groups: [] });
});

t.test('writer show', async (t) => {
  const r = await cli(['writer']);
  t.equal(r.code, 0, r.err);
  const j = await cli(['writer', '--json']);
  t.equal(j.code, 0, j.err);
  t.type(JSON.parse(j.out), 'object');
});
