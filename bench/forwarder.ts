// The ceiling baseline: a bare Node TCP forwarder that does nothing but copy
// bytes, so the benchmark shows what one Node event loop costs before any of
// pg-cutover's own logic (see DESIGN.md "Know the ceiling").
//
// Usage: node dist/bench/forwarder.js <listenPort> <pgHost> <pgPort> [<listenPort2> <pgHost2> <pgPort2>]
// (the second triple: one process forwarding to two servers, the split path's floor).
// Prints "listening <port>" on stdout when ready; exits when stdin closes, so
// it never outlives the harness that spawned it.
import net from 'node:net';

function main(argv: string[]): void {
  const pairs: [number, string, number][] = [];
  for (let i = 0; i + 2 < argv.length; i += 3) pairs.push([Number(argv[i]), argv[i + 1]!, Number(argv[i + 2])]);
  if (pairs.length === 0 || argv.length % 3 !== 0 || pairs.some(([l, h, p]) => !Number.isInteger(l) || !h || !Number.isInteger(p))) {
    process.stderr.write('usage: forwarder <listenPort> <pgHost> <pgPort> [<listenPort2> <pgHost2> <pgPort2>]\n');
    process.exit(2);
  }
  for (const [listenPort, pgHost, pgPort] of pairs) forward(listenPort, pgHost, pgPort);
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

function forward(listenPort: number, pgHost: string, pgPort: number): void {
  const server = net.createServer({ noDelay: true }, (client) => {
    const backend = net.connect({ host: pgHost, port: pgPort, noDelay: true });
    client.setNoDelay(true);
    // Exactly on('data') -> write: no backpressure handling, no framing.
    client.on('data', (chunk) => backend.write(chunk));
    backend.on('data', (chunk) => client.write(chunk));
    const close = (): void => {
      client.destroy();
      backend.destroy();
    };
    client.on('close', close);
    backend.on('close', close);
    client.on('error', close);
    backend.on('error', close);
  });
  server.on('error', (err) => {
    process.stderr.write(`forwarder: ${err.message}\n`);
    process.exit(1);
  });
  server.listen(listenPort, '127.0.0.1', () => {
    process.stdout.write(`listening ${listenPort}\n`);
  });
}

main(process.argv.slice(2));
