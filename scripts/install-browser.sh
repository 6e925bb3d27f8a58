#!/usr/bin/env bash
# Debian's Chromium for the web UI's end-to-end tests (driven by playwright-core).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "install-browser: Chromium is missing and installing it needs root (apt-get install chromium)" >&2; exit 1; }
echo "install-browser: installing Debian's chromium (once)" >&2
{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } >&2
