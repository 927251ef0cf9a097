/**
 * The two databases of a cutover, by the part they play: `source` is the PostgreSQL 14 the application
 * runs on today, `target` the PostgreSQL 15 / Aurora it moves to. Which of them takes writes is the
 * cutover state's business (control/states.ts `writesTo`), not this type's.
 */
export type Role = 'source' | 'target';

export const ROLES: readonly Role[] = ['source', 'target'];

export function isRole(v: unknown): v is Role {
  return v === 'source' || v === 'target';
}

export function otherRole(r: Role): Role {
  return r === 'source' ? 'target' : 'source';
}
