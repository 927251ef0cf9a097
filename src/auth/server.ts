/**
 * Client authentication at the proxy: one explicit state machine per login. The caller
 * (the client session) turns each AuthStep into bytes (AuthenticationSASL / SASLContinue /
 * SASLFinal + Ok / MD5Password / ErrorResponse) and feeds back the body of each 'p' message.
 * Message flow: https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 *
 * An unknown user gets a full SCRAM exchange that fails only at the end, with the same
 * message and SQLSTATE as a wrong password, so neither the flow nor its timing reveals
 * which user names exist (as PostgreSQL does with its mock authentication).
 */
import { randomBytes } from 'node:crypto';
import { md5SaltedResponse, md5StoredHash, looksLikeMd5Hash } from './md5.js';
import type { ScramPassThrough } from './scram-client.js';
import { safeEqual, type ScramSecret } from './scram-crypto.js';
import { mockScramSecret, scramSecretFor } from './scram-secrets.js';
import { createScramServer, type ScramServer } from './scram-server.js';
import type { UserEntry } from './users.js';
import { SqlState } from '../protocol/sqlstate.js';

export const SCRAM_MECHANISM = 'SCRAM-SHA-256';

export type AuthFailCode = typeof SqlState.InvalidPassword | typeof SqlState.InvalidAuthorization | typeof SqlState.ProtocolViolation;

export type AuthStep =
  /** AuthenticationSASL listing these mechanisms. */
  | { kind: 'send-sasl'; mechanisms: string[] }
  /** AuthenticationSASLContinue with this server-first-message. */
  | { kind: 'send-sasl-continue'; data: Buffer }
  /** AuthenticationMD5Password with this 4-byte salt. */
  | { kind: 'send-md5'; salt: Buffer }
  /** AuthenticationOk, preceded by AuthenticationSASLFinal(saslFinal) when present; `scram`: for pass-through. */
  | { kind: 'ok'; saslFinal?: Buffer; scram?: ScramPassThrough }
  /** ErrorResponse (FATAL), then close. */
  | { kind: 'fail'; sqlstate: AuthFailCode; message: string };

export interface ServerAuth {
  start(): AuthStep;
  /** `payload`: the body of the client's 'p' message, after its 4-byte length. */
  onPasswordMessage(payload: Buffer): AuthStep;
}

type State =
  | { phase: 'new' }
  | { phase: 'sasl-initial'; scram: ScramServer; secret: ScramSecret }
  | { phase: 'sasl-response'; scram: ScramServer; secret: ScramSecret }
  | { phase: 'md5'; expected: Buffer }
  | { phase: 'done' };

const protocolViolation = (message: string): AuthStep => ({ kind: 'fail', sqlstate: SqlState.ProtocolViolation, message });

/** SASLInitialResponse body: String mechanism, Int32 length of the data (-1: none), Byte[n] data. */
function parseSaslInitial(payload: Buffer): { mechanism: string; data: Buffer } | undefined {
  const nul = payload.indexOf(0);
  if (nul < 0 || payload.length < nul + 5) return undefined;
  const mechanism = payload.toString('utf8', 0, nul);
  const len = payload.readInt32BE(nul + 1);
  const rest = payload.subarray(nul + 5);
  if (len === -1 && rest.length === 0) return { mechanism, data: Buffer.alloc(0) };
  if (len < 0 || len !== rest.length) return undefined;
  return { mechanism, data: rest };
}

/**
 * @param user the configured entry, or undefined when the name is not in the users list
 * @param username the name from the client's startup packet (used in messages and md5 hashes)
 */
export function createServerAuth(user: UserEntry | undefined, username: string): ServerAuth {
  let state: State = { phase: 'new' };
  const denied: AuthStep = {
    kind: 'fail',
    sqlstate: SqlState.InvalidPassword,
    message: `password authentication failed for user "${username}"`,
  };

  function startScram(): AuthStep {
    const secret = user ? scramSecretFor(user) : undefined;
    const used = secret ?? mockScramSecret(username);
    const scram = createScramServer(used, secret === undefined);
    state = { phase: 'sasl-initial', scram, secret: used };
    return { kind: 'send-sasl', mechanisms: [SCRAM_MECHANISM] };
  }

  function start(): AuthStep {
    if (state.phase !== 'new') return protocolViolation('authentication already started');
    if (!user) return startScram();
    switch (user.method) {
      case 'trust':
        state = { phase: 'done' };
        return { kind: 'ok' };
      case 'scram-sha-256':
        return startScram();
      case 'md5': {
        const pw = user.password;
        // As PostgreSQL does for an md5 pg_hba line and a SCRAM secret: any password the proxy could check with
        // SCRAM is asked for with SCRAM, so md5-method users look like everyone else (unknown users included).
        // Only an md5 hash needs the md5 challenge.
        if (pw !== undefined && pw !== '' && !looksLikeMd5Hash(pw)) return startScram();
        const stored = pw === undefined || pw === '' ? undefined : looksLikeMd5Hash(pw) ? pw : md5StoredHash(pw, username);
        const salt = randomBytes(4);
        // No usable hash: still ask, then fail like a wrong password.
        const expected = Buffer.from(stored ? md5SaltedResponse(stored, salt) : 'md5' + randomBytes(16).toString('hex'));
        state = { phase: 'md5', expected };
        return { kind: 'send-md5', salt };
      }
      default: {
        const never: never = user.method;
        throw new Error(`unhandled auth method ${String(never)}`);
      }
    }
  }

  function onPasswordMessage(payload: Buffer): AuthStep {
    const s = state;
    switch (s.phase) {
      case 'new':
      case 'done':
        state = { phase: 'done' };
        return protocolViolation('unexpected password message');
      case 'sasl-initial': {
        state = { phase: 'done' };
        const msg = parseSaslInitial(payload);
        if (!msg) return protocolViolation('malformed SASLInitialResponse message');
        if (msg.mechanism !== SCRAM_MECHANISM) return protocolViolation('client selected an invalid SASL authentication mechanism');
        const r = s.scram.onClientFirst(msg.data.toString('utf8'));
        if (!r.ok) return r.reason === 'malformed' ? protocolViolation(r.message) : denied;
        state = { phase: 'sasl-response', scram: s.scram, secret: s.secret };
        return { kind: 'send-sasl-continue', data: Buffer.from(r.message) };
      }
      case 'sasl-response': {
        state = { phase: 'done' };
        const r = s.scram.onClientFinal(payload.toString('utf8'));
        if (!r.ok) return r.reason === 'malformed' ? protocolViolation(r.message) : denied;
        return { kind: 'ok', saslFinal: Buffer.from(r.message), scram: r.clientKey ? { clientKey: r.clientKey, secret: s.secret } : undefined };
      }
      case 'md5': {
        state = { phase: 'done' };
        // PasswordMessage body: String (NUL-terminated).
        if (payload.length === 0 || payload[payload.length - 1] !== 0) return protocolViolation('invalid password packet');
        const got = payload.subarray(0, payload.length - 1);
        if (got.length === 0) return denied;
        return safeEqual(got, s.expected) ? { kind: 'ok' } : denied;
      }
      default: {
        const never: never = s;
        throw new Error(`unhandled auth phase ${JSON.stringify(never)}`);
      }
    }
  }

  return { start, onPasswordMessage };
}
