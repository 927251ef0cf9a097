/**
 * Errors as values for configuration-style inputs (users file, database URLs):
 * every problem found is reported, one line each, instead of stopping at the first.
 */
export type Result<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(...errors: string[]): Result<T> {
  return { ok: false, errors };
}
