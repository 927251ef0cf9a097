/**
 * The fast path's gate (states where every unit goes to one backend, nothing routed): a client frame is
 * decoded and classified only when its SQL bytes could hold something the proxy must still know there (a
 * session statement to replay, a statement that pins the session, or several statements). The classifier
 * decides; this only skips it, conservatively, for text that holds none of the words any such statement
 * needs: SET/RESET, PREPARE, DEALLOCATE, DISCARD, TEMP, LISTEN, advisory, or a `;` followed by more. Any
 * case, anywhere (a leading comment does not hide a SET). A false "maybe" costs one cached classification.
 */

/** Lower-case words that send a frame to the classifier. */
const WORDS = ['set', 'prepare', 'deallocate', 'discard', 'temp', 'listen', 'advisory'].map((w) => Buffer.from(w, 'latin1'));
/** First letters of WORDS, by lower-case byte. */
const FIRST = new Uint8Array(256);
for (const w of WORDS) FIRST[w[0]] = 1;

function wordAt(buf: Buffer, i: number, end: number, w: Buffer): boolean {
  if (end - i < w.length) return false;
  for (let k = 1; k < w.length; k++) if ((buf[i + k] | 0x20) !== w[k]) return false;
  return true;
}

/** May the SQL text in buf[at, end) hold a session statement, a pin or several statements? */
export function mayHaveFacts(buf: Buffer, at: number, end: number): boolean {
  for (let i = at; i < end; i++) {
    const c = buf[i];
    if (c === 0x3b /* ; */) {
      for (let j = i + 1; j < end; j++) {
        const d = buf[j];
        if (d !== 0 && d !== 0x20 && d !== 0x0a && d !== 0x09 && d !== 0x0d && d !== 0x3b) return true;
      }
      return false;
    }
    const l = c | 0x20;
    if (FIRST[l] === 0) continue;
    for (const w of WORDS) if (w[0] === l && wordAt(buf, i, end, w)) return true;
  }
  return false;
}
