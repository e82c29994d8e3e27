#!/bin/sh
# Where no private engine can start, tests/lib/dockerd.sh says why and what
# to do in one line (make test turns it into its SKIP line, make demo shows
# it as it is).
set -u
root=${CORK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
echo "1..3"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null 2>&1; then
	for i in 1 2 3; do echo "ok $i # SKIP needs root and setpriv (to run the script as nobody)"; done
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cork-cannot.XXXXXX")
chmod 0755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
cp "$root/tests/lib/dockerd.sh" "$tmp/dockerd.sh"
chmod 0755 "$tmp/dockerd.sh"
CORK_DOCKERD_DIR="$tmp/engine" setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$tmp/dockerd.sh" start >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] && echo "ok 1 - as nobody: exit 1" || echo "not ok 1 - as nobody: exit $rc"
[ "$(wc -l <"$tmp/err")" = 1 ] && [ ! -s "$tmp/out" ] && echo "ok 2 - one line on stderr, nothing on stdout" ||
	{ echo "not ok 2 - one line on stderr, nothing on stdout"; sed 's/^/#   /' "$tmp/err"; }
grep -q "^dockerd.sh: cannot start a private Docker engine: it needs root (uid 65534); run as root or with sudo" "$tmp/err" &&
	echo "ok 3 - it says why and what to do" || { echo "not ok 3 - it says why and what to do"; sed 's/^/#   /' "$tmp/err"; }
