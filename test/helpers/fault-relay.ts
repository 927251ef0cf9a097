/**
 * A small fault-injecting TCP relay for tests: put it between the proxy and a backend (or Redis) and switch
 * its mode while traffic flows.
 * - `pass`: forwards both ways.
 * - `delay`: every chunk waits `delayMs` (order kept), both ways.
 * - `stall`: forwards nothing, buffers; back to `pass` delivers the backlog (a long GC pause, a congested link).
 * - `half-open`: forwards nothing and drops it, closes nothing: the peer vanished without a FIN or RST
 *   (a partition, a dead host); connections opened in this mode are accepted and go nowhere.
 * - `reset`: every open connection and every new one is reset (RST) at once.
 */
import net from 'node:net';

export type RelayMode = 'pass' | 'delay' | 'stall' | 'half-open' | 'reset';

interface Pair {
  client: net.Socket;
  server: net.Socket;
  /** Chunks held in stall, per direction. */
  held: { toServer: Buffer[]; toClient: Buffer[] };
  dead: boolean;
}

export interface FaultRelay {
  readonly port: number;
  readonly mode: RelayMode;
  /** Connections accepted and bytes forwarded so far. */
  readonly stats: { accepted: number; resets: number; bytes: number };
  set(mode: RelayMode, opts?: { delayMs?: number }): void;
  /** Rewrites a postgres:// or redis:// URL to go through the relay. */
  url(u: string): string;
  close(): Promise<void>;
}

export async function startFaultRelay(t: { teardown(fn: () => unknown): void }, upstream: { host: string; port: number }): Promise<FaultRelay> {
  let mode: RelayMode = 'pass';
  let delayMs = 0;
  const pairs = new Set<Pair>();
  const stats = { accepted: 0, resets: 0, bytes: 0 };

  const reset = (p: Pair) => {
    p.dead = true;
    stats.resets++;
    for (const s of [p.client, p.server]) (s.destroyed ? s : s.resetAndDestroy()).destroy();
    pairs.delete(p);
  };
  const forward = (p: Pair, to: net.Socket, queue: Buffer[], chunk: Buffer) => {
    if (p.dead) return;
    switch (mode) {
      case 'pass':
        stats.bytes += chunk.length;
        to.write(chunk);
        return;
      case 'delay':
        setTimeout(() => {
          if (p.dead || to.destroyed) return;
          stats.bytes += chunk.length;
          to.write(chunk);
        }, delayMs);
        return;
      case 'stall':
        queue.push(chunk);
        return;
      case 'half-open':
        return;
      case 'reset':
        reset(p);
    }
  };

  const server = net.createServer((client) => {
    stats.accepted++;
    const up = net.connect(upstream.port, upstream.host);
    const p: Pair = { client, server: up, held: { toServer: [], toClient: [] }, dead: false };
    pairs.add(p);
    const end = () => {
      if (p.dead) return;
      p.dead = true;
      pairs.delete(p);
      client.destroy();
      up.destroy();
    };
    client.on('error', end);
    up.on('error', end);
    // A FIN is passed on only while passing; in the fault modes the other side never learns.
    client.on('end', () => (mode === 'pass' || mode === 'delay' ? up.end() : undefined));
    up.on('end', () => (mode === 'pass' || mode === 'delay' ? client.end() : undefined));
    client.on('close', () => (mode === 'half-open' || mode === 'stall' ? undefined : end()));
    up.on('close', () => (mode === 'half-open' || mode === 'stall' ? undefined : end()));
    client.on('data', (c) => forward(p, up, p.held.toServer, c));
    up.on('data', (c) => forward(p, client, p.held.toClient, c));
    if (mode === 'reset') reset(p);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const relay: FaultRelay = {
    port,
    get mode() {
      return mode;
    },
    stats,
    set(m, o = {}) {
      mode = m;
      delayMs = o.delayMs ?? delayMs;
      if (m === 'reset') for (const p of [...pairs]) reset(p);
      if (m === 'pass' || m === 'delay') {
        for (const p of pairs) {
          for (const c of p.held.toServer.splice(0)) forward(p, p.server, [], c);
          for (const c of p.held.toClient.splice(0)) forward(p, p.client, [], c);
          if (p.client.destroyed || p.server.destroyed) {
            p.dead = true;
            p.client.destroy();
            p.server.destroy();
            pairs.delete(p);
          }
        }
      }
    },
    url(u) {
      const x = new URL(u);
      x.hostname = '127.0.0.1';
      x.port = String(port);
      return x.toString();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const p of [...pairs]) {
          p.dead = true;
          p.client.destroy();
          p.server.destroy();
        }
        pairs.clear();
        server.close(() => r());
      }),
  };
  t.teardown(() => relay.close());
  return relay;
}
