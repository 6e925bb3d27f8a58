#!/usr/bin/env bash
# Runs konami. With no ARI_URL configured it starts the sandbox Asterisk 22
# (sandbox/asterisk.sh, needs root) and runs against it, makes the demo account
# the first time, prints how to try it, and on Ctrl-C stops the sandbox too
# when it was started here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Never fails: after the terminal is closed (SIGHUP) there is nowhere to write, and the stopping must go on.
say() { printf 'npm start: %s\n' "$*" >&2 2>/dev/null || true; }

started_sandbox=''
on_sandbox=''
stop_sandbox() {
  if [ -n "$started_sandbox" ]; then
    say "stopping the sandbox Asterisk this started"
    bash sandbox/asterisk.sh stop
    say "the sandbox Asterisk stopped: nothing of this run is left running"
  elif [ -n "$on_sandbox" ]; then
    say "the sandbox Asterisk was running before: left running (bash sandbox/asterisk.sh stop stops it)"
  fi
}
# Until konami runs: an interruption stops what was started so far.
trap 'say "interrupted before konami started"; trap "" INT TERM HUP; stop_sandbox || true; exit 130' INT TERM HUP

npm run --silent build

if [ -z "${ARI_URL:-}" ]; then
  # Stopped on exit only when started here.
  bash sandbox/asterisk.sh status 2>/dev/null || started_sandbox=yes
  on_sandbox=yes
  bash sandbox/asterisk.sh start
  while IFS='=' read -r key value; do export "$key=$value"; done < <(bash sandbox/asterisk.sh env)
  # Every account reaches the sandbox's fixed behaviours: 600 echo, 601 busy,
  # 602 congestion, 603 rings for ever. The demo account also has the dial
  # route "sandbox" (the softphones and the demo's phones; lib/demo/account.ts).
  # (A default with braces inside ${...:-...} would end at the first "}".)
  sandbox_template='Local/{exten}@fixed/n'
  export DIAL_TEMPLATE="${DIAL_TEMPLATE:-$sandbox_template}"
fi

pid=''
welcome=''
# konami has its terminal's Ctrl-C (or hang-up) too; it is asked once, and the welcome ends with it.
stopping=''
stop_konami() {
  [ -z "$stopping" ] || return 0
  stopping=yes
  say "stopping konami${pid:+ (pid $pid)}"
  [ -z "$welcome" ] || kill -TERM "$welcome" 2>/dev/null || true
  [ -z "$pid" ] || kill -TERM "$pid" 2>/dev/null || true
}
trap stop_konami TERM INT HUP
# Node's flags: one per line; # starts a comment; blank lines and CRs ignored.
mapfile -t node_flags < <(sed -e 's/\r$//' -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' scripts/node-flags | grep -v '^$')
node "${node_flags[@]}" dist/lib/main.js &
pid=$!
# Asked to stop before konami had a pid: ask it now.
[ -z "$stopping" ] || kill -TERM "$pid" 2>/dev/null || true
# On the sandbox: once konami answers, the demo account and how to try it (it ends when konami does).
if [ -n "$on_sandbox" ]; then node dist/lib/demo/first-run.js "$pid" & welcome=$!; fi
# wait returns early (128 + signal) when a trapped signal arrives: wait again
# until konami itself has ended; then once more for its own status, which bash
# keeps for a child that has ended (a bad setting, a refused ARI password).
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
status=0
wait "$pid" || status=$?
[ -z "$welcome" ] || wait "$welcome" 2>/dev/null || true
say "konami stopped (exit status $status)"
# Stopping the sandbox takes a few seconds: another Ctrl-C must not cut it short.
trap 'say "still stopping the sandbox Asterisk: a moment"' INT TERM HUP
stop_sandbox || true
exit "$status"
