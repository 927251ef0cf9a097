/**
 * SIGHUP: re-read what can change without a restart (users, TLS certificate, log level). Each part
 * reloads on its own; one that fails keeps what is in force and says why. Nothing here ends a
 * connection or the process (exit 129 on SIGHUP used to cut every open transaction).
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../support/log.js';

export type ReloadResult = { ok: true; value: string } | { ok: false; errors: string[] };

export interface Reloadable {
  readonly what: string;
  reload(): ReloadResult | Promise<ReloadResult>;
}

export interface ReloadReport {
  what: string;
  ok: boolean;
  detail: string;
}

export async function reloadAll(parts: readonly Reloadable[], log: Logger): Promise<ReloadReport[]> {
  const out: ReloadReport[] = [];
  for (const p of parts) {
    let r: ReloadResult;
    try {
      r = await p.reload();
    } catch (e) {
      r = { ok: false, errors: [(e as Error).message] };
    }
    const rep = { what: p.what, ok: r.ok, detail: r.ok ? r.value : r.errors.join('; ') };
    if (rep.ok) log.info(rep, 'reloaded');
    else log.warn(rep, 'reload failed: the previous setting stays in force');
    out.push(rep);
  }
  return out;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** The level in a --log-level-file: its first word (a file of "debug\n" sets debug). */
export function parseLogLevel(text: string): ReloadResult {
  const word = text.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  return (LOG_LEVELS as readonly string[]).includes(word) ? { ok: true, value: word } : { ok: false, errors: [`log level ${JSON.stringify(word.slice(0, 40))} is not one of ${LOG_LEVELS.join(', ')}`] };
}

/** Applies the level in `file` to `logger`, at start and on each reload. */
export function logLevelFile(file: string, logger: Logger): { what: string; reload(): ReloadResult } {
  return {
    what: 'log level',
    reload: () => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        return { ok: false, errors: [`--log-level-file ${file}: ${(e as Error).message}`] };
      }
      const r = parseLogLevel(text);
      if (!r.ok) return { ok: false, errors: r.errors.map((x) => `--log-level-file ${file}: ${x}`) };
      logger.level = r.value;
      return { ok: true, value: r.value };
    },
  };
}
