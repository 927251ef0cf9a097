/**
 * How the client's transaction ended on the source, read from the source's reply as the shadow taps it. Apply
 * mode needs this: the shadow ends with COMMIT only when the source committed (DESIGN.md, "Shadow writes").
 *
 * A source transaction ends at a ReadyForQuery with status 'I' (protocol-flow.html#PROTOCOL-FLOW-SIMPLE-QUERY).
 * It committed when its last ending CommandComplete tag was COMMIT with no error after it, or, for an
 * autocommit or implicit transaction, when no tag ended it and no error occurred. PostgreSQL reports COMMIT
 * of a failed transaction with the tag ROLLBACK (sql-commit.html), so a failed transaction needs no special
 * case. ROLLBACK TO SAVEPOINT also reports ROLLBACK; a later COMMIT overrides it, and it alone never ends a
 * transaction. PREPARE TRANSACTION hands the transaction to a later COMMIT PREPARED the shadow cannot follow:
 * treated as not committed.
 */
import { TxStatus } from '../protocol/codes.js';

/** 'mixed': several source transactions ran in one shadow (pipelined units) and not all committed. */
export type SourceVerdict = 'commit' | 'rollback' | 'mixed';

export class SourceTxOutcome {
  private endTag: string | null = null;
  private errored = false;
  private committed = 0;
  private rolledBack = 0;
  private status: number = TxStatus.Idle;

  commandComplete(tag: string): void {
    if (tag === 'COMMIT' || tag === 'ROLLBACK' || tag === 'PREPARE TRANSACTION') {
      this.endTag = tag;
      this.errored = false;
    }
  }

  error(): void {
    this.errored = true;
  }

  ready(status: number): void {
    this.status = status;
    if (status !== TxStatus.Idle) return;
    if (!this.errored && (this.endTag === null || this.endTag === 'COMMIT')) this.committed++;
    else this.rolledBack++;
    this.endTag = null;
    this.errored = false;
  }

  /**
   * The verdict once the client's transaction is over. `unanswered`: units were sent to the source whose reply
   * never came (the client left mid-statement); closing the connection rolls back what is open there
   * (PostgreSQL ends the session's transaction when the connection closes), so they count as rolled back.
   */
  verdict(unanswered: boolean): SourceVerdict {
    const open = unanswered || this.status !== TxStatus.Idle;
    const rolledBack = this.rolledBack + (open ? 1 : 0);
    if (this.committed === 0) return 'rollback';
    return rolledBack === 0 ? 'commit' : 'mixed';
  }
}
