#!/bin/sh
# tools/soak-cancel.sh [ROUNDS [CONCURRENT_ROUNDS]]: the cancellation soak.
# Runs tests/integration/test_cancel.lua with many more rounds than `make
# test` does (default 300 SIGINT rounds at random moments inside the
# network, bundle and agent steps, 100 serve cancels, and 10 rounds of
# sixteen concurrent launches), against a private engine started for it and
# stopped afterwards (tests/lib/dockerd.sh), or the one at DOCKER_HOST.
# After every round the engine's own listing must hold nothing of the slug.
# CORK_CANCEL_SEED replays a run's random moments (the test prints its seed).
# Exit status: the test's.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=${BUILD:-build}
export CORK_ROOT="$root" CORK_BIN="$root/$build/cork"
export CORK_CANCEL_ROUNDS="${1:-300}" CORK_CONCURRENT_ROUNDS="${2:-10}"
home="${TMPDIR:-/tmp}/cork-soak.$$"
export XDG_CONFIG_HOME="$home/config" XDG_STATE_HOME="$home/state" XDG_CACHE_HOME="$home/cache"
unset CORK_PATH
trap 'rm -rf "$home"' EXIT
if [ -z "${DOCKER_HOST:-}" ]; then
	export CORK_DOCKERD_DIR="${CORK_DOCKERD_DIR:-${TMPDIR:-/tmp}/cork-dockerd.soak$$}"
	env_out=$(tests/lib/dockerd.sh start) || { echo "soak: no Docker engine could be started" >&2; exit 1; }
	eval "$env_out"
	export DOCKER_HOST
	trap 'tests/lib/dockerd.sh stop; rm -rf "$home"' EXIT
	trap 'exit 130' INT TERM
fi
start=$(date +%s)
${PROVE:-prove} -v -f --exec "$CORK_BIN script" tests/integration/test_cancel.lua
status=$?
echo "soak: $CORK_CANCEL_ROUNDS SIGINT rounds, $CORK_CONCURRENT_ROUNDS x 16 concurrent: $(( $(date +%s) - start )) s, exit $status"
exit $status
