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
import type { ScramPassThrough } from '../auth/scram-client.js';
import { createServerAuth, type AuthStep } from '../auth/server.js';
import type { UserEntry } from '../auth/users.js';

/**
 * Largest password / SASL message accepted before login: PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH (65535,
 * src/include/libpq/auth.h) for pq_getmessage in recv_password_packet and the SASL exchange. Memory held by a
 * connection that has not logged in stays at a few kilobytes, whatever length a header claims.
 */
export const MAX_AUTH_MESSAGE_BYTES = 65_535;
/** PostgreSQL's MAX_STARTUP_PACKET_LENGTH (src/include/libpq/pqcomm.h). */
export const MAX_STARTUP_PACKET_BYTES = 10_000;

/** Where login finds a user: the users file first, then (optionally) a lookup on the source. */
export interface UserSource {
  get(name: string): UserEntry | undefined;
  /** Asked only for names `get` does not know; undefined: no such user. */
  lookup?(name: string): Promise<UserEntry | undefined>;
}

export interface LoginDeps {
  users: UserSource;
  tls: SecureContext | null;
  /** Refuse a StartupMessage that did not come over TLS (as a hostssl-only pg_hba.conf does). */
  requireTls?: boolean;
  /** For the require-tls refusal message, as PostgreSQL names the client host. */
  remoteAddress?: string;
  /** A CancelRequest arrived on this connection (it is closed right after, as PostgreSQL does). */
  onCancel(pid: number, secret: number): void;
  timeoutMs: number;
}

export type LoginResult =
  | { kind: 'ok'; socket: Socket; user: string; params: Record<string, string>; rest: Buffer; entry?: UserEntry; scram?: ScramPassThrough }
  | { kind: 'cancel' }
  | { kind: 'fail'; sqlstate: string; message: string; socket: Socket; quiet?: boolean; silent?: boolean; legacy?: boolean };

const AUTH_TYPES: ReadonlySet<number> = new Set([Frontend.Password, Frontend.Terminate]);

export function login(sock: Socket, deps: LoginDeps): Promise<LoginResult> {
  return new Promise<LoginResult>((resolve) => {
    let socket: Socket = sock;
    let done = false;
    let startup = new StartupReader(MAX_STARTUP_PACKET_BYTES);
    let tlsDone = false;
    let gssDone = false;
    let user = '';
    let params: Record<string, string> = {};
    let auth: ReturnType<typeof createServerAuth> | null = null;
    let entry: UserEntry | undefined;
    /** Bytes that arrived while the user was being looked up (null: not looking up). */
    let waiting: Buffer[] | null = null;
    let waitingBytes = 0;
    const frames = new FrameReader(MAX_AUTH_MESSAGE_BYTES, AUTH_TYPES);

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
    /** Logged and counted, but the client gets no message: PostgreSQL's COMMERROR before the StartupMessage. */
    const failSilently = (sqlstate: string, message: string) => finish({ kind: 'fail', sqlstate, message, socket, silent: true });
    /** A second SSLRequest/GSSENCRequest: PostgreSQL reads its code as a protocol version. */
    const unsupported = (code: number) =>
      fail(SqlState.FeatureNotSupported, `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0 to 3.0`);
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
          finish({ kind: 'ok', socket, user, params, rest, entry, scram: s.scram });
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
          if (p.legacy) return finish({ kind: 'fail', sqlstate: p.sqlstate, message: p.message, socket, legacy: true });
          return p.silent ? failSilently(p.sqlstate, p.message) : fail(p.sqlstate, p.message);
        case 'sslRequest':
          if (tlsDone) return unsupported(packet.readUInt32BE(4));
          tlsDone = true;
          // Bytes already behind the request were sent before the answer: PostgreSQL refuses them, 'N' or 'S'.
          if (!deps.tls) {
            socket.write('N');
            if (rest.length > 0) return fail(SqlState.ProtocolViolation, 'received unencrypted data after SSL request');
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
          startup = new StartupReader(MAX_STARTUP_PACKET_BYTES);
          return;
        case 'gssEncRequest':
          if (gssDone) return unsupported(packet.readUInt32BE(4));
          gssDone = true;
          socket.write('N');
          if (rest.length > 0) return fail(SqlState.ProtocolViolation, 'received unencrypted data after GSSAPI encryption request');
          return;
        case 'cancelRequest':
          if (p.secretKey.length === 4) deps.onCancel(p.processId, p.secretKey.readInt32BE(0));
          socket.destroy();
          return finish({ kind: 'cancel' });
        case 'startupMessage': {
          user = p.user;
          params = { ...p.params };
          if (p.negotiate) socket.write(enc.negotiateProtocolVersion(0, p.negotiate.unrecognizedOptions));
          if (deps.requireTls && !(socket instanceof TLSSocket)) {
            // PostgreSQL's words for a client that only a hostssl line would admit (src/backend/libpq/auth.c).
            const host = deps.remoteAddress ?? 'unknown';
            return fail(SqlState.InvalidAuthorization,
              `no pg_hba.conf entry for host "${host}", user "${user}", database "${params.database ?? user}", no encryption`);
          }
          const known = deps.users.get(user);
          if (known !== undefined || !deps.users.lookup) return beginAuth(known, rest);
          waiting = [rest];
          waitingBytes = rest.length;
          deps.users.lookup(user).then(
            (found) => {
              if (done) return;
              const buffered = Buffer.concat(waiting!);
              waiting = null;
              beginAuth(found, buffered);
            },
            () => fail(SqlState.ConnectionFailure, 'could not look up the user'),
          );
          return;
        }
        default: {
          const never: never = p;
          throw new Error(`unknown startup packet ${JSON.stringify(never)}`);
        }
      }
    };

    const beginAuth = (found: UserEntry | undefined, rest: Buffer) => {
      entry = found;
      auth = createServerAuth(found, user);
      step(auth.start(), rest);
      if (!done && rest.length > 0) onAuthData(rest);
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
      if (waiting !== null) {
        waiting.push(chunk);
        waitingBytes += chunk.length;
        if (waitingBytes > MAX_AUTH_MESSAGE_BYTES) fail(SqlState.ProtocolViolation, 'too much data before authentication');
        return;
      }
      let data: Buffer = chunk;
      while (!done && !auth && waiting === null) {
        const r = startup.feed(data);
        if (r === null) return;
        if ('sqlstate' in r) return r.silent ? failSilently(r.sqlstate, r.message) : fail(r.sqlstate, r.message);
        onStartupPacket(r.packet, r.rest);
        if (r.rest.length === 0 || auth || waiting !== null) return;
        data = r.rest;
        startup = new StartupReader(MAX_STARTUP_PACKET_BYTES);
      }
    }

    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
  });
}
