#!/usr/bin/env bash
# The sandbox Asterisk 22: a Debian unstable root with Asterisk in it, kept in a
# cache outside the repository and run under chroot with the project's own
# configuration (sandbox/etc). Debian 12 has no Asterisk and sid's needs a newer
# libc than the host's, hence the separate root.
#
#   asterisk.sh provision   build the cached root (no-op when complete)
#   asterisk.sh start       provision if needed, start, wait until fully booted
#   asterisk.sh stop        stop cleanly, unmount, leave no process behind
#   asterisk.sh status      exit 0 when running and ARI answers
#   asterisk.sh env         print ARI_URL/ARI_USERNAME/ARI_PASSWORD for the sandbox
#   asterisk.sh phones      print the softphones a person may register (SIP address, number, name, password)
#   asterisk.sh demo-account ID   calls from the softphones enter konami on account ID (kept across restarts)
#   asterisk.sh logfile     print the path of Asterisk's full log (tests read what it reports)
#   asterisk.sh cli CMD     run an Asterisk CLI command (asterisk -rx)
#   asterisk.sh sipp ARGS   run sipp inside the root (scenarios in sandbox/sip)
#
# Settings (environment):
#   KONAMI_SANDBOX_CACHE  where the root is kept (default ~/.cache/konami/asterisk-22)
#   KONAMI_SANDBOX_PORT   ARI/HTTP port on 127.0.0.1 (default 8088)
#   KONAMI_SANDBOX_SIP_PORT  PJSIP UDP port on 127.0.0.1 (default 5060); the SIP
#                         phones sipp plays use the next ports: +11 Alice, +12 Bob, +13 Mary
#   KONAMI_SANDBOX_INSTANCE  a second (third...) Asterisk from the same root, for
#                         distributed mode's tests: its own run folder, state and
#                         ports (default for instance N: ARI 8088+N-1, SIP 5060+100*(N-1),
#                         RTP 20000+1000*(N-1)). Empty: the first.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${KONAMI_SANDBOX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/konami/asterisk-22}
root=$cache/root
debs=$cache/debs.tgz
instance=${KONAMI_SANDBOX_INSTANCE:-}
[ -z "$instance" ] || [[ "$instance" =~ ^[2-9]$ ]] || { echo "sandbox: KONAMI_SANDBOX_INSTANCE must be empty or 2 to 9" >&2; exit 2; }
n=${instance:-1}
port=${KONAMI_SANDBOX_PORT:-$((8088 + n - 1))}
sip_port=${KONAMI_SANDBOX_SIP_PORT:-$((5060 + 100 * (n - 1)))}
rtp_start=$((20000 + 1000 * (n - 1)))
suffix=${instance:+-$instance}
state=$cache/state$suffix     # per-run state outside the root: pid, password, log
inroot=/konami$suffix         # the run folder as seen from inside the root
run=$root$inroot
# Bump when the package list or the root's preparation changes: a cache built
# by an older recipe is then rebuilt instead of half-used.
recipe=3
packages=asterisk,asterisk-modules,asterisk-config,asterisk-core-sounds-en,asterisk-moh-opsound-wav,sip-tester,sox

say() { printf 'sandbox: %s\n' "$*" >&2; }
die() { printf 'sandbox: error: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, mount and chroot); run it as root or with sudo"
}

# The host's own Debian mirror, read from its apt configuration, so nothing
# here names a host. Empty when none is found: debootstrap then uses its default.
host_mirror() {
  local f uri=''
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk '
      /^[[:space:]]*$/ { if (u != "" && s ~ /(^| )[a-z]+( |$)/ && s !~ /security/) { print u; exit } u=""; s=""; next }
      /^URIs:/ { u=$2 } /^Suites:/ { $1=""; s=$0 }
      END { if (u != "" && s !~ /security/) print u }' "$f" | grep -v security | head -n1)
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  if [ -r /etc/apt/sources.list ]; then
    awk '$1=="deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list
  fi
}

# What the host itself needs: debootstrap to build the root, curl to probe ARI.
host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v curl >/dev/null || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 \
    || die "step 'install ${missing[*]}' failed (apt-get)"
}

complete() { [ -f "$root/.konami-recipe" ] && [ "$(cat "$root/.konami-recipe")" = "$recipe" ]; }

provision() {
  need_root
  complete && return 0
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9
  complete && return 0
  host_tools
  local mirror; mirror=$(host_mirror)
  local t0=$SECONDS
  if [ ! -s "$debs" ] || [ "$(cat "$cache/debs.recipe" 2>/dev/null)" != "$recipe" ]; then
    say "downloading Debian unstable packages for Asterisk 22 (once; kept in $debs)"
    unmount_all
    rm -rf --one-file-system "$cache/tarball-work" && mkdir -p "$cache/tarball-work"
    debootstrap --variant=minbase --include="$packages" --make-tarball="$debs.partial" \
      sid "$cache/tarball-work" $mirror >"$cache/debootstrap-download.log" 2>&1 \
      || { tail -n 20 "$cache/debootstrap-download.log" >&2
           die "step 'download packages' failed: Debian unstable may be briefly uninstallable; log: $cache/debootstrap-download.log"; }
    mv "$debs.partial" "$debs"
    echo "$recipe" >"$cache/debs.recipe"
    unmount_all
    rm -rf --one-file-system "$cache/tarball-work"
  fi
  say "unpacking the root from $debs"
  unmount_all
  rm -rf --one-file-system "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase --include="$packages" --unpack-tarball="$debs" \
    sid "$root" $mirror >"$cache/debootstrap-install.log" 2>&1 \
    || { tail -n 20 "$cache/debootstrap-install.log" >&2
         die "step 'install root' failed; log: $cache/debootstrap-install.log"; }
  [ -x "$root/usr/sbin/asterisk" ] || die "step 'install root' left no /usr/sbin/asterisk"
  rm -rf "$root/var/cache/apt/archives/"*.deb
  echo "$recipe" >"$root/.konami-recipe"
  say "root ready in $((SECONDS - t0)) s: $(du -sh "$root" | cut -f1)"
}

mounted() { mountpoint -q "$1"; }
# Only a private proc instance is mounted: debootstrap made the device nodes
# Asterisk needs, so the host's /dev is never exposed (nor at risk from an
# rm -rf of the cache while something is mounted).
mount_all() {
  mounted "$root/proc" || mount -t proc proc "$root/proc"
}
# Everything mounted anywhere under the cache (debootstrap's own proc mount
# after an interrupted build included), deepest first.
unmount_all() {
  local m
  for m in $(awk -v c="$cache/" 'index($2, c) == 1 { print $2 }' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
}

pid() { cat "$state/asterisk.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
password() { cat "$state/ari-password"; }
# The softphones of sandbox/etc/pjsip.conf (number and name); their passwords are made once per sandbox.
softphones='1001:Alice 1002:Bob 2600:Mary'
phone_password() { awk -v n="$1" '$1 == n { print $2 }' "$state/phone-passwords"; }
# The demo account konami's first run made (hex digits only), for the softphones context.
demo_account() { [ -r "$state/demo-account" ] && tr -cd '0-9a-f' <"$state/demo-account" || true; }
make_phone_passwords() {
  local p number
  for p in $softphones; do
    number=${p%%:*}
    [ -n "$(phone_password "$number" 2>/dev/null)" ] && continue
    printf '%s %s\n' "$number" "$(head -c 12 /dev/urandom | base64 | tr -d '/+=')" >>"$state/phone-passwords"
  done
  chmod 600 "$state/phone-passwords"
}

ari_ok() {
  curl -fsS -m 2 -u "konami:$(password)" "http://127.0.0.1:$port/ari/asterisk/info" >/dev/null 2>&1
}

cli() { chroot "$root" /usr/sbin/asterisk -C "$inroot/etc/asterisk.conf" -rx "$*"; }

# Lay out the run folder: configuration from sandbox/etc with the port and
# password filled in, fresh scratch folders, and the test voices.
prepare_run() {
  rm -rf "$run"
  mkdir -p "$run/etc" "$run/db" "$run/spool" "$run/run" "$run/log" "$run/sounds"
  # The values go through a sed script readable by root only, never on a command line (ps shows those).
  local f p script=$state/config.sed
  {
    printf 's|@PORT@|%s|g\ns|@SIP_PORT@|%s|g\ns|@ARI_PASSWORD@|%s|g\n' "$port" "$sip_port" "$(password)"
    printf 's|@RTP_START@|%s|g\ns|@RTP_END@|%s|g\n' "$rtp_start" "$((rtp_start + 999))"
    printf 's|@SIP_PORT_BOB@|%s|g\ns|@SIP_PORT_MARY@|%s|g\ns|@RUN@|%s|g\n' "$((sip_port + 12))" "$((sip_port + 13))" "$inroot"
    printf 's|@DEMO_ACCOUNT@|%s|g\n' "$(demo_account)"
    for p in $softphones; do printf 's|@PHONE_PASSWORD_%s@|%s|g\n' "${p%%:*}" "$(phone_password "${p%%:*}")"; done
  } >"$script"
  for f in "$here"/etc/*; do
    sed -f "$script" "$f" >"$run/etc/$(basename "$f")"
  done
  rm -f "$script"
  # sipp scenarios for the SIP phone tests, where sipp (inside the root) finds them.
  mkdir -p "$run/sip"
  cp "$here"/sip/*.xml "$run/sip/"
  # A "voice" per test phone: pure sines that a Goertzel filter can tell apart.
  local hz
  for hz in 400 600 800 1000 1200 1400 1600 1800; do
    chroot "$root" sox -n -r 8000 -b 16 -c 1 "$inroot/sounds/voice-$hz.wav" synth 30 sine "$hz" vol 0.5
  done
  # A ring-back cadence (2 s on at 425 Hz, 4 s off) for parties who must hear ringing.
  chroot "$root" sox -n -r 8000 -b 16 -c 1 "$inroot/sounds/ringback.wav" synth 2 sine 425 vol 0.4 pad 0 4
}

start() {
  need_root
  host_tools
  provision
  # Passwords, configuration and logs made from here on: root's only.
  umask 077
  mkdir -p "$state"
  if alive; then
    ari_ok && { say "already running (pid $(pid))"; return 0; }
    say "running but ARI does not answer: restarting"
    stop
  fi
  if curl -s -m 1 -o /dev/null "http://127.0.0.1:$port/"; then
    die "port $port on 127.0.0.1 is taken by another program; set KONAMI_SANDBOX_PORT"
  fi
  # A second instance takes the first one's password: one ARI user serves every sandbox server, as
  # konami's ARI_USERNAME and ARI_PASSWORD serve every ARI_URL.
  if [ -n "$instance" ] && [ -s "$cache/state/ari-password" ] && [ ! -s "$state/ari-password" ]; then
    cp "$cache/state/ari-password" "$state/ari-password"; chmod 600 "$state/ari-password"
  fi
  [ -s "$state/ari-password" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$state/ari-password"; chmod 600 "$state/ari-password"; }
  make_phone_passwords
  prepare_run
  mount_all
  setsid chroot "$root" /usr/sbin/asterisk -C "$inroot/etc/asterisk.conf" -f -n -g \
    </dev/null >"$state/console.log" 2>&1 &
  echo $! >"$state/asterisk.pid"
  local i
  for i in $(seq 1 60); do
    alive || { tail -n 30 "$state/console.log" >&2; unmount_all; die "Asterisk exited during boot; console: $state/console.log"; }
    if cli "core waitfullybooted" >/dev/null 2>&1 && ari_ok; then
      say "Asterisk $(cli 'core show version' | awk '{print $2; exit}') ready, ARI on http://127.0.0.1:$port (pid $(pid))"
      return 0
    fi
    sleep 0.5
  done
  stop
  die "Asterisk did not become ready within 30 s; console: $state/console.log"
}

stop() {
  need_root
  if alive; then
    local p; p=$(pid)
    cli "core stop now" >/dev/null 2>&1 || kill -TERM "$p" 2>/dev/null || true
    local i
    for i in $(seq 1 40); do kill -0 "$p" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$p" 2>/dev/null; then say "Asterisk did not stop in 10 s: killing it"; kill -KILL "$p" 2>/dev/null || true; sleep 0.2; fi
  fi
  # Anything else still running inside the root (a sipp left by a test, say). While another instance
  # runs in the same root, only what runs from this instance's run folder goes, and the root's proc
  # stays mounted.
  local q others=0 f
  for f in "$cache"/state*/asterisk.pid; do
    [ -e "$f" ] && [ "$f" != "$state/asterisk.pid" ] && kill -0 "$(cat "$f")" 2>/dev/null && others=1
  done
  for q in $(ls -1 /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$q/root" 2>/dev/null)" = "$root" ] || continue
    if [ "$others" -eq 0 ] || [ "$(readlink "/proc/$q/cwd" 2>/dev/null)" = "$run" ]; then kill -KILL "$q" 2>/dev/null || true; fi
  done
  rm -f "$state/asterisk.pid"
  if [ -d "$root" ] && [ "$others" -eq 0 ]; then unmount_all; fi
  return 0
}

case "${1:-}" in
  provision) provision ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) alive && ari_ok ;;
  env)
    [ -s "$state/ari-password" ] || die "the sandbox has never been started"
    printf 'ARI_URL=http://127.0.0.1:%s\nARI_USERNAME=konami\nARI_PASSWORD=%s\n' "$port" "$(password)" ;;
  phones)
    [ -s "$state/phone-passwords" ] || die "the sandbox has never been started"
    printf 'SIP_ADDRESS=127.0.0.1:%s\n' "$sip_port"
    for p in $softphones; do printf 'PHONE=%s %s %s\n' "${p%%:*}" "${p#*:}" "$(phone_password "${p%%:*}")"; done ;;
  demo-account)
    [[ "${2:-}" =~ ^[0-9a-f]{1,64}$ ]] || die "demo-account takes an account id (hex digits)"
    (umask 077; mkdir -p "$state"; printf '%s\n' "$2" >"$state/demo-account")
    if alive; then cli "dialplan set global KONAMI_DEMO_ACCOUNT $2" >/dev/null; fi ;;
  cli) shift; need_root; cli "$@" ;;
  logfile) echo "$run/log/full" ;;
  root) echo "$root" ;;
  pid) alive || die "not running"; pid ;;
  sip-port) echo "$sip_port" ;;
  # sipp inside the root, from its run folder (scenarios in sip/); its pid is this one.
  sipp) shift; need_root; alive || die "not running"
    exec chroot "$root" /bin/sh -c "cd $inroot && exec /usr/bin/sipp \"\$@\"" sipp "$@" ;;
  *) echo "usage: $0 provision|start|stop|restart|status|env|phones|demo-account ID|logfile|cli CMD|root|pid|sip-port|sipp ARGS" >&2; exit 2 ;;
esac
