/**
 * Issue 16, items 5 and 6: every gate run lands in the audit log with its criteria and measured values, a
 * `--force` is recorded as a deviation with its reason and the guards it skipped, and a gate's freshness is
 * measured from its END (a gate that takes longer than the scaled freshness window still lets the next step
 * through right after it). The CLI waits for a gate as long as a gate takes, not 10 s.
 */
import t from 'tap';
import { Command } from 'commander';
import { startPg } from '../helpers/servers.js';
import { startProxy } from '../helpers/proxy.js';
import { registerAdminCommands } from '../../src/cli/admin-commands.js';

interface Entry {
  kind: string;
  by: string;
  reason?: string;
  forced?: boolean;
  detail?: Record<string, unknown>;
}

const source = await startPg(t, 14);
const target = await startPg(t, 15);
// gateMaxAgeMs (1 day) at this scale is 86 ms: far shorter than gate 1 takes here.
const proxy = await startProxy(t, source.url(), target.url(), { timeScale: '0.000001', sidecarId: 'evidence-test' });
const audit = async () => ((await (await fetch(`${proxy.adminUrl}/audit?limit=200`)).json()) as { entries: Entry[] }).entries;

t.test('a gate run is audited with every criterion and measured value; its freshness counts from its end', async (t) => {
  const started = Date.now();
  const r = await proxy.controller.gate(1);
  const ended = Date.now();
  t.ok(r.at >= started && r.at <= ended, 'the result is dated at its end');
  const e = (await audit()).filter((x) => x.kind === 'gate');
  t.equal(e.length, 1);
  const d = e[0]!.detail as { gate: number; passed: boolean; startedAt: number; endedAt: number; criteria: { name: string; measured: unknown; threshold: unknown; passed: boolean }[] };
  t.equal(d.gate, 1);
  t.equal(d.passed, r.passed);
  t.ok(d.endedAt >= d.startedAt);
  t.same(d.criteria.map((c) => c.name), r.criteria.map((c) => c.name), 'every criterion');
  t.ok(d.criteria.some((c) => typeof c.measured === 'number'), 'with measured values');
  t.equal(e[0]!.by, 'evidence-test');
});

t.test('gate 3 outside SHADOW_WRITES is audited as failed, naming its failing criteria', async (t) => {
  const r = await proxy.controller.gate(3);
  t.notOk(r.passed);
  const last = (await audit()).filter((x) => x.kind === 'gate').at(-1)!;
  t.match(last.reason, /^gate 3 failed: .*shadow writes active/);
});

t.test('a forced transition is recorded as a deviation with its reason and the guards it skipped', async (t) => {
  const o = await proxy.controller.transition({ to: 'READS_10PCT_AURORA', reason: 'demo: gate 2 run by hand earlier', force: true, by: 'operator:test' });
  t.ok(o.ok);
  const dev = (await audit()).filter((x) => x.kind === 'deviation');
  t.equal(dev.length, 1);
  t.match(dev[0], { by: 'operator:test', reason: 'demo: gate 2 run by hand earlier', forced: true });
  t.match(JSON.stringify(dev[0]!.detail?.skipped), /gate-2/, 'names the skipped guard');
  const plain = await proxy.controller.transition({ to: 'ROLLBACK', reason: 'back', by: 'operator:test' });
  t.ok(plain.ok);
  t.equal((await audit()).filter((x) => x.kind === 'deviation').length, 1, 'an unforced transition is no deviation');
});

t.test('the CLI waits for a gate as long as a gate takes (gate 2 is not cut off at 10 s)', async (t) => {
  const program = new Command();
  registerAdminCommands(program, { out: () => undefined, err: () => undefined });
  const timeout = (name: string) => program.commands.find((c) => c.name() === name)?.options.find((o) => o.long === '--timeout')?.defaultValue;
  t.equal(timeout('gate'), String(6 * 3600_000), 'gate: up to 6 h');
  t.equal(timeout('transition'), '120000', 'transition: a switchover drains for up to 35 s');
  t.equal(timeout('status'), '10000', 'status: 10 s');
});
