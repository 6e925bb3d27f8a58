#!/usr/bin/env node
// The `konami` command line (account and metaflow administration), run from
// the compiled sources that `npm ci` builds (the prepare script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const cli = new URL('../dist/lib/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(cli))) {
  process.stderr.write('konami: not built yet; run `npm run build` first\n');
  process.exit(1);
}
await (await import(cli.href)).main();
