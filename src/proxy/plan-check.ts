/**
 * PostgreSQL answers 0A000 "cached plan must not change result type" when a named statement is used after its
 * result type changed (ALTER COLUMN … TYPE): the backend that prepared it revalidates its cached plan
 * (plancache.c, RevalidateCachedQuery) at Bind and at Describe. A statement the proxy re-Parses on the other
 * backend gets a fresh plan there instead and silently returns the new type, which a driver that cached the
 * old description decodes wrongly (issue 15). So before a statement is first re-Parsed on a link, the link that
 * has it is asked to Describe it (its replies swallowed): a 0A000 there is the client's answer, sent as that
 * backend sent it. Only for a whole unit that starts with the Bind, outside a transaction, where PostgreSQL's
 * answer is exactly that ErrorResponse and ReadyForQuery; other units are not checked.
 */
import { Frontend, TxStatus } from '../protocol/codes.js';
import { sqlStateOf } from '../protocol/backend-encode.js';
import type { Frame } from '../protocol/framer.js';
import { describeStatementFrame, SYNC_FRAME } from '../protocol/frontend-encode.js';
import type { CatchUp } from './link-state.js';
import type { BackendLink } from './backend-link.js';
import { statementUsed } from './catch-up.js';
import { isWhole } from './unit-assembler.js';
import { SqlState } from '../protocol/sqlstate.js';

/** PostgreSQL's "cached plan must not change result type" is 0A000 feature_not_supported. */
const CACHED_PLAN_CHANGED = SqlState.FeatureNotSupported;

/** The statement `unit` uses that `link` would re-Parse while `other` still holds its cached plan, or null. */
export function statementToCheck(unit: readonly Frame[], link: BackendLink, other: BackendLink | null, named: ReadonlyMap<string, { text: string }>): string | null {
  if (other === null || other === link || !other.idle || !isWhole(unit) || unit[0].type !== Frontend.Bind) return null;
  if (link.txStatus !== TxStatus.Idle || other.txStatus !== TxStatus.Idle) return null;
  const name = statementUsed(unit[0]);
  const st = name === null ? undefined : named.get(name);
  if (name === null || st === undefined || link.prepared.get(name) === st.text || other.prepared.get(name) !== st.text) return null;
  return name;
}

/** The probe: Describe the statement where it is cached, Sync; replies swallowed, its error kept by the link. */
export function planProbe(other: BackendLink, name: string): CatchUp {
  other.swallowedError = null;
  other.probing = true;
  return { bytes: Buffer.concat([describeStatementFrame(name), SYNC_FRAME]), replies: 1 };
}

/** After the probe: the backend's 0A000 ErrorResponse when the cached plan changed its result type, else null. */
export function planChanged(other: BackendLink): Buffer | null {
  const e = other.swallowedError;
  other.swallowedError = null;
  return e !== null && sqlStateOf(e, 5, e.length) === CACHED_PLAN_CHANGED ? e : null;
}
