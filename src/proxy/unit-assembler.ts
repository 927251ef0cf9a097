/**
 * Gathers client frames into units, the smallest piece of client work the proxy routes as a whole: one
 * Query or FunctionCall, or extended-protocol messages up to Sync or Flush. A unit is also cut when it reaches
 * MAX_UNIT_FRAMES messages or MAX_UNIT_BYTES bytes, so a client that sends Parse after Parse without a Sync is
 * not buffered without bound; the rest follows the cut unit to its backend (backpressure bounds it from there).
 * Frames are views into the received chunks (never copied: the chunks are never reused).
 */
import { Frontend } from '../protocol/codes.js';
import type { Frame } from '../protocol/framer.js';

/**
 * Client bytes a session holds for a unit not yet routed (extended messages waiting for their Sync). Past it the
 * unit is routed as it stands, like one of more than 256 messages, and the rest follows it: 200 × 1 MiB Parse
 * without Sync used to be held whole (+198 MB).
 */
export const MAX_UNIT_BYTES = 4 * 1024 * 1024;
/** Messages a unit holds before it is routed as it stands. */
export const MAX_UNIT_FRAMES = 256;

/** Messages that end a unit: the client waits for an answer after them. */
export function endsUnit(type: number): boolean {
  return type === Frontend.Query || type === Frontend.Sync || type === Frontend.FunctionCall || type === Frontend.Flush;
}

/** A unit that ran to its end (Query, Sync or FunctionCall), not one cut by a Flush or the caps. */
export function isWhole(unit: readonly Frame[]): boolean {
  const t = unit[unit.length - 1].type;
  return t === Frontend.Query || t === Frontend.Sync || t === Frontend.FunctionCall;
}

export class UnitAssembler {
  private frames: Frame[] = [];
  private bytes = 0;

  /** No frame is waiting for the rest of its unit. */
  get empty(): boolean {
    return this.frames.length === 0;
  }

  /** Adds a frame; returns the unit it completes, or null while the unit goes on. */
  push(f: Frame): Frame[] | null {
    this.frames.push(f);
    this.bytes += f.end - f.start;
    if (!endsUnit(f.type) && this.frames.length <= MAX_UNIT_FRAMES && this.bytes < MAX_UNIT_BYTES) return null;
    const unit = this.frames;
    this.frames = [];
    this.bytes = 0;
    return unit;
  }
}
