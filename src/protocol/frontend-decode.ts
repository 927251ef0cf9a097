/**
 * What routing needs from a client's frame, with as little allocation as possible: the SQL of a Query, the
 * statement name and SQL of a Parse. The forwarding path never decodes whole messages: it reads these and
 * forwards the original bytes. Layouts: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** SQL text of a Query ('Q') body, or null if the body is malformed. One native NUL scan, one string. */
export function queryText(body: Buffer): string | null {
  const end = body.length - 1;
  if (end < 0 || body.indexOf(0) !== end) return null;
  return body.toString('utf8', 0, end);
}

/** Statement name and text of a Parse ('P') body, or null if malformed. */
export interface ParseHead {
  /** The statement name ('' for the unnamed statement); this is not a message, so no message `name` here. */
  readonly name: string;
  readonly text: string;
}

/**
 * Statement name and SQL text of a Parse body without decoding the parameter OIDs. The whole layout is
 * still verified (the OID count must account exactly for the bytes left), so a non-null result means
 * the reference decoder in test/protocol/fixtures would accept the frame too.
 */
export function parseHead(body: Buffer): ParseHead | null {
  const nameEnd = body.indexOf(0);
  if (nameEnd < 0) return null;
  const textEnd = body.indexOf(0, nameEnd + 1);
  if (textEnd < 0 || textEnd + 3 > body.length) return null;
  const count = (body[textEnd + 1]! << 8) | body[textEnd + 2]!;
  if (textEnd + 3 + 4 * count !== body.length) return null;
  return {
    name: nameEnd === 0 ? '' : body.toString('utf8', 0, nameEnd),
    text: body.toString('utf8', nameEnd + 1, textEnd),
  };
}
