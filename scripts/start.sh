#!/usr/bin/env bash
# Runs konami. With no ARI_URL configured it starts the sandbox Asterisk 22
# (sandbox/asterisk.sh, needs root) and runs against it, stopping it on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run --silent build

started_sandbox=''
if [ -z "${ARI_URL:-}" ]; then
  bash sandbox/asterisk.sh start
  started_sandbox=yes
  while IFS='=' read -r key value; do export "$key=$value"; done < <(bash sandbox/asterisk.sh env)
  # The sandbox has no phones of its own: its "fixed" context answers with
  # echo, busy, congestion or endless ringing (see sandbox/etc/extensions.conf).
  export DIAL_TEMPLATE="${DIAL_TEMPLATE:-Local/{exten}@fixed/n}"
  echo "konami: running against the sandbox Asterisk; try: npm run sandbox -- cli 'channel originate Local/echo@konami-entry application Wait 10'" >&2
fi

node dist/lib/main.js &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
status=0
wait "$pid" || status=$?
# wait returns early when a trapped signal arrives: wait for konami itself.
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || status=$?; done
[ -n "$started_sandbox" ] && bash sandbox/asterisk.sh stop
exit "$status"
