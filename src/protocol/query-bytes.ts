/**
 * Byte tests on a simple Query's text (the body after the type and length), made before decoding it: the
 * forwarding path decodes a Query only when one of these says it may matter.
 */

/** A `;` before the Query's last bytes (its terminator and trailing blanks): it may hold several statements. */
export function hasInnerSemicolon(buf: Buffer, at: number, end: number): boolean {
  const i = buf.indexOf(0x3b, at);
  if (i < 0 || i >= end) return false;
  for (let j = i + 1; j < end; j++) {
    const c = buf[j];
    if (c !== 0 && c !== 0x20 && c !== 0x0a && c !== 0x09 && c !== 0x0d && c !== 0x3b) return true;
  }
  return false;
}

/** Cheap byte test before decoding a Query's text: could it be SET, RESET, PREPARE, DEALLOCATE or DISCARD? */
export function mayChangeSession(buf: Buffer, at: number, end: number): boolean {
  let i = at;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
  if (end - i < 4) return false;
  const a = buf[i] | 0x20;
  const b = buf[i + 1] | 0x20;
  const c = buf[i + 2] | 0x20;
  if (a === 0x73 && b === 0x65 && c === 0x74) return true; // set
  if (a === 0x72 && b === 0x65 && c === 0x73) return true; // res(et)
  if (a === 0x70 && b === 0x72 && c === 0x65) return true; // pre(pare)
  if (a === 0x64 && b === 0x65 && c === 0x61) return true; // dea(llocate)
  if (a === 0x64 && b === 0x69 && c === 0x73) return true; // dis(card)
  return false;
}
