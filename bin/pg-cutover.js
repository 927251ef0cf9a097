#!/usr/bin/env node
// Entry point: the TypeScript sources are compiled to dist/ by `npm ci` (the `prepare` script).
import { main } from '../dist/src/cli/index.js';

main(process.argv).catch((err) => {
  console.error(`pg-cutover: ${err && err.message ? err.message : String(err)}`);
  process.exit(1);
});
