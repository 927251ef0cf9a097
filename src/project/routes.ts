/**
 * Admin routes of the project layer: GET /project, POST /log (a lesson), POST /gates/final (run) and
 * GET /gates/final (last result), POST /snapshot, POST /decommission ({"dryRun": true} for the plan), and
 * GET /report (HTML; ?format=md or ?format=json). They go before the generic /gates/:n route.
 */
import type { Route, Reply } from '../control/admin-api.js';
import type { ControlConfig } from '../domain/control-config.js';
import { buildCharts, type ChartThresholds } from './report/charts.js';
import { renderHtml } from './report/html.js';
import { renderMarkdown } from './report/markdown.js';
import { lessonEntry } from './log.js';
import type { OpResult, Operations } from './operations.js';
import type { ProjectService } from './service.js';

export interface ProjectRouteDeps {
  readonly project: ProjectService;
  readonly ops: Operations;
  readonly sidecarId: string;
  readonly breakers: ControlConfig['breakers'];
  readonly slotAlertBytes: number;
  readonly appendLesson: (e: ReturnType<typeof lessonEntry>) => Promise<void>;
  /** One project round now (phase, progress), after an operation changed the record. */
  readonly refresh?: () => Promise<void>;
  readonly now?: () => number;
}

const by = (b: Record<string, unknown>) => `operator:${typeof b.by === 'string' && b.by.trim() ? b.by : 'admin-api'}`;

async function after<T>(d: ProjectRouteDeps, r: OpResult<T>): Promise<OpResult<T>> {
  await d.refresh?.().catch(() => undefined);
  return r;
}

function reply<T>(r: OpResult<T>): Reply {
  return r.ok ? { status: 200, body: r.value } : { status: r.status, body: { error: r.reason, ...(r.value !== undefined ? { result: r.value } : {}) } };
}

/** Everything the report shows, as JSON (the CLI renders Markdown and files from it). */
export async function reportData(d: ProjectRouteDeps) {
  const now = d.now ?? Date.now;
  const [view, samples] = await Promise.all([d.project.view(), d.project.samples().catch(() => [])]);
  const thresholds: ChartThresholds = {
    errorRate: d.breakers.errorRate.threshold,
    baselineDelta: d.breakers.errorRate.baselineDelta,
    baselineErrorRate: view.baselineErrorRate,
    slotAlertBytes: d.slotAlertBytes,
  };
  return { generatedAt: now(), sidecar: d.sidecarId, view, samples, thresholds };
}

export function projectRoutes(d: ProjectRouteDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/project',
      handler: async () => {
        const v = await d.project.view();
        return { status: 200, body: { state: v.state, phase: v.phase.phase, why: v.phase.why, ...v.meaning, conditions: v.conditions, gates: v.gates, log: v.log } };
      },
    },
    {
      method: 'POST',
      path: '/log',
      mutates: true,
      handler: async ({ body }) => {
        const b = body as Record<string, unknown>;
        if (typeof b.text !== 'string' || b.text.trim() === '') return { status: 400, body: { error: 'a lesson needs {"text": "..."}' } };
        if (b.text.length > 4000) return { status: 400, body: { error: 'a lesson is at most 4000 characters' } };
        const e = lessonEntry((d.now ?? Date.now)(), by(b), b.text.trim());
        await d.appendLesson(e);
        return { status: 200, body: { recorded: e } };
      },
    },
    { method: 'POST', path: '/gates/final', mutates: true, handler: async ({ body }) => reply(await after(d, await d.ops.finalGate(by(body as Record<string, unknown>)))) },
    {
      method: 'GET',
      path: '/gates/final',
      handler: async () => {
        const g = (await d.project.view()).gates.final;
        if (!g) return { status: 404, body: { error: 'the final gate has not been run: POST /gates/final (pg-cutover gate final)' } };
        return { status: 200, body: { gate: 'final', passed: g.passed, at: g.at, by: g.by, criteria: g.criteria } };
      },
    },
    {
      method: 'POST',
      path: '/snapshot',
      mutates: true,
      handler: async ({ body }) => {
        const b = body as Record<string, unknown>;
        if (b.to !== undefined && typeof b.to !== 'string') return { status: 400, body: { error: '"to" must be a string: s3://bucket/key or a file path' } };
        return reply(await after(d, await d.ops.snapshot(b.to as string | undefined, by(b))));
      },
    },
    {
      method: 'POST',
      path: '/decommission',
      mutates: true,
      handler: async ({ body }) => {
        const b = body as Record<string, unknown>;
        if (b.dryRun !== undefined && typeof b.dryRun !== 'boolean') return { status: 400, body: { error: '"dryRun" must be true or false' } };
        return reply(await after(d, await d.ops.decommission(b.dryRun === true, by(b))));
      },
    },
    {
      method: 'GET',
      path: '/report',
      handler: async ({ query }) => {
        const format = query.get('format') ?? 'html';
        if (!['html', 'md', 'json'].includes(format)) return { status: 400, body: { error: `format must be html, md or json, got ${JSON.stringify(format)}` } };
        const data = await reportData(d);
        if (format === 'json') return { status: 200, body: data };
        const charts = buildCharts(data.samples, data.thresholds);
        if (format === 'md') return { status: 200, body: renderMarkdown(data, charts), contentType: 'text/markdown; charset=utf-8' };
        return { status: 200, body: renderHtml(data, charts), contentType: 'text/html; charset=utf-8' };
      },
    },
  ];
}
