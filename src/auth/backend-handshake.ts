/**
 * The proxy as a client logging in to a backend, after the StartupMessage is sent: answer
 * the authentication requests, then collect ParameterStatus and BackendKeyData until
 * ReadyForQuery. An explicit state machine over pg-protocol's parsed messages; no sockets.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import { serialize } from 'pg-protocol/dist/serializer';
import type {
  AuthenticationMD5Password,
  BackendKeyDataMessage,
  BackendMessage,
  DatabaseError,
  ParameterStatusMessage,
} from 'pg-protocol/dist/messages';
import type { BackendCredential } from './backend-credential.js';
import { md5ClientResponse, md5SaltedResponse } from './md5.js';
import { createScramClient, SCRAM_SECRET_MISMATCH, type ScramClient, type ScramPassThrough } from './scram-client.js';
import { SqlState } from '../protocol/sqlstate.js';

export type HandshakeAction =
  | { kind: 'send'; data: Buffer }
  | { kind: 'wait' }
  | { kind: 'ready' }
  | { kind: 'fail'; sqlstate: string; message: string };

type State =
  | { step: 'await-auth' }
  | { step: 'await-sasl-continue'; scram: ScramClient }
  | { step: 'await-sasl-final'; scram: ScramClient }
  | { step: 'await-auth-ok'; scram?: ScramClient }
  | { step: 'await-ready' }
  | { step: 'ready' }
  | { step: 'failed' };

export interface HandshakeResult {
  pid: number;
  secret: number;
  params: Map<string, string>;
  /** Raw ParameterStatus frames, in arrival order, for replay to a client. */
  parameterStatusFrames: Buffer[];
}

export interface BackendHandshake {
  /** `frame`: the whole raw message (type byte, length, body) that `msg` was parsed from. */
  onMessage(msg: BackendMessage, frame: Buffer): Promise<HandshakeAction>;
  result(): HandshakeResult;
}

export interface HandshakeOptions {
  /** `source` / `target`, for messages. */
  role: string;
  user: string;
  password?: string;
  /** Instead of `password`: a pg_authid md5 hash or a client's SCRAM keys (pass-through). */
  credential?: BackendCredential;
}

const SCRAM = 'SCRAM-SHA-256';

export function createBackendHandshake(opts: HandshakeOptions): BackendHandshake {
  let state: State = { step: 'await-auth' };
  const res: HandshakeResult = { pid: 0, secret: 0, params: new Map(), parameterStatusFrames: [] };
  const prefix = `${opts.role} backend: `;

  const failWith = (sqlstate: string, message: string): HandshakeAction => {
    state = { step: 'failed' };
    return { kind: 'fail', sqlstate, message: prefix + message };
  };
  // 08001: we could not establish the connection; 28P01 when the problem is our credentials.
  const protocolFail = (message: string): HandshakeAction => failWith(SqlState.CannotConnect, message);
  const cred: BackendCredential =
    opts.credential ?? (opts.password === undefined || opts.password === '' ? { kind: 'none' } : { kind: 'password', password: opts.password });
  const needPassword = (): string | undefined => (cred.kind === 'password' ? cred.password : undefined);
  const noPassword = (what: string): HandshakeAction => {
    switch (cred.kind) {
      case 'none':
        return failWith(SqlState.InvalidPassword, `server asked for ${what} but the proxy holds no credential for role "${opts.user}"`);
      case 'md5-hash':
        return failWith(SqlState.InvalidAuthorization, `server asked for ${what} for role "${opts.user}" but the proxy holds only its md5 hash (it answers md5 challenges only)`);
      case 'scram-keys':
        return failWith(SqlState.InvalidAuthorization, `server asked for ${what} for role "${opts.user}" but the proxy holds only its SCRAM verifier (it answers SCRAM-SHA-256 only)`);
      default:
        return failWith(SqlState.InvalidPassword, `server asked for ${what} but none is configured`);
    }
  };

  async function onMessage(msg: BackendMessage, frame: Buffer): Promise<HandshakeAction> {
    if (msg.name === 'error') {
      const e = msg as DatabaseError;
      return failWith(e.code ?? SqlState.CannotConnect, e.message);
    }
    if (msg.name === 'notice') return { kind: 'wait' };
    const s = state;
    switch (s.step) {
      case 'await-auth':
        switch (msg.name) {
          case 'authenticationOk':
            state = { step: 'await-ready' };
            return { kind: 'wait' };
          case 'authenticationCleartextPassword': {
            const pw = needPassword();
            if (pw === undefined) return noPassword('a cleartext password');
            state = { step: 'await-auth-ok' };
            return { kind: 'send', data: serialize.password(pw) };
          }
          case 'authenticationMD5Password': {
            const salt = (msg as AuthenticationMD5Password).salt;
            if (cred.kind === 'md5-hash') {
              state = { step: 'await-auth-ok' };
              return { kind: 'send', data: serialize.password(md5SaltedResponse(cred.hash, salt)) };
            }
            const pw = needPassword();
            if (pw === undefined) return noPassword('an md5 password');
            state = { step: 'await-auth-ok' };
            return { kind: 'send', data: serialize.password(md5ClientResponse(pw, opts.user, salt)) };
          }
          case 'authenticationSASL': {
            const mechanisms = (msg as unknown as { mechanisms: string[] }).mechanisms;
            if (!mechanisms.includes(SCRAM)) return protocolFail(`no supported SASL mechanism offered (${mechanisms.join(', ')})`);
            let secret: string | ScramPassThrough | undefined = needPassword();
            if (cred.kind === 'scram-keys') secret = cred;
            if (secret === undefined) return noPassword('a SCRAM-SHA-256 password');
            const scram = createScramClient(secret);
            state = { step: 'await-sasl-continue', scram };
            return { kind: 'send', data: serialize.sendSASLInitialResponseMessage(SCRAM, scram.clientFirst) };
          }
          default:
            return protocolFail(`unexpected ${msg.name} message during authentication`);
        }
      case 'await-sasl-continue': {
        if (msg.name !== 'authenticationSASLContinue') return protocolFail(`expected SASLContinue, got ${msg.name}`);
        const r = await s.scram.onServerFirst((msg as unknown as { data: string }).data);
        if (state !== s) return { kind: 'wait' }; // superseded meanwhile; caller already gave up
        if (!r.ok) return r.errors[0] === SCRAM_SECRET_MISMATCH ? failWith(SqlState.InvalidAuthorization, `role "${opts.user}": ${r.errors[0]}`) : protocolFail(r.errors.join('; '));
        state = { step: 'await-sasl-final', scram: s.scram };
        return { kind: 'send', data: serialize.sendSCRAMClientFinalMessage(r.value) };
      }
      case 'await-sasl-final': {
        // Ok without SASLFinal: the server never proved it knows the password (libpq refuses too).
        if (msg.name === 'authenticationOk') return protocolFail('server sent AuthenticationOk before completing SCRAM');
        if (msg.name !== 'authenticationSASLFinal') return protocolFail(`expected SASLFinal, got ${msg.name}`);
        const r = s.scram.onServerFinal((msg as unknown as { data: string }).data);
        if (!r.ok) return protocolFail(r.errors.join('; '));
        state = { step: 'await-auth-ok', scram: s.scram };
        return { kind: 'wait' };
      }
      case 'await-auth-ok':
        if (msg.name !== 'authenticationOk') return protocolFail(`expected AuthenticationOk, got ${msg.name}`);
        if (s.scram && !s.scram.isComplete()) return protocolFail('server sent AuthenticationOk before completing SCRAM');
        state = { step: 'await-ready' };
        return { kind: 'wait' };
      case 'await-ready':
        switch (msg.name) {
          case 'parameterStatus': {
            const p = msg as ParameterStatusMessage;
            res.params.set(p.parameterName, p.parameterValue);
            res.parameterStatusFrames.push(frame);
            return { kind: 'wait' };
          }
          case 'backendKeyData': {
            const k = msg as BackendKeyDataMessage;
            res.pid = k.processID;
            res.secret = k.secretKey;
            return { kind: 'wait' };
          }
          case 'readyForQuery':
            state = { step: 'ready' };
            return { kind: 'ready' };
          default:
            return protocolFail(`unexpected ${msg.name} message before ReadyForQuery`);
        }
      case 'ready':
      case 'failed':
        return { kind: 'wait' };
      default: {
        const never: never = s;
        throw new Error(`unhandled handshake step ${JSON.stringify(never)}`);
      }
    }
  }

  return { onMessage, result: () => res };
}
