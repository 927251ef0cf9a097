/**
 * Turns one side's reply stream (source tap or shadow connection) into per-statement results for comparison:
 * success or SQLSTATE, command tag, row count and a hash of each DataRow's column bytes with masked columns
 * left out. Fed whole frames; results are grouped per ReadyForQuery (one group per Query or Sync sent).
 * This is observer code: it runs only for sampled transactions, never on the forwarding path.
 */
import { Backend } from '../protocol/codes.js';
import { sqlStateOf } from '../protocol/backend-encode.js';

export interface StatementResult {
  ok: boolean;
  sqlstate?: string;
  /** CommandComplete tag with the row count stripped ("INSERT 0 1" → "INSERT"), and the count apart. */
  tag?: string;
  rows: number;
  /** Order-sensitive hash of the returned rows' unmasked column bytes (FNV-1a 32, hex). */
  hash: string;
}

export type UnitResult = StatementResult[];

export interface MaskRule {
  /** Column names (lower case) masked in every result. */
  names: ReadonlySet<string>;
  /** Type OIDs masked (timestamps, uuid, ...). */
  typeOids: ReadonlySet<number>;
}

/** Default masks: generated keys by name, `now()`-like and random values by type (DESIGN.md, Compare). */
export const DEFAULT_MASK: MaskRule = {
  names: new Set(['id']),
  // 1114 timestamp, 1184 timestamptz, 1083 time, 1266 timetz, 2950 uuid
  typeOids: new Set([1114, 1184, 1083, 1266, 2950]),
};

const FNV_OFFSET = 0x811c9dc5;

export class ResultCollector {
  private current: StatementResult[] = [];
  private masked: boolean[] = [];
  private rows = 0;
  private hash = FNV_OFFSET;

  constructor(
    private readonly mask: MaskRule,
    private readonly onUnit: (u: UnitResult) => void,
  ) {}

  frame(type: number, buf: Buffer, start: number, end: number): void {
    const at = start + 5;
    switch (type) {
      case Backend.RowDescription:
        this.describe(buf, at, end);
        return;
      case Backend.DataRow:
        this.row(buf, at, end);
        return;
      case Backend.CommandComplete: {
        const text = buf.toString('utf8', at, end - 1);
        const m = /^(.*?)(?: (\d+))?(?: (\d+))?$/.exec(text)!;
        const count = m[3] ?? m[2];
        const tag = m[3] !== undefined ? m[1] : count !== undefined ? m[1] : text;
        this.finish({ ok: true, tag, rows: count !== undefined ? Number(count) : this.rows, hash: this.hex() });
        return;
      }
      case Backend.EmptyQueryResponse:
        this.finish({ ok: true, tag: '', rows: 0, hash: this.hex() });
        return;
      case Backend.PortalSuspended:
        this.finish({ ok: true, tag: 'SUSPENDED', rows: this.rows, hash: this.hex() });
        return;
      case Backend.ErrorResponse:
        this.finish({ ok: false, sqlstate: sqlStateOf(buf, at, end), rows: 0, hash: '' });
        return;
      case Backend.ReadyForQuery: {
        const u = this.current;
        this.current = [];
        this.onUnit(u);
        return;
      }
      default:
        return;
    }
  }

  private finish(r: StatementResult): void {
    this.current.push(r);
    this.rows = 0;
    this.hash = FNV_OFFSET;
  }

  private hex(): string {
    return (this.hash >>> 0).toString(16).padStart(8, '0');
  }

  /** RowDescription: which columns to leave out of the hash. */
  private describe(buf: Buffer, at: number, end: number): void {
    const n = buf.readInt16BE(at);
    let p = at + 2;
    this.masked = new Array<boolean>(n);
    for (let i = 0; i < n && p < end; i++) {
      const z = buf.indexOf(0, p);
      const name = buf.toString('utf8', p, z).toLowerCase();
      const typeOid = buf.readInt32BE(z + 1 + 6);
      this.masked[i] = this.mask.names.has(name) || this.mask.typeOids.has(typeOid);
      p = z + 1 + 18;
    }
  }

  private row(buf: Buffer, at: number, end: number): void {
    this.rows++;
    const n = buf.readInt16BE(at);
    let p = at + 2;
    let h = this.hash;
    for (let i = 0; i < n && p < end; i++) {
      const len = buf.readInt32BE(p);
      p += 4;
      const skip = this.masked[i] === true;
      if (len < 0) {
        if (!skip) h = Math.imul(h ^ 0xff, 0x01000193);
        continue;
      }
      if (!skip) {
        for (let k = p; k < p + len; k++) h = Math.imul(h ^ buf[k], 0x01000193);
        h = Math.imul(h ^ 0xfe, 0x01000193); // column separator
      }
      p += len;
    }
    this.hash = Math.imul(h ^ 0xfd, 0x01000193); // row separator
  }
}
