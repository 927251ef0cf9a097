/**
 * Open and log in one backend connection: TCP (+ TLS via SSLRequest), StartupMessage,
 * authentication, then ParameterStatus/BackendKeyData up to ReadyForQuery.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP
 * The caller gets a paused socket with none of our listeners left, so it can attach its own
 * `data` handler without losing a byte.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { serialize } from 'pg-protocol/dist/serializer';
import type { BackendMessage } from 'pg-protocol/dist/messages';
import { Parser } from 'pg-protocol/dist/parser';
import { log } from '../support/log.js';
import { createBackendHandshake } from '../auth/backend-handshake.js';
import type { BackendLogin } from '../auth/backend-credential.js';
import { targetAddress, type BackendTarget } from './database-url.js';
import { SqlState } from '../protocol/sqlstate.js';
import { Backend, CANCEL_REQUEST_CODE, EncryptionReply, PROTOCOL_3_0 } from '../protocol/codes.js';

export interface BackendReady {
  socket: net.Socket;
  pid: number;
  secret: number;
  params: Map<string, string>;
  /** The raw ParameterStatus ('S') frames as received, concatenated, for replay to the client. */
  parameterStatus: Buffer;
  /** Bytes received after ReadyForQuery (normally empty): process them before the socket's next `data`. */
  leftover: Buffer;
}

export interface BackendConnectError {
  sqlstate: string;
  message: string;
}

export type BackendConnectResult = { ok: true; value: BackendReady } | { ok: false; error: BackendConnectError };

/** Startup frames are small; anything larger means we are not talking to PostgreSQL. */
const MAX_STARTUP_FRAME = 1 << 20;

/**
 * StartupMessage built here rather than with pg-protocol's serialize.startup, which always
 * appends client_encoding=UTF8 and so would override the client's own client_encoding.
 */
export function startupMessage(params: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(params)) parts.push(Buffer.from(`${k}\0${v}\0`));
  const body = Buffer.concat([...parts, Buffer.from([0])]);
  const head = Buffer.alloc(8);
  head.writeInt32BE(body.length + 8, 0);
  head.writeInt32BE(PROTOCOL_3_0, 4);
  return Buffer.concat([head, body]);
}

/** user/database come from the target (database may be overridden by the client's); everything else passes through. */
function startupParams(target: BackendTarget, given: Record<string, string>, user: string): Record<string, string> {
  const out: Record<string, string> = { user, database: given.database ?? target.database };
  for (const [k, v] of Object.entries(given)) if (k !== 'user' && k !== 'database') out[k] = v;
  return out;
}

function tlsOptions(target: BackendTarget, socket: net.Socket): tls.ConnectionOptions {
  const verify = target.tlsVerify ?? 'none';
  const opts: tls.ConnectionOptions = { socket, rejectUnauthorized: verify !== 'none' };
  if (net.isIP(target.host) === 0) opts.servername = target.host;
  if (target.tlsRootCertPath) opts.ca = readFileSync(target.tlsRootCertPath);
  // verify-ca checks the chain only, not that the certificate names this host.
  if (verify === 'verify-ca') opts.checkServerIdentity = () => undefined;
  return opts;
}

export function connectBackend(
  target: BackendTarget,
  given: Record<string, string>,
  /** `login`: log in as this role with this credential instead of the URL's user and password. */
  opts: { signal?: AbortSignal; login?: BackendLogin | null } = {},
): Promise<BackendConnectResult> {
  const user = opts.login?.user ?? target.user;
  const where = `${target.role} backend ${targetAddress(target)}`;
  return new Promise((resolve) => {
    let socket: net.Socket = net.connect({ host: target.host, port: target.port, noDelay: true });
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    let phase: 'tcp' | 'ssl-response' | 'tls' | 'startup' = 'tcp';
    let buffered: Buffer = Buffer.alloc(0);
    let busy = false;
    const handshake = createBackendHandshake({ role: target.role, user, password: target.password, credential: opts.login?.credential });
    const parser = new Parser();

    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      socket.removeListener('connect', onTcpConnect);
    };
    const finish = (r: BackendConnectResult): void => {
      if (settled) return;
      settled = true;
      cleanup();
      if (!r.ok) socket.destroy();
      resolve(r);
    };
    const unreachable = (reason: string): void =>
      finish({ ok: false, error: { sqlstate: SqlState.CannotConnect, message: `could not connect to ${where}: ${reason}` } });

    function onError(err: Error): void {
      unreachable(err.message);
    }
    function onClose(): void {
      unreachable('server closed the connection unexpectedly');
    }
    function onAbort(): void {
      unreachable('connection attempt aborted');
    }

    function onTcpConnect(): void {
      if (target.tls === 'disable') return sendStartup();
      phase = 'ssl-response';
      socket.write(serialize.requestSsl());
    }

    function sendStartup(): void {
      phase = 'startup';
      socket.write(startupMessage(startupParams(target, given, user)));
    }

    function startTls(): void {
      phase = 'tls';
      socket.removeListener('data', onData);
      socket.removeListener('error', onError);
      socket.removeListener('close', onClose);
      // The TLS socket reports failures from now on; keep the raw one from ever throwing an unheard 'error'.
      socket.on('error', () => undefined);
      let secure: tls.TLSSocket;
      try {
        secure = tls.connect(tlsOptions(target, socket));
      } catch (e) {
        return unreachable(`TLS setup failed: ${(e as Error).message}`);
      }
      socket = secure;
      secure.on('error', onError);
      secure.on('close', onClose);
      secure.once('secureConnect', () => {
        if (settled) return;
        secure.on('data', onData);
        sendStartup();
      });
    }

    function onData(chunk: Buffer): void {
      if (settled) return;
      if (phase === 'ssl-response') {
        // Exactly one byte may come back; more would be injected plaintext (CVE-2021-23214).
        if (chunk.length !== 1) return unreachable('unexpected data in response to SSLRequest');
        if (chunk[0] === EncryptionReply.Accept) return startTls();
        if (chunk[0] === EncryptionReply.Refuse) {
          if (target.tls === 'require') return unreachable('server does not support SSL, but SSL was required');
          return sendStartup();
        }
        return unreachable(`unexpected response 0x${chunk[0]!.toString(16)} to SSLRequest`);
      }
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (!busy) void drain();
    }

    /** Hand complete frames to the handshake one at a time (a SCRAM step awaits PBKDF2). */
    async function drain(): Promise<void> {
      busy = true;
      try {
        while (!settled && buffered.length >= 5) {
          const len = buffered.readInt32BE(1);
          if (len < 4 || len > MAX_STARTUP_FRAME) return unreachable(`invalid message length ${len} from server`);
          if (buffered.length < len + 1) break;
          const frame = buffered.subarray(0, len + 1);
          buffered = buffered.subarray(len + 1);
          // NegotiateProtocolVersion: the server downgrades a minor version or ignores _pq_ options; carry on.
          if (frame[0] === Backend.NegotiateProtocolVersion) continue;
          let msg: BackendMessage | undefined;
          try {
            parser.parse(frame, (m) => (msg = m));
          } catch (e) {
            return unreachable(`malformed message from server: ${(e as Error).message}`);
          }
          if (!msg) return unreachable('malformed message from server');
          const action = await handshake.onMessage(msg, frame);
          if (settled) return;
          switch (action.kind) {
            case 'send':
              socket.write(action.data);
              break;
            case 'wait':
              break;
            case 'fail':
              return finish({ ok: false, error: { sqlstate: action.sqlstate, message: action.message } });
            case 'ready':
              return ready();
            default: {
              const never: never = action;
              throw new Error(`unhandled handshake action ${JSON.stringify(never)}`);
            }
          }
        }
      } finally {
        busy = false;
      }
    }

    function ready(): void {
      socket.pause();
      const r = handshake.result();
      finish({
        ok: true,
        value: {
          socket,
          pid: r.pid,
          secret: r.secret,
          params: r.params,
          parameterStatus: Buffer.concat(r.parameterStatusFrames),
          leftover: Buffer.from(buffered),
        },
      });
    }

    if (opts.signal?.aborted) {
      socket.destroy();
      return resolve({ ok: false, error: { sqlstate: SqlState.CannotConnect, message: `could not connect to ${where}: connection attempt aborted` } });
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (target.connectTimeoutMs > 0) {
      timer = setTimeout(() => unreachable(`timeout after ${target.connectTimeoutMs} ms`), target.connectTimeoutMs);
    }
    socket.once('connect', onTcpConnect);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

/**
 * Ask the backend to cancel the query running in session (pid, secret): a new connection
 * carrying one CancelRequest packet, which the server answers by closing.
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 * Never throws: a cancel is best effort, as in libpq.
 */
export function sendCancelRequest(target: BackendTarget, pid: number, secret: number): Promise<void> {
  return new Promise((resolve) => {
    const packet = Buffer.alloc(16);
    packet.writeInt32BE(16, 0);
    packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
    // >>> 0: BackendKeyData fields are raw 32-bit values; accept them signed or unsigned.
    packet.writeUInt32BE(pid >>> 0, 8);
    packet.writeUInt32BE(secret >>> 0, 12);
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
    const timeoutMs = target.connectTimeoutMs > 0 ? target.connectTimeoutMs : 10_000;
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    let finished = false;
    function done(problem?: string): void {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      if (problem) log.debug({ role: target.role, address: targetAddress(target), pid, problem }, 'cancel request not delivered');
      resolve();
    }
    socket.once('connect', () => socket.end(packet));
    socket.on('error', (err) => done(err.message));
    socket.on('data', () => undefined);
    socket.on('close', () => done());
  });
}
