/**
 * Decommission with AWS DMS (no native subscription): the DMS task is stopped through the SDK (at a local
 * double of the DMS JSON API), a second run finds it stopped and goes on; the heartbeat table and the source's
 * application logins go; a step that fails stops the run and a later run resumes.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startPg } from '../helpers/servers.js';
import { query } from '../helpers/replication.js';
import { connectControl } from '../../src/replication/control-conn.js';
import { decommission, planDecommission, type DecommissionContext } from '../../src/replication/decommission.js';
import { stopDmsTask } from '../../src/project/operations.js';

process.removeAllListeners('warning'); // the SDK warns about Node 20 support on every client
const ARN = 'arn:aws:dms:us-east-1:123456789012:task:FINALTASK';
const task = { ReplicationTaskArn: ARN, Status: 'running' };
const calls: string[] = [];
const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const op = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    calls.push(op);
    const reply = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(payload));
    };
    if (op !== 'StopReplicationTask' || (JSON.parse(raw) as { ReplicationTaskArn?: string }).ReplicationTaskArn !== ARN) return reply(400, { __type: 'InvalidParameterValueException', message: raw });
    // As DMS: a task that is not running cannot be stopped.
    if (task.Status !== 'running') return reply(400, { __type: 'InvalidResourceStateFault', message: `Replication task ${ARN} is not running` });
    task.Status = 'stopped';
    return reply(200, { ReplicationTask: task });
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
t.teardown(() => new Promise<void>((r) => server.close(() => r())));
const aws = { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, region: 'us-east-1', credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret' } };

const source = await startPg(t, 14, { logical: true });
const target = await startPg(t, 15, { logical: true });
await query(source.url(), "create role app login password 'app'; create table pgcutover_heartbeat (id int primary key, at timestamptz)");
await query(target.url(), 'create table pgcutover_heartbeat (id int primary key, at timestamptz)');
const [s, tg] = await Promise.all([connectControl(source.url()), connectControl(target.url())]);
t.teardown(() => Promise.allSettled([s.end(), tg.end()]));
let recorded = false;
const ctx = (): DecommissionContext => ({ source: s, target: tg, appRoles: ['app', 'postgres'], stopDms: () => stopDmsTask(ARN, aws), recorded, record: async () => void (recorded = true) });

t.test('the plan names the DMS task and the roles; a superuser and the control login are never revoked', async (t) => {
  const plan = await planDecommission(ctx());
  t.match(plan.find((p) => p.step === 'stop-dms-task'), { needed: true, action: /StopReplicationTask/ });
  t.match(plan.find((p) => p.step === 'drop-forward-subscription'), { needed: false });
  t.match(plan.find((p) => p.step === 'revoke-source-logins')?.action, /for app;/);
});

t.test('a failing step stops the run; the next run resumes and finishes', async (t) => {
  const steps: string[] = [];
  const broken = { ...ctx(), stopDms: async () => { throw new Error('AccessDeniedException: not authorized'); } };
  const r1 = await decommission(broken, (o) => void steps.push(`${o.step}:${o.ok}`));
  t.notOk(r1.ok);
  t.same(steps, ['stop-dms-task:false'], 'nothing after the failed step ran');
  const r2 = await decommission(ctx(), () => undefined);
  t.ok(r2.ok, JSON.stringify(r2.steps));
  t.equal(task.Status, 'stopped', 'the DMS task was stopped through the SDK');
  t.equal((await query(source.url(), "select rolcanlogin from pg_roles where rolname = 'app'")).rows[0].rolcanlogin, false);
  t.equal((await query(source.url(), "select rolcanlogin from pg_roles where rolname = 'postgres'")).rows[0].rolcanlogin, true, 'the superuser keeps its login');
  t.equal((await query(target.url(), "select to_regclass('public.pgcutover_heartbeat') is null as gone")).rows[0].gone, true);
  t.ok(recorded);
  const r3 = await decommission(ctx(), () => undefined);
  t.ok(r3.ok, 'a third run: the stopped task is "already stopped", every other step skipped');
  t.match(r3.steps[0]?.detail, /already stopped/);
  t.ok(r3.steps.slice(1).every((x) => x.skipped));
  t.same(calls.filter((c) => c === 'StopReplicationTask').length, 2);
});
