/**
 * SQL text helpers for the control plane's own statements (DDL cannot take bind parameters).
 * Quoting follows https://www.postgresql.org/docs/15/sql-syntax-lexical.html.
 */

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function quoteLiteral(text: string): string {
  // standard_conforming_strings is on (the default since 9.1), so backslashes need no escaping.
  return `'${text.replace(/'/g, "''")}'`;
}

/** A table (or sequence) name with its schema. */
export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

export function qualified(t: QualifiedName): string {
  return `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
}

/** `schema.name` for people (unquoted), the form the CLI accepts and reports use. */
export function displayName(t: QualifiedName): string {
  return t.schema === 'public' ? t.name : `${t.schema}.${t.name}`;
}

/**
 * Parses an operator's table name: `name` (schema public) or `schema.name`; double quotes keep case
 * and dots (`"My Schema"."T.1"`). Unquoted parts are folded to lower case, as PostgreSQL does.
 */
export function parseTableName(text: string): QualifiedName {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i < s.length) {
    if (s[i] === '"') {
      let out = '';
      i++;
      for (;;) {
        if (i >= s.length) throw new Error(`unterminated quoted identifier in ${JSON.stringify(text)}`);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            out += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        out += s[i++];
      }
      parts.push(out);
    } else {
      const j = s.indexOf('.', i);
      const raw = j < 0 ? s.slice(i) : s.slice(i, j);
      parts.push(raw.trim().toLowerCase());
      i = j < 0 ? s.length : j;
    }
    if (s[i] === '.') i++;
    else if (i < s.length) throw new Error(`unexpected ${JSON.stringify(s[i])} in table name ${JSON.stringify(text)}`);
  }
  if (parts.length === 1 && parts[0]) return { schema: 'public', name: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { schema: parts[0], name: parts[1] };
  throw new Error(`not a table name: ${JSON.stringify(text)} (expected name or schema.name)`);
}
