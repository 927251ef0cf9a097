/**
 * The few frontend messages the proxy writes itself (catch-up statements, shadow control). Forwarded client
 * messages are never re-encoded.
 */
import { Frontend, TargetKind } from './codes.js';

/** Query ('Q'): one simple-protocol query string. */
export function queryFrame(sql: string): Buffer {
  const n = Buffer.byteLength(sql);
  const b = Buffer.allocUnsafe(6 + n);
  b[0] = Frontend.Query;
  b.writeInt32BE(5 + n, 1);
  b.write(sql, 5, 'utf8');
  b[5 + n] = 0;
  return b;
}

/** Close ('C') of a named prepared statement. */
export function closeStatementFrame(name: string): Buffer {
  const n = Buffer.byteLength(name);
  const b = Buffer.allocUnsafe(7 + n);
  b[0] = Frontend.Close;
  b.writeInt32BE(6 + n, 1);
  b[5] = TargetKind.Statement;
  b.write(name, 6, 'utf8');
  b[6 + n] = 0;
  return b;
}

/** Describe ('D') of a named prepared statement. */
export function describeStatementFrame(name: string): Buffer {
  const b = closeStatementFrame(name);
  b[0] = Frontend.Describe;
  return b;
}

export const SYNC_FRAME: Buffer = Buffer.from([Frontend.Sync, 0, 0, 0, 4]);
