#!/usr/bin/env bash
# Every test: lint, types, unit tests, then integration tests against the
# sandbox Asterisk 22 (started when not running, stopped after if started here)
# and, for distributed mode, PostgreSQL servers the tests start themselves.
set -uo pipefail
cd "$(dirname "$0")/.."
rm -rf test-output/counts && mkdir -p test-output/counts

step() { echo; echo "== $*"; }
failed=0

step "lint (eslint)"; npx eslint . || failed=1
step "types (tsc)"; npx tsc --noEmit -p . || failed=1
step "build (lib -> dist, used by bin/konami.js)"; npm run --silent build || failed=1
step "unit tests"; npx mocha --config test/unit/.mocharc.json || failed=1
step "browser for the web app's end-to-end tests"; bash scripts/install-browser.sh || failed=1
step "PostgreSQL for distributed mode's tests"; bash scripts/install-postgres.sh || failed=1
step "integration tests (real Asterisk)"; npx mocha --config test/integration/.mocharc.json || failed=1

# One closing line for the whole run, summed over the suites' counts.
node -e '
const fs = require("fs"); const dir = "test-output/counts";
let p = 0, f = 0, s = 0;
for (const n of fs.readdirSync(dir)) { const c = JSON.parse(fs.readFileSync(dir + "/" + n)); p += c.passed; f += c.failed; s += c.skipped; }
console.log(`\ntotal: ${p} passed, ${f} failed, ${s} skipped`);
if (p + f === 0) process.exitCode = 1;
' || failed=1
exit "$failed"
