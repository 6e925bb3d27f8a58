#!/usr/bin/env bash
# Runs konami. With no ARI_URL configured it starts the sandbox Asterisk 22
# (sandbox/asterisk.sh, needs root) and runs against it, stopping it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run --silent build

started_sandbox=''
if [ -z "${ARI_URL:-}" ]; then
  # Stopped on exit only when started here.
  bash sandbox/asterisk.sh status 2>/dev/null || started_sandbox=yes
  bash sandbox/asterisk.sh start
  while IFS='=' read -r key value; do export "$key=$value"; done < <(bash sandbox/asterisk.sh env)
  # The sandbox has no phones of its own: its "fixed" context answers with
  # echo (600), busy (601), congestion (602) or endless ringing (603) (see
  # sandbox/etc/extensions.conf).
  # (A default with braces inside ${...:-...} would end at the first "}".)
  sandbox_template='Local/{exten}@fixed/n'
  export DIAL_TEMPLATE="${DIAL_TEMPLATE:-$sandbox_template}"
  echo "konami: running against the sandbox Asterisk; try: npm run sandbox -- cli 'channel originate Local/600@konami-entry application Wait 10'" >&2
fi

# Node's flags: one per line; # starts a comment; blank lines and CRs ignored.
mapfile -t node_flags < <(sed -e 's/\r$//' -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' scripts/node-flags | grep -v '^$')
node "${node_flags[@]}" dist/lib/main.js &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
# wait returns early (128 + signal) when a trapped signal arrives: wait again
# until konami itself has ended, and keep its own exit status.
status=0
while kill -0 "$pid" 2>/dev/null; do wait "$pid" && status=0 || status=$?; done
[ -n "$started_sandbox" ] && bash sandbox/asterisk.sh stop
exit "$status"
