/**
 * The startup phase of a client connection, up to and including authentication at the proxy:
 * SSLRequest (TLS when configured, else 'N'), GSSENCRequest ('N'), CancelRequest (handed to the caller),
 * StartupMessage, then the auth exchange of the user's method.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { Frontend } from '../protocol/codes.js';
import { FrameReader, StartupReader } from '../protocol/framer.js';
import { decodeStartupPacket } from '../protocol/startup.js';
import * as enc from '../protocol/backend-encode.js';
import { SqlState } from '../protocol/sqlstate.js';
import { createServerAuth, type AuthStep } from './auth/server.js';
import type { UserEntry } from './auth/users.js';

export interface LoginDeps {
  users: ReadonlyMap<string, UserEntry>;
  tls: SecureContext | null;
  maxMessageBytes: number;
  /** A CancelRequest arrived on this connection (it is closed right after, as PostgreSQL does). */
  onCancel(pid: number, secret: number): void;
  timeoutMs: number;
}

export type LoginResult =
  | { kind: 'ok'; socket: Socket; user: string; params: Record<string, string>; rest: Buffer }
  | { kind: 'cancel' }
  | { kind: 'fail'; sqlstate: string; message: string; socket: Socket; quiet?: boolean };

const AUTH_TYPES: ReadonlySet<number> = new Set([Frontend.Password, Frontend.Terminate]);

export function login(sock: Socket, deps: LoginDeps): Promise<LoginResult> {
  return new Promise<LoginResult>((resolve) => {
    let socket: Socket = sock;
    let done = false;
    let startup = new StartupReader(10_000);
    let tlsDone = false;
    let gssDone = false;
    let user = '';
    let params: Record<string, string> = {};
    let auth: ReturnType<typeof createServerAuth> | null = null;
    const frames = new FrameReader(deps.maxMessageBytes, AUTH_TYPES);

    const finish = (r: LoginResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onClose);
      socket.pause();
      resolve(r);
    };
    const fail = (sqlstate: string, message: string, quiet = false) => finish({ kind: 'fail', sqlstate, message, socket, quiet });
    const timer = setTimeout(() => fail(SqlState.ProtocolViolation, 'canceling authentication due to timeout'), deps.timeoutMs);
    const onClose = () => fail(SqlState.ConnectionFailure, 'client closed the connection during startup', true);

    const step = (s: AuthStep, rest: Buffer) => {
      switch (s.kind) {
        case 'send-sasl':
          socket.write(enc.authenticationSASL(s.mechanisms));
          return;
        case 'send-sasl-continue':
          socket.write(enc.authenticationSASLContinue(s.data));
          return;
        case 'send-md5':
          socket.write(enc.authenticationMD5Password(s.salt));
          return;
        case 'ok':
          if (s.saslFinal) socket.write(enc.authenticationSASLFinal(s.saslFinal));
          socket.write(enc.authenticationOk());
          finish({ kind: 'ok', socket, user, params, rest });
          return;
        case 'fail':
          fail(s.sqlstate, s.message);
          return;
        default: {
          const never: never = s;
          throw new Error(`unknown auth step ${JSON.stringify(never)}`);
        }
      }
    };

    const onStartupPacket = (packet: Buffer, rest: Buffer) => {
      const p = decodeStartupPacket(packet);
      switch (p.name) {
        case 'protocolError':
          return fail(p.sqlstate, p.message);
        case 'sslRequest':
          if (tlsDone) return fail(SqlState.ProtocolViolation, 'SSLRequest received twice');
          tlsDone = true;
          if (!deps.tls) {
            socket.write('N');
            return;
          }
          if (rest.length > 0) return fail(SqlState.ProtocolViolation, 'received unencrypted data after SSL request');
          socket.write('S');
          socket.removeListener('data', onData);
          socket.removeListener('close', onClose);
          socket.removeListener('error', onClose);
          socket = new TLSSocket(socket, { isServer: true, secureContext: deps.tls });
          socket.on('data', onData);
          socket.on('close', onClose);
          socket.on('error', onClose);
          startup = new StartupReader(10_000);
          return;
        case 'gssEncRequest':
          if (gssDone) return fail(SqlState.ProtocolViolation, 'GSSENCRequest received twice');
          gssDone = true;
          socket.write('N');
          return;
        case 'cancelRequest':
          if (p.secretKey.length === 4) deps.onCancel(p.processId, p.secretKey.readInt32BE(0));
          socket.destroy();
          return finish({ kind: 'cancel' });
        case 'startupMessage': {
          user = p.user;
          params = { ...p.params };
          if (p.negotiate) socket.write(enc.negotiateProtocolVersion(0, p.negotiate.unrecognizedOptions));
          const entry = deps.users.get(user);
          auth = createServerAuth(entry, user);
          step(auth.start(), rest);
          if (!done && rest.length > 0) onAuthData(rest);
          return;
        }
        default: {
          const never: never = p;
          throw new Error(`unknown startup packet ${JSON.stringify(never)}`);
        }
      }
    };

    const onAuthData = (chunk: Buffer) => {
      const bad = frames.feed(chunk, (type, buf, start, end) => {
        if (done) return;
        if (type === Frontend.Terminate) return fail(SqlState.ConnectionFailure, 'client terminated during authentication', true);
        const tail = buf.subarray(end);
        step(auth!.onPasswordMessage(buf.subarray(start + 5, end)), end === buf.length ? Buffer.alloc(0) : tail);
      });
      if (bad && !done) fail(bad.sqlstate, bad.message);
    };

    function onData(chunk: Buffer): void {
      if (done) return;
      if (auth) return onAuthData(chunk);
      let data: Buffer = chunk;
      while (!done && !auth) {
        const r = startup.feed(data);
        if (r === null) return;
        if ('sqlstate' in r) return fail(r.sqlstate, r.message);
        onStartupPacket(r.packet, r.rest);
        if (r.rest.length === 0 || auth) return;
        data = r.rest;
        startup = new StartupReader(10_000);
      }
    }

    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}
