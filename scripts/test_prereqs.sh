#!/usr/bin/env bash
# `make test`'s system packages: what its suites run besides Python (nothing is ever skipped for want of them).
#   postgresql    the distributed e2e suite's metadata database (Debian keeps initdb in /usr/lib/postgresql/*/bin)
#   redis-server  the distributed e2e suite's Celery broker
#   chromium      the gallery's browser tests (playwright drives Debian's build; its own download cannot work here)
# Missing ones are installed with apt-get when run as root (a fresh CI machine); otherwise this stops at once and
# says what to install. APT_GET, LUMA_PG_INITDB (a glob) and LUMA_CHROMIUM can be overridden: tests/test_prereqs.py
# runs this script with a fake apt-get, fake id and a PATH without the binaries.
set -euo pipefail

APT_GET="${APT_GET:-apt-get}"
CHROMIUM="${LUMA_CHROMIUM:-/usr/bin/chromium}"
PG_INITDB="${LUMA_PG_INITDB:-/usr/lib/postgresql/*/bin/initdb}"

missing=()
compgen -G "$PG_INITDB" >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x "$CHROMIUM" ] || missing+=(chromium)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "make test: missing system packages: ${missing[*]}" >&2
    echo "Install them, then run make test again:  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
echo "make test: installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
"$APT_GET" update -qq
"$APT_GET" install -y -qq "${missing[@]}" >/dev/null
