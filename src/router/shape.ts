import type { Role } from '../domain/role.js';
/**
 * Statement shape: the SQL text with its literal values masked, so that statements differing only
 * in literals share one classification cache entry (see "Hot path" in DESIGN.md).
 *
 * One left-to-right pass over char codes, following the PostgreSQL lexer (src/backend/parser/scan.l)
 * closely enough that a literal boundary here is a literal boundary there:
 *  - masked: numbers (`42`, `1.5`, `.5`, `1e-3`), `'...'` and `N'...'` and `U&'...'` (with `''`),
 *    `E'...'` (with backslash escapes), `B'...'` and `X'...'` (no escapes), `$$...$$`, `$tag$...$tag$`;
 *  - kept verbatim: keywords, identifiers (`t1`, `a$b`), `"quoted identifiers"`, parameters (`$1`),
 *    operators, whitespace, and comments that carry a routing hint (`pg-cutover:`);
 *  - other comments become one space: they are whitespace to the server, and tracing comments
 *    (sqlcommenter's `traceparent='…'`, Rails marginalia) differ on every request and would
 *    otherwise defeat the cache.
 * Assumes standard_conforming_strings = on (the default since PostgreSQL 9.1): with it off, a
 * backslash in a plain '...' string escapes the quote and literal boundaries move.
 * https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 *
 * The placeholder `{}` cannot occur in valid SQL outside a literal, quoted identifier or comment,
 * so two valid statements share a key only if they differ in literal values alone.
 */
export const LITERAL_PLACEHOLDER = '{}';

/** A comment containing this (any case) is a routing hint and stays in the key. */
const HINT_MARKER_RE = /pg-cutover/i;
const HINT_RE = /pg-cutover:(source|target)\b/i;

const QUOTE = 39; // '
const DQUOTE = 34; // "
const DOLLAR = 36; // $
const DOT = 46; // .
const MINUS = 45; // -
const PLUS = 43; // +
const SLASH = 47; // /
const STAR = 42; // *
const BACKSLASH = 92; // \
const AMP = 38; // &
const LF = 10;
const CR = 13;

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** scan.l ident_start: [A-Za-z\200-\377_] (any non-ASCII UTF-16 unit counts, as any high byte does). */
const isIdentStart = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c >= 128;
/** scan.l ident_cont: ident_start, digits and `$`. */
const isIdentCont = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === DOLLAR;

/** End (exclusive) of a standard '...' string whose body starts at `i`; `''` is an escaped quote. */
function endOfString(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    if (sql.charCodeAt(i) === QUOTE) {
      if (sql.charCodeAt(i + 1) !== QUOTE) return i + 1;
      i += 2;
    } else i++;
  }
  return n;
}

/** End of a B'...' or X'...' body starting at `i`. */
function endOfBitString(sql: string, i: number): number {
  const q = sql.indexOf("'", i);
  return q < 0 ? sql.length : q + 1;
}

/** End of an E'...' string body starting at `i`: backslash escapes the next char, `''` too. */
function endOfEString(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === BACKSLASH) i += 2;
    else if (c === QUOTE) {
      if (sql.charCodeAt(i + 1) !== QUOTE) return i + 1;
      i += 2;
    } else i++;
  }
  return n;
}

/** End of a "quoted identifier" body starting at `i`; `""` is an escaped quote. */
function endOfQuotedIdent(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    if (sql.charCodeAt(i) === DQUOTE) {
      if (sql.charCodeAt(i + 1) !== DQUOTE) return i + 1;
      i += 2;
    } else i++;
  }
  return n;
}

/** End of a numeric literal starting at `i` (a digit, or a dot followed by a digit). */
function endOfNumber(sql: string, i: number): number {
  const n = sql.length;
  while (i < n && isDigit(sql.charCodeAt(i))) i++;
  // `1..5` is 1 followed by `..` in scan.l (decimalfail), not a decimal.
  if (i < n && sql.charCodeAt(i) === DOT && sql.charCodeAt(i + 1) !== DOT) {
    i++;
    while (i < n && isDigit(sql.charCodeAt(i))) i++;
  }
  const c = sql.charCodeAt(i);
  if (c === 101 || c === 69) {
    // e/E: an exponent only when digits follow (optionally signed); otherwise the letter is not ours.
    let j = i + 1;
    const s = sql.charCodeAt(j);
    if (s === PLUS || s === MINUS) j++;
    if (isDigit(sql.charCodeAt(j))) {
      i = j;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
    }
  }
  return i;
}

/** If a dollar-quote delimiter (`$$` or `$tag$`) starts at `i`, its end; else -1. */
function endOfDollarTag(sql: string, i: number): number {
  const n = sql.length;
  let j = i + 1;
  if (j < n && isIdentStart(sql.charCodeAt(j))) {
    j++;
    // scan.l dolq_cont: ident_cont without `$`.
    while (j < n) {
      const c = sql.charCodeAt(j);
      if (c === DOLLAR || !isIdentCont(c)) break;
      j++;
    }
  }
  return j < n && sql.charCodeAt(j) === DOLLAR ? j + 1 : -1;
}

/** End of a `/* … *\/` comment starting at `i` (at the slash); comments nest in PostgreSQL. */
function endOfBlockComment(sql: string, i: number): number {
  const n = sql.length;
  let depth = 1;
  i += 2;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === STAR && sql.charCodeAt(i + 1) === SLASH) {
      i += 2;
      if (--depth === 0) return i;
    } else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) {
      depth++;
      i += 2;
    } else i++;
  }
  return n;
}

/** End of a `--` comment starting at `i`: up to, not including, the newline. */
function endOfLineComment(sql: string, i: number): number {
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === LF || c === CR) return i;
    i++;
  }
  return n;
}

/** The literal-masked shape of `sql`; returns `sql` itself when nothing was masked. Never throws. */
export function shapeKey(sql: string): string {
  const n = sql.length;
  let out = '';
  let last = 0; // sql[last, i) is pending verbatim text
  let changed = false;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    let litStart = i;
    let litEnd = -1; // set when [litStart, litEnd) is a literal to mask
    if (isIdentStart(c)) {
      const c1 = sql.charCodeAt(i + 1);
      if (c1 === QUOTE) {
        // E'..' has backslash escapes; B'..', X'..', N'..' follow the standard quoting rules.
        if (c === 101 || c === 69) litEnd = endOfEString(sql, i + 2);
        else if (c === 110 || c === 78) litEnd = endOfString(sql, i + 2);
        // Bit strings have no `''` escape (scan.l xb/xh): the first quote ends them.
        else if (c === 98 || c === 66 || c === 120 || c === 88) litEnd = endOfBitString(sql, i + 2);
      } else if ((c === 117 || c === 85) && c1 === AMP) {
        const c2 = sql.charCodeAt(i + 2);
        if (c2 === QUOTE) litEnd = endOfString(sql, i + 3);
        else if (c2 === DQUOTE) {
          i = endOfQuotedIdent(sql, i + 3);
          continue;
        }
      }
      if (litEnd < 0) {
        // A whole identifier or keyword: digits inside it (t1) are not numbers.
        i++;
        while (i < n && isIdentCont(sql.charCodeAt(i))) i++;
        continue;
      }
    } else if (isDigit(c) || (c === DOT && isDigit(sql.charCodeAt(i + 1)))) {
      litEnd = endOfNumber(sql, i);
    } else if (c === DOT && sql.charCodeAt(i + 1) === DOT) {
      // scan.l dot_dot: `..` is one token, so `..5` is not `.` + `.5`.
      i += 2;
      continue;
    } else if (c === QUOTE) {
      litEnd = endOfString(sql, i + 1);
    } else if (c === DQUOTE) {
      i = endOfQuotedIdent(sql, i + 1);
      continue;
    } else if (c === DOLLAR) {
      if (isDigit(sql.charCodeAt(i + 1))) {
        // $1: a parameter, part of the shape.
        i += 2;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        continue;
      }
      const tagEnd = endOfDollarTag(sql, i);
      if (tagEnd < 0) {
        i++;
        continue;
      }
      const close = sql.indexOf(sql.slice(i, tagEnd), tagEnd);
      litEnd = close < 0 ? n : close + (tagEnd - i);
    } else if ((c === MINUS && sql.charCodeAt(i + 1) === MINUS) || (c === SLASH && sql.charCodeAt(i + 1) === STAR)) {
      const end = c === MINUS ? endOfLineComment(sql, i + 2) : endOfBlockComment(sql, i);
      if (!HINT_MARKER_RE.test(sql.slice(i, end))) {
        out += sql.slice(last, i) + ' ';
        last = end;
        changed = true;
      }
      i = end;
      continue;
    } else {
      i++;
      continue;
    }
    out += sql.slice(last, litStart) + LITERAL_PLACEHOLDER;
    last = i = litEnd;
    changed = true;
  }
  return changed ? out + sql.slice(last) : sql;
}

/**
 * The routing hint in the comments before the first token, e.g. `/* pg-cutover:source *\/ SELECT …`.
 * Hint comments are kept verbatim by shapeKey, so statements sharing a key share their hint.
 */
export function leadingHint(sql: string): Role | undefined {
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 32 || (c >= 9 && c <= 13)) {
      i++;
      continue;
    }
    let end: number;
    if (c === MINUS && sql.charCodeAt(i + 1) === MINUS) end = endOfLineComment(sql, i + 2);
    else if (c === SLASH && sql.charCodeAt(i + 1) === STAR) end = endOfBlockComment(sql, i);
    else return undefined;
    const m = HINT_RE.exec(sql.slice(i, end));
    if (m) return m[1]!.toLowerCase() as Role;
    i = end;
  }
  return undefined;
}
