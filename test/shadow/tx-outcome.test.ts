/** How a source transaction ended, from its reply frames (apply mode's COMMIT-or-ROLLBACK decision). */
import t from 'tap';
import { SourceTxOutcome } from '../../src/shadow/tx-outcome.js';

type Ev = string; // 'C:TAG' CommandComplete, 'E' ErrorResponse, 'Z:I|T|E' ReadyForQuery
function run(evs: Ev[], unanswered = false): string {
  const o = new SourceTxOutcome();
  for (const e of evs) {
    if (e.startsWith('C:')) o.commandComplete(e.slice(2));
    else if (e === 'E') o.error();
    else o.ready(e.charCodeAt(2));
  }
  return o.verdict(unanswered);
}

const cases: [string, Ev[], string, boolean?][] = [
  ['autocommit write', ['C:UPDATE 1', 'Z:I'], 'commit'],
  ['autocommit write that failed', ['E', 'Z:I'], 'rollback'],
  ['implicit transaction, second statement failed', ['C:INSERT 0 1', 'E', 'Z:I'], 'rollback'],
  ['BEGIN … COMMIT', ['C:BEGIN', 'Z:T', 'C:UPDATE 1', 'Z:T', 'C:COMMIT', 'Z:I'], 'commit'],
  ['BEGIN … ROLLBACK', ['C:BEGIN', 'Z:T', 'C:UPDATE 1', 'Z:T', 'C:ROLLBACK', 'Z:I'], 'rollback'],
  ['COMMIT of a failed transaction answers ROLLBACK', ['C:BEGIN', 'Z:T', 'E', 'Z:E', 'C:ROLLBACK', 'Z:I'], 'rollback'],
  ['error recovered by ROLLBACK TO SAVEPOINT, then COMMIT', ['C:BEGIN', 'Z:T', 'C:SAVEPOINT', 'Z:T', 'E', 'Z:E', 'C:ROLLBACK', 'Z:T', 'C:UPDATE 1', 'Z:T', 'C:COMMIT', 'Z:I'], 'commit'],
  ['COMMIT failing (deferred constraint)', ['C:BEGIN', 'Z:T', 'C:INSERT 0 1', 'Z:T', 'E', 'Z:I'], 'rollback'],
  ['PREPARE TRANSACTION', ['C:BEGIN', 'Z:T', 'C:UPDATE 1', 'Z:T', 'C:PREPARE TRANSACTION', 'Z:I'], 'rollback'],
  ['client left inside the transaction', ['C:BEGIN', 'Z:T', 'C:UPDATE 1', 'Z:T'], 'rollback'],
  ['client left with a statement unanswered', [], 'rollback', true],
  ['two pipelined autocommit units, both committed', ['C:UPDATE 1', 'Z:I', 'C:UPDATE 1', 'Z:I'], 'commit'],
  ['two pipelined autocommit units, the second failed', ['C:UPDATE 1', 'Z:I', 'E', 'Z:I'], 'mixed'],
  ['committed, then left with a unit unanswered', ['C:UPDATE 1', 'Z:I'], 'mixed', true],
];
for (const [name, evs, want, unanswered] of cases) t.equal(run(evs, unanswered), want, name);
