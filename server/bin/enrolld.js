#!/usr/bin/env node
// The `enrolld` command: the compiled CLI (server/dist/cli.js, made by `npm ci`'s prepare step or `npm run build:cli`).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(compiled)) {
  process.stderr.write('enrolld: the CLI is not compiled yet; run `npm run build:cli` (npm ci does it) in the enrolld checkout\n');
  process.exit(1);
}
await import(compiled.href);
