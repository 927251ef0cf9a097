// Starts a server, prints where it is, then either waits to be killed or (argv "exit") calls
// process.exit without stopping it (see test/demo/embedded.test.ts). Lives in test/helpers so tap does not run it as a test.
import { startEmbeddedPostgres } from '../../src/demo/embedded.js';

const s = await startEmbeddedPostgres({ major: 15 });
process.stdout.write(JSON.stringify({ pid: s.pid, dataDir: s.dataDir }) + '\n');
if (process.argv[2] === 'exit') setTimeout(() => process.exit(0), 50);
else setInterval(() => undefined, 60_000);
