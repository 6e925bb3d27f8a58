#!/usr/bin/env bash
# Runs konami. With no ARI_URL configured it starts the sandbox Asterisk 22
# (sandbox/asterisk.sh, needs root) and runs against it, makes the demo account
# the first time, prints how to try it, and on Ctrl-C stops the sandbox too
# when it was started here.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'npm start: %s\n' "$*" >&2; }

npm run --silent build

started_sandbox=''
on_sandbox=''
if [ -z "${ARI_URL:-}" ]; then
  on_sandbox=yes
  # Stopped on exit only when started here.
  bash sandbox/asterisk.sh status 2>/dev/null || started_sandbox=yes
  bash sandbox/asterisk.sh start
  while IFS='=' read -r key value; do export "$key=$value"; done < <(bash sandbox/asterisk.sh env)
  # A number reaches the sandbox's fixed behaviours (600 echo, 601 busy, 602
  # congestion, 603 rings for ever), a softphone registered under it, or a
  # phone `npm run demo` plays (see sandbox/etc/extensions.conf).
  # (A default with braces inside ${...:-...} would end at the first "}".)
  sandbox_template='Local/{exten}@sandbox-dial/n'
  export DIAL_TEMPLATE="${DIAL_TEMPLATE:-$sandbox_template}"
fi

# Node's flags: one per line; # starts a comment; blank lines and CRs ignored.
mapfile -t node_flags < <(sed -e 's/\r$//' -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' scripts/node-flags | grep -v '^$')
node "${node_flags[@]}" dist/lib/main.js &
pid=$!
stop_konami() {
  say "stopping konami (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
}
trap stop_konami TERM INT
# On the sandbox: once konami answers, the demo account and how to try it.
if [ -n "$on_sandbox" ]; then node dist/lib/demo/first-run.js "$pid" || true; fi
# wait returns early (128 + signal) when a trapped signal arrives: wait again
# until konami itself has ended, and keep its own exit status.
status=0
while kill -0 "$pid" 2>/dev/null; do wait "$pid" && status=0 || status=$?; done
say "konami stopped (exit status $status)"
if [ -n "$started_sandbox" ]; then
  say "stopping the sandbox Asterisk this started"
  bash sandbox/asterisk.sh stop
  say "the sandbox Asterisk stopped: nothing of this run is left running"
elif [ -n "$on_sandbox" ]; then
  say "the sandbox Asterisk was running before: left running (bash sandbox/asterisk.sh stop stops it)"
fi
exit "$status"
