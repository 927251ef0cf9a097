/**
 * Server side of one SCRAM-SHA-256 exchange, as PostgreSQL runs it
 * (https://www.postgresql.org/docs/current/sasl-authentication.html; src/backend/libpq/auth-scram.c):
 * the user name inside the SCRAM messages is ignored (the startup packet's counts), channel
 * binding is not offered, so the gs2 flag must be `n` or `y`, and no authzid or mandatory
 * extension is accepted. Pure: strings in, strings out.
 */
import {
  hmac,
  isBase64,
  isScramPrintable,
  randomNonce,
  safeEqual,
  SCRAM_KEY_LEN,
  sha256,
  splitAttributes,
  xor,
  type ScramSecret,
} from './scram-crypto.js';

export type ScramServerResult =
  /** `clientKey`: recovered from the proof on success (RFC 5802 §3), for SCRAM pass-through to a backend. */
  | { ok: true; message: string; clientKey?: Buffer }
  /** `malformed`: protocol violation (08P01); `denied`: wrong proof or doomed exchange (28P01). */
  | { ok: false; reason: 'malformed' | 'denied'; message: string };

type State =
  | { step: 'await-client-first' }
  | { step: 'await-client-final'; gs2Header: string; clientFirstBare: string; serverFirst: string; nonce: string }
  | { step: 'done' };

export interface ScramServer {
  /** client-first-message → server-first-message. */
  onClientFirst(text: string): ScramServerResult;
  /** client-final-message → server-final-message (`v=<ServerSignature>`). */
  onClientFinal(text: string): ScramServerResult;
}

const malformed = (detail: string): ScramServerResult => ({
  ok: false,
  reason: 'malformed',
  message: `malformed SCRAM message: ${detail}`,
});

/**
 * @param secret the user's verifier parts
 * @param doomed true for an unknown user (or one that cannot do SCRAM): the exchange runs to
 *   the end with a mock secret and always fails there, so it looks like a wrong password.
 */
export function createScramServer(secret: ScramSecret, doomed: boolean): ScramServer {
  let state: State = { step: 'await-client-first' };

  function onClientFirst(text: string): ScramServerResult {
    if (state.step !== 'await-client-first') return malformed('unexpected client-first-message');
    state = { step: 'done' };
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const flag = text[0];
    if (flag === 'p') return malformed('client requires SCRAM channel binding, but it is not supported');
    if (flag !== 'n' && flag !== 'y') return malformed(`unexpected channel-binding flag ${JSON.stringify(flag ?? '')}`);
    if (text[1] !== ',') return malformed('comma expected after channel-binding flag');
    if (text[2] === 'a') return malformed('client uses authorization identity, but it is not supported');
    if (text[2] !== ',') return malformed('unexpected attribute in gs2 header');
    const gs2Header = text.slice(0, 3);
    const clientFirstBare = text.slice(3);
    if (clientFirstBare.startsWith('m=')) return malformed('client requires mandatory SCRAM extension');
    const attrs = splitAttributes(clientFirstBare);
    if (!attrs || attrs.length < 2 || attrs[0]![0] !== 'n' || attrs[1]![0] !== 'r') {
      return malformed('client-first-message must be n=<user>,r=<nonce>[,extensions]');
    }
    const clientNonce = attrs[1]![1];
    if (clientNonce.length === 0 || !isScramPrintable(clientNonce)) return malformed('non-printable characters in SCRAM nonce');
    const nonce = clientNonce + randomNonce();
    const serverFirst = `r=${nonce},s=${secret.salt.toString('base64')},i=${secret.iterations}`;
    state = { step: 'await-client-final', gs2Header, clientFirstBare, serverFirst, nonce };
    return { ok: true, message: serverFirst };
  }

  function onClientFinal(text: string): ScramServerResult {
    if (state.step !== 'await-client-final') return malformed('unexpected client-final-message');
    const s = state;
    state = { step: 'done' };
    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const attrs = splitAttributes(text);
    if (!attrs || attrs.length < 3 || attrs[0]![0] !== 'c' || attrs[1]![0] !== 'r') {
      return malformed('client-final-message must be c=<binding>,r=<nonce>[,extensions],p=<proof>');
    }
    const last = attrs[attrs.length - 1]!;
    if (last[0] !== 'p') return malformed('proof must be the last attribute of client-final-message');
    // Without channel binding, c= is the base64 of the gs2 header the client sent first ("biws" for n,,).
    if (attrs[0]![1] !== Buffer.from(s.gs2Header).toString('base64')) {
      return malformed('unexpected SCRAM channel-binding attribute in client-final-message');
    }
    if (!isBase64(last[1])) return malformed('malformed proof in client-final-message');
    const proof = Buffer.from(last[1], 'base64');
    if (proof.length !== SCRAM_KEY_LEN) return malformed('malformed proof in client-final-message');
    if (attrs[1]![1] !== s.nonce) return malformed('nonce does not match');

    const withoutProof = text.slice(0, text.length - last[1].length - 3); // minus ",p=<proof>"
    const authMessage = `${s.clientFirstBare},${s.serverFirst},${withoutProof}`;
    // Same work on the doomed path as on the real one, so timing does not tell them apart.
    const clientSignature = hmac(secret.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    const matches = safeEqual(sha256(clientKey), secret.storedKey);
    const serverSignature = hmac(secret.serverKey, authMessage);
    if (doomed || !matches) return { ok: false, reason: 'denied', message: 'proof does not match' };
    return { ok: true, message: `v=${serverSignature.toString('base64')}`, clientKey };
  }

  return { onClientFirst, onClientFinal };
}
