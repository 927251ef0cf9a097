import t from 'tap';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  desiredState,
  flagPercent,
  readFlags,
  readStageFor,
  startUnleashBinding,
  type FlagReading,
  type UnleashRequest,
} from '../../src/control/unleash.js';
import { startUnleashServer } from '../helpers/unleash-server.js';

const OFF: FlagReading = {
  readsPct: null,
  readsPctFrom: null,
  shadowWrites: false,
  writesToAurora: false,
  killSwitch: false,
  source: 'server',
  at: 0,
  problems: [],
};

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function tmpDir(t: { teardown(fn: () => unknown): void }): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'pgc-unleash-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

t.test('desiredState: strongest flag wins, reads round down to a stage', async (t) => {
  const rows: [Partial<FlagReading>, string | null][] = [
    [{}, null],
    [{ readsPct: 0 }, 'SOURCE_PRIMARY'],
    [{ readsPct: 5 }, 'SOURCE_PRIMARY'],
    [{ readsPct: 10 }, 'READS_10PCT_AURORA'],
    [{ readsPct: 37 }, 'READS_10PCT_AURORA'],
    [{ readsPct: 50 }, 'READS_50PCT_AURORA'],
    [{ readsPct: 99.9 }, 'READS_50PCT_AURORA'],
    [{ readsPct: 100 }, 'READS_100PCT_AURORA'],
    [{ shadowWrites: true }, 'SHADOW_WRITES'],
    [{ shadowWrites: true, readsPct: 10 }, 'SHADOW_WRITES'],
    [{ writesToAurora: true }, 'WRITES_TO_AURORA'],
    [{ writesToAurora: true, shadowWrites: true, readsPct: 100 }, 'WRITES_TO_AURORA'],
    [{ killSwitch: true }, 'ROLLBACK'],
    [{ killSwitch: true, writesToAurora: true, shadowWrites: true, readsPct: 100 }, 'ROLLBACK'],
  ];
  for (const [flags, want] of rows) {
    const got = desiredState({ ...OFF, ...flags });
    t.equal(got?.state ?? null, want, JSON.stringify(flags));
    if (got) t.match(got.reason, /^unleash: /);
  }
  t.equal(readStageFor(-1), 'SOURCE_PRIMARY');
  t.equal(desiredState({ ...OFF, readsPct: 37, readsPctFrom: 'rollout' })?.reason, 'unleash: reads-pct 37% (rollout), rounded down to READS_10PCT_AURORA');
  t.equal(desiredState({ ...OFF, readsPct: 50, readsPctFrom: 'variant' })?.reason, 'unleash: reads-pct 50% (variant)');
});

t.test('flagPercent and readFlags read variants, rollouts and plain on/off', async (t) => {
  const def = (x: object) => ({ name: 'f', enabled: true, strategies: [], ...x });
  t.same(flagPercent(undefined), null, 'absent');
  t.same(flagPercent(def({ enabled: false, strategies: [{ name: 'flexibleRollout', parameters: { rollout: '50' } }] })), null, 'disabled');
  t.match(flagPercent(def({ strategies: [{ name: 'default' }] })), { ok: true, pct: 100, from: 'enabled' });
  t.match(flagPercent(def({})), { ok: true, pct: 100, from: 'enabled' }, 'enabled, no strategies: on for everyone');
  t.match(flagPercent(def({ strategies: [{ name: 'flexibleRollout', parameters: { rollout: '10' } }] })), { ok: true, pct: 10, from: 'rollout' });
  t.match(flagPercent(def({ strategies: [{ name: 'gradualRolloutRandom', parameters: { percentage: '50' } }] })), { pct: 50 });
  t.match(
    flagPercent(def({ strategies: [{ name: 'flexibleRollout', parameters: { rollout: '10' } }, { name: 'flexibleRollout', parameters: { rollout: '50' } }] })),
    { pct: 50 },
    'any matching strategy enables: the largest rollout is the exposure',
  );
  t.match(
    flagPercent(def({ strategies: [{ name: 'default' }], variants: [{ name: 'a', weight: 1000, payload: { type: 'number', value: '10' } }] })),
    { ok: true, pct: 10, from: 'variant' },
  );
  t.match(
    flagPercent(
      def({
        strategies: [{ name: 'flexibleRollout', parameters: { rollout: '100' }, variants: [{ name: 'half', weight: 1000, payload: { type: 'string', value: '50%' } }] }],
      }),
    ),
    { ok: true, pct: 50, from: 'variant' },
    'strategy variants win over the rollout',
  );
  t.match(
    flagPercent(def({ variants: [{ name: 'a', weight: 100, payload: { type: 'number', value: '10' } }, { name: 'b', weight: 900, payload: { type: 'number', value: '50' } }] })),
    { pct: 50 },
    'heaviest variant',
  );
  t.match(flagPercent(def({ variants: [{ name: 'a', weight: 1000, payload: { type: 'string', value: 'ten' } }] })), { ok: false, problem: /not a percentage/ });
  t.match(flagPercent(def({ strategies: [{ name: 'flexibleRollout', parameters: { rollout: '150' } }] })), { ok: false });

  const defs: Record<string, object> = {
    'x.reads': def({ name: 'x.reads', variants: [{ name: 'v', weight: 1, payload: { type: 'string', value: 'junk' } }] }),
    'x.shadow': def({ name: 'x.shadow', strategies: [{ name: 'flexibleRollout', parameters: { rollout: '0' } }] }),
    'x.kill': def({ name: 'x.kill', strategies: [{ name: 'default' }] }),
  };
  const r = readFlags((n) => defs[n] as never, { readsPct: 'x.reads', shadowWrites: 'x.shadow', writesToAurora: 'x.writes', killSwitch: 'x.kill' }, 'server', 42);
  t.match(r, { readsPct: null, shadowWrites: false, writesToAurora: false, killSwitch: true, source: 'server', at: 42 });
  t.equal(r.problems.length, 1, 'the unreadable reads-pct is reported, and counts as off');
});

t.test('flags on a real Unleash API become requested transitions', async (t) => {
  const srv = await startUnleashServer({ token: 'client-token-1' });
  t.teardown(() => srv.close());
  const requests: UnleashRequest[] = [];
  const b = await startUnleashBinding({
    url: srv.url,
    appName: 'pgc-test-flags',
    apiToken: 'client-token-1',
    refreshIntervalMs: 100,
    backupPath: tmpDir(t),
    onRequest: (r) => requests.push(r),
  });
  t.teardown(() => b.close());

  t.ok(b.healthy(), 'healthy after the first fetch');
  t.same(requests, [], 'all flags off: nothing requested');
  t.equal(b.flags().source, 'server');
  t.ok(srv.authSeen.every((a) => a === 'client-token-1') && srv.authSeen.length > 0, 'client token sent as Authorization');
  await waitFor('registration', () => srv.stats.register > 0);

  const expectNext = async (state: string) => {
    const n = requests.length;
    await waitFor(`request ${state}`, () => requests.length > n);
    t.equal(requests[n]!.to, state, `requested ${state} (${requests[n]!.reason})`);
  };

  srv.setVariantPercent('cutover.reads-pct', 10);
  await expectNext('READS_10PCT_AURORA');
  t.match(b.flags(), { readsPct: 10, readsPctFrom: 'variant' });

  srv.setRollout('cutover.reads-pct', 50);
  await expectNext('READS_50PCT_AURORA');

  // 60% rounds down to the 50% stage: the desired state did not change, so no new request.
  srv.setRollout('cutover.reads-pct', 60);
  await waitFor('60% read', () => b.flags().readsPct === 60);
  await srv.nextFetch();
  await srv.nextFetch();
  t.equal(requests.length, 2, 'no request when the stage is unchanged, however often the flags are fetched');

  srv.setVariantPercent('cutover.reads-pct', 100);
  await expectNext('READS_100PCT_AURORA');
  srv.setBoolean('cutover.shadow-writes', true);
  await expectNext('SHADOW_WRITES');
  srv.setBoolean('cutover.writes-to-aurora', true);
  await expectNext('WRITES_TO_AURORA');
  srv.setBoolean('cutover.kill-switch', true);
  await expectNext('ROLLBACK');
  t.match(requests.at(-1), { to: 'ROLLBACK', reason: 'unleash: kill switch on' });

  // All off: the flags ask for nothing, so nothing is requested.
  for (const n of ['cutover.kill-switch', 'cutover.writes-to-aurora', 'cutover.shadow-writes']) srv.setBoolean(n, false);
  srv.removeFeature('cutover.reads-pct');
  await waitFor('all off', () => b.flags().readsPct === null && !b.flags().killSwitch);
  await srv.nextFetch();
  t.equal(requests.length, 6);
  t.ok(srv.stats.notModified > 0, 'unchanged flags are answered 304 and keep the client healthy');
  t.ok(b.healthy());
});

t.test('Unleash down: last flags kept, unhealthy, nothing invented; back: healthy and following again', async (t) => {
  const srv = await startUnleashServer();
  t.teardown(() => srv.close());
  const backup = tmpDir(t);
  srv.setVariantPercent('my.reads', 50);
  const requests: UnleashRequest[] = [];
  const b = await startUnleashBinding({
    url: srv.url,
    appName: 'pgc-test-outage',
    refreshIntervalMs: 100,
    backupPath: backup,
    flagNames: { readsPct: 'my.reads' },
    onRequest: (r) => requests.push(r),
  });
  t.teardown(() => b.close());
  t.same(requests.map((r) => r.to), ['READS_50PCT_AURORA'], 'the first server reading is acted on');
  await waitFor('backup file written', () => readdirSync(backup).some((f) => f.includes('pgc-test-outage')));

  await srv.stop();
  // Reported by the client once its retries of the refused connection give up (~3s), not by staleness.
  await waitFor('unhealthy', () => !b.healthy(), 6000);
  t.match(b.flags(), { readsPct: 50, source: 'server' }, 'last flags kept');
  await new Promise((r) => setTimeout(r, 400));
  t.equal(requests.length, 1, 'no request during the outage');

  // A sidecar starting while Unleash is down reads the backup file and requests nothing.
  const late: UnleashRequest[] = [];
  const b2 = await startUnleashBinding({
    url: srv.url,
    appName: 'pgc-test-outage',
    refreshIntervalMs: 100,
    backupPath: backup,
    flagNames: { readsPct: 'my.reads' },
    startWaitMs: 1000,
    onRequest: (r) => late.push(r),
  });
  t.teardown(() => b2.close());
  t.match(b2.flags(), { readsPct: 50, source: 'backup' }, 'flags from the backup file');
  t.notOk(b2.healthy());
  t.same(late, []);

  srv.setVariantPercent('my.reads', 100);
  await srv.start();
  await waitFor('healthy again', () => b.healthy(), 5000);
  await waitFor('request after recovery', () => requests.length === 2, 3000);
  t.equal(requests[1]!.to, 'READS_100PCT_AURORA');
  await waitFor('late binding reaches the server', () => b2.healthy() && late.length === 1, 5000);
  t.equal(late[0]!.to, 'READS_100PCT_AURORA', 'its first server reading is acted on');
  t.equal(b2.flags().source, 'server');
});

t.test('close while Unleash is down and a fetch is in flight: no stray rejection', async (t) => {
  const srv = await startUnleashServer();
  t.teardown(() => srv.close());
  const b = await startUnleashBinding({ url: srv.url, appName: 'pgc-test-close', refreshIntervalMs: 100, backupPath: tmpDir(t), onRequest: () => {} });
  await srv.stop();
  // The client retries a refused connection for ~3s (make-fetch-happen: 2 retries, 1s then 2s).
  await new Promise((r) => setTimeout(r, 300));
  await b.close();
  await new Promise((r) => setTimeout(r, 3500));
  t.notOk(b.healthy(), 'a closed binding is not healthy');
});
