#!/usr/bin/env bash
# Debian's PostgreSQL server for distributed mode's tests (they start their own
# throw-away cluster; the package's own cluster is not used).
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' > /dev/null; then exit 0; fi
[ "$(id -u)" = 0 ] || { echo "install-postgres: PostgreSQL is missing and installing it needs root (apt-get install postgresql)" >&2; exit 1; }
echo "install-postgres: installing Debian's postgresql (once)" >&2
{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; } >&2
