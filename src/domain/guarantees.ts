/**
 * What a cutover state guarantees and what is left to do from it, for `pg-cutover status` and GET /state
 * (the late states looked like labels only). Pure data.
 */
import type { CutoverState } from './states.js';

export interface StateMeaning {
  readonly guarantees: readonly string[];
  readonly remaining: readonly string[];
}

const EARLY: StateMeaning = {
  guarantees: ['every write goes to the source; the target is a replica'],
  remaining: ['move reads (10/50/100%), shadow writes, gate 3, write switchover, parallel run, final gate, decommission'],
};

export const STATE_MEANING: { readonly [S in CutoverState]: StateMeaning } = {
  SOURCE_PRIMARY: EARLY,
  READS_10PCT_AURORA: EARLY,
  READS_50PCT_AURORA: EARLY,
  READS_100PCT_AURORA: EARLY,
  SHADOW_WRITES: {
    guarantees: ['every write goes to the source; sampled write transactions run in lock-step on the target and are rolled back'],
    remaining: ['gate 3, write switchover, parallel run, final gate, decommission'],
  },
  WRITES_TO_AURORA: {
    guarantees: [
      'every write goes to the target; application roles are fenced on the source',
      'reverse replication keeps the source current, so a rollback loses no acknowledged write',
    ],
    remaining: ['stable time, then SOURCE_READ_ONLY, CUTOVER_COMPLETE, final gate, decommission'],
  },
  SOURCE_READ_ONLY: {
    guarantees: [
      'writes on the target only; the source refuses application writes (fenced) and is kept current by reverse replication',
      'the forward slot on the source is advanced periodically, so it does not hold WAL for the parallel run',
      'a rollback is still possible and loses nothing',
    ],
    remaining: ['7 days (scaled) stable, then CUTOVER_COMPLETE', 'final gate (stability window, checksums, snapshot, no source sessions)', 'decommission'],
  },
  CUTOVER_COMPLETE: {
    guarantees: [
      'writes on the target only; the source is fenced and still current through reverse replication until decommission',
      'the forward slot on the source is advanced periodically (its WAL came from the target)',
    ],
    remaining: [
      'pg-cutover snapshot: archive a verified pg_dump of the source',
      'pg-cutover gate final: stability window without rollback, checksums equal, snapshot verified, no application session on the source',
      'pg-cutover decommission: stop reverse replication, drop slots, publications and heartbeat, revoke source logins',
    ],
  },
  ROLLBACK: {
    guarantees: ['writes return to the source once reverse replication has applied every target write; reads ramp back'],
    remaining: ['the rollback procedure ends in SOURCE_PRIMARY; record a lesson (pg-cutover log add) and retry from phase 3'],
  },
};

/** Phase 4 progress that changes what is left at CUTOVER_COMPLETE. */
export interface Phase4Progress {
  readonly snapshot: boolean;
  readonly finalPassed: boolean;
  readonly decommissioned: boolean;
}

/** STATE_MEANING, with CUTOVER_COMPLETE's list narrowed to what is really left. */
export function meaningFor(state: CutoverState, p: Phase4Progress): StateMeaning {
  if (state !== 'CUTOVER_COMPLETE') return STATE_MEANING[state];
  if (p.decommissioned) {
    return {
      guarantees: [
        'the target is the only database the application uses; every pg-cutover replication object is gone from both sides',
        'application logins on the source are revoked; a verified snapshot of it is archived',
      ],
      remaining: ['stop and retire the source cluster when the archive policy allows (pg-cutover never deletes a database)'],
    };
  }
  const left = STATE_MEANING.CUTOVER_COMPLETE.remaining.filter((r) => !(p.snapshot && r.startsWith('pg-cutover snapshot')) && !(p.finalPassed && r.startsWith('pg-cutover gate final')));
  return { guarantees: STATE_MEANING.CUTOVER_COMPLETE.guarantees, remaining: left };
}
