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
import { md5ClientResponse } from './md5.js';
import { createScramClient, type ScramClient } from './scram-client.js';

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
  const protocolFail = (message: string): HandshakeAction => failWith('08001', message);
  const needPassword = (): string | undefined => (opts.password === undefined || opts.password === '' ? undefined : opts.password);
  const noPassword = (): HandshakeAction => failWith('28P01', 'server asked for a password but none is configured');

  async function onMessage(msg: BackendMessage, frame: Buffer): Promise<HandshakeAction> {
    if (msg.name === 'error') {
      const e = msg as DatabaseError;
      return failWith(e.code ?? '08001', e.message);
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
            if (pw === undefined) return noPassword();
            state = { step: 'await-auth-ok' };
            return { kind: 'send', data: serialize.password(pw) };
          }
          case 'authenticationMD5Password': {
            const pw = needPassword();
            if (pw === undefined) return noPassword();
            state = { step: 'await-auth-ok' };
            const salt = (msg as AuthenticationMD5Password).salt;
            return { kind: 'send', data: serialize.password(md5ClientResponse(pw, opts.user, salt)) };
          }
          case 'authenticationSASL': {
            const mechanisms = (msg as unknown as { mechanisms: string[] }).mechanisms;
            if (!mechanisms.includes(SCRAM)) return protocolFail(`no supported SASL mechanism offered (${mechanisms.join(', ')})`);
            const pw = needPassword();
            if (pw === undefined) return noPassword();
            const scram = createScramClient(pw);
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
        if (!r.ok) return protocolFail(r.errors.join('; '));
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
