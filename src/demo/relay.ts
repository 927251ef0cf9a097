/**
 * A TCP relay in front of the target's port, for the walkthrough's fault: `cut()` refuses new connections
 * and resets the open ones (a target that is down or unreachable from the application's network),
 * `restore()` lets them through again. The control plane does not go through it.
 */
import net from 'node:net';

export interface Relay {
  readonly port: number;
  readonly isCut: boolean;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startRelay(upstreamPort: number, host = '127.0.0.1'): Promise<Relay> {
  let up = true;
  const open = new Set<net.Socket>();
  const server = net.createServer((c) => {
    if (!up) return void c.resetAndDestroy();
    const b = net.connect(upstreamPort, host);
    open.add(c).add(b);
    const end = () => {
      c.destroy();
      b.destroy();
      open.delete(c);
      open.delete(b);
    };
    c.on('error', end).on('close', end);
    b.on('error', end).on('close', end);
    c.pipe(b).pipe(c);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    get isCut() {
      return !up;
    },
    cut() {
      up = false;
      for (const s of open) s.resetAndDestroy();
      open.clear();
    },
    restore() {
      up = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
