/**
 * The target-cpu breaker's action (issue: "target CPU > 80% for 10 min → alert and a configurable
 * scale hook (command or webhook)"). A command runs through /bin/sh with the reading in its
 * environment; a webhook gets the reading as JSON. When both are configured both run, command first.
 * A hook that ran (or failed) is not run again within `minIntervalMs`, so calling `run` on every
 * tick while the breaker stays open is safe. Errors are values; `run` never throws.
 */
import { spawn } from 'node:child_process';
import { formatDuration } from '../domain/duration.js';

export interface ScaleHookOptions {
  /** Shell command (run as `/bin/sh -c command`). Default: none. */
  command?: string;
  /** URL to POST the reading to as JSON. Default: none. */
  webhookUrl?: string;
  /** Command run time or webhook round trip before giving up. Default 30 s. */
  timeoutMs?: number;
  /** After the timeout's SIGTERM, how long a command's process group gets before SIGKILL. Default 2 s. */
  killGraceMs?: number;
  /** After a run, later calls within this long return `suppressed`. Default 10 min. */
  minIntervalMs?: number;
  now?: () => number;
  /** Default the global fetch. */
  fetchImpl?: typeof fetch;
}

export interface ScaleReading {
  /** Target CPUUtilization percent; null when unmeasured. */
  readonly value: number | null;
  readonly threshold: number;
  readonly detail: string;
}

export interface ScaleContext {
  readonly sidecarId: string;
  /** The target as host:port. */
  readonly target: string;
}

export type ScaleHow = 'command' | 'webhook' | 'none' | 'suppressed';

export interface ScaleResult {
  readonly ok: boolean;
  readonly how: ScaleHow;
  /** One human line: exit status or HTTP status, and the tail of the command's output. */
  readonly detail: string;
}

export interface ScaleHook {
  run(reading: ScaleReading, ctx: ScaleContext): Promise<ScaleResult>;
}

/** Output kept from the command, from the end (the error is usually last). */
const TAIL_CHARS = 2000;
/** After the timeout's SIGTERM, how long the command's process group has before SIGKILL. */
const KILL_GRACE_MS = 2000;

const tail = (s: string): string => {
  const t = s.trim();
  return t.length > TAIL_CHARS ? `…${t.slice(-TAIL_CHARS)}` : t;
};

export function scaleEnv(reading: ScaleReading, ctx: ScaleContext): Record<string, string> {
  return {
    PGCUTOVER_BREAKER: 'target-cpu',
    PGCUTOVER_CPU_PERCENT: reading.value === null ? '' : String(reading.value),
    PGCUTOVER_THRESHOLD: String(reading.threshold),
    PGCUTOVER_SIDECAR: ctx.sidecarId,
    PGCUTOVER_TARGET: ctx.target,
    PGCUTOVER_DETAIL: reading.detail,
  };
}

/**
 * spawn rather than execFile: execFile cannot start a process group, and the timeout must kill the
 * whole group. Killing only /bin/sh would leave its children holding our pipes, and we would wait
 * for them. Output is kept to the last TAIL_CHARS of each stream.
 */
function runCommand(command: string, env: Record<string, string>, timeoutMs: number, killGraceMs: number): Promise<ScaleResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    let timedOut = false;
    let settled = false;
    const out = { stdout: '', stderr: '' };
    const timers: NodeJS.Timeout[] = [];
    const outputs = () => {
      const parts = [tail(out.stdout) && `stdout: ${tail(out.stdout)}`, tail(out.stderr) && `stderr: ${tail(out.stderr)}`].filter(Boolean);
      return parts.length ? `; ${parts.join('; ')}` : '';
    };
    const finish = (ok: boolean, status: string) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearTimeout(t);
      const what = timedOut ? `timed out after ${formatDuration(timeoutMs)}` : `${status} in ${formatDuration(Date.now() - started)}`;
      resolve({ ok: ok && !timedOut, how: 'command', detail: `command ${what}${outputs()}` });
    };
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (k: 'stdout' | 'stderr') => (c: Buffer) => {
      out[k] = (out[k] + c.toString()).slice(-2 * TAIL_CHARS);
    };
    child.stdout.on('data', keep('stdout'));
    child.stderr.on('data', keep('stderr'));
    child.on('error', (e) => finish(false, `could not start: ${e.message}`));
    // 'close' waits for the pipes too, so the output is complete.
    child.on('close', (code, signal) => finish(code === 0, code !== null ? `exited ${code}` : `killed by ${signal}`));
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        if (child.pid) process.kill(-child.pid, sig);
      } catch {
        // already gone
      }
    };
    timers.push(
      setTimeout(() => {
        timedOut = true;
        killGroup('SIGTERM');
        timers.push(
          setTimeout(() => {
            killGroup('SIGKILL');
            // Something that left the group may still hold the pipes: stop waiting for it.
            child.stdout.destroy();
            child.stderr.destroy();
            finish(false, 'killed');
          }, killGraceMs),
        );
      }, timeoutMs),
    );
  });
}

async function postWebhook(url: string, body: unknown, timeoutMs: number, doFetch: typeof fetch): Promise<ScaleResult> {
  try {
    const res = await doFetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const answer = text.trim() ? `: ${tail(text).slice(0, 200)}` : '';
    return { ok: res.ok, how: 'webhook', detail: `webhook answered HTTP ${res.status}${answer}` };
  } catch (e) {
    const err = e as Error;
    const why = err.name === 'TimeoutError' ? `no answer within ${formatDuration(timeoutMs)}` : String((err.cause as Error | undefined)?.message ?? err.message);
    return { ok: false, how: 'webhook', detail: `webhook failed: ${why}` };
  }
}

export function createScaleHook(opts: ScaleHookOptions): ScaleHook {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const minIntervalMs = opts.minIntervalMs ?? 10 * 60_000;
  const now = opts.now ?? Date.now;
  const doFetch = opts.fetchImpl ?? fetch;
  let lastRunAt: number | null = null;

  return {
    async run(reading, ctx) {
      try {
        if (!opts.command && !opts.webhookUrl) return { ok: true, how: 'none', detail: 'no scale command or webhook configured' };
        const at = now();
        if (lastRunAt !== null && at - lastRunAt < minIntervalMs) {
          return { ok: true, how: 'suppressed', detail: `scale hook ran ${formatDuration(at - lastRunAt)} ago (minimum interval ${formatDuration(minIntervalMs)})` };
        }
        lastRunAt = at; // before awaiting: a second call while this one runs is suppressed too
        const results: ScaleResult[] = [];
        if (opts.command) results.push(await runCommand(opts.command, scaleEnv(reading, ctx), timeoutMs, opts.killGraceMs ?? KILL_GRACE_MS));
        if (opts.webhookUrl) {
          const body = {
            breaker: 'target-cpu',
            sidecar: ctx.sidecarId,
            target: ctx.target,
            cpuPercent: reading.value,
            threshold: reading.threshold,
            detail: reading.detail,
            at: new Date(at).toISOString(),
          };
          results.push(await postWebhook(opts.webhookUrl, body, timeoutMs, doFetch));
        }
        return { ok: results.every((r) => r.ok), how: results[0]!.how, detail: results.map((r) => r.detail).join(' | ') };
      } catch (e) {
        return { ok: false, how: opts.command ? 'command' : 'webhook', detail: `scale hook failed: ${(e as Error).message}` };
      }
    },
  };
}
