/**
 * Strings from the admin API (reasons, notes, error texts) reach the operator's terminal. A reason holding
 * ANSI escapes could rewrite the screen, and one holding CR/LF could forge audit lines: print them inert.
 */
/** C0 and C1 controls, DEL, and bidi overrides: what lets a server-supplied string move the cursor or forge lines. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;
const visible = (c: string): string =>
  c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? ' ' : c.charCodeAt(0) <= 0xff ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** One printable line: every control character (ANSI escapes, CR/LF, bidi overrides) shown as an escape, never obeyed. */
export function oneLine(s: string): string {
  return s.replace(CONTROL, visible);
}

/** JSON output: JSON.stringify escapes C0 controls but not C1 or bidi ones; they only occur inside strings, where \\uXXXX is equal. */
export function safeJson(v: unknown, indent?: number): string {
  return JSON.stringify(v, null, indent).replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Whole output text whose layout uses newlines (multi-line renderings): every other control character is
 * escaped as \uXXXX, which also keeps JSON output valid JSON.
 */
export function inertText(s: string): string {
  return s.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
