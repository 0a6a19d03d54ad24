#!/usr/bin/env bash
# What `make test` needs besides Python and make: Debian's pgbouncer (the pooling tests start their own) and
# chromium at /usr/bin/chromium (the browser tests drive it: no browser download). As root with apt-get, the
# missing ones are installed (Debian's packages); otherwise one line says what to install, and the exit code is 1.
# Only looks at PATH and CHROMIUM (default /usr/bin/chromium), so a test can point it at a fake PATH.
set -uo pipefail
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

missing() {  # the Debian packages whose program is not there, on one line
  local packages=()
  command -v pgbouncer >/dev/null || packages+=(pgbouncer)
  [ -x "$CHROMIUM" ] || packages+=(chromium)
  echo "${packages[*]}"
}

packages=$(missing)
[ -z "$packages" ] && exit 0
if [ "$EUID" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "make test: installing Debian's $packages" >&2
  # shellcheck disable=SC2086  # one word a package
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages; } >&2
  packages=$(missing)
  [ -z "$packages" ] && exit 0
fi
echo "make test needs $packages (Debian: sudo apt-get install $packages; pgbouncer on PATH, chromium at $CHROMIUM)" >&2
exit 1
