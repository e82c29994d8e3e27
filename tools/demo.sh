#!/bin/sh
# tools/demo.sh BUILD: what `make demo` runs after building: `cork run demo`
# against the Docker engine at DOCKER_HOST (default /var/run/docker.sock), or,
# when none answers, against a private engine (tests/lib/dockerd.sh) started
# for the demo and stopped afterwards, whatever the demo's outcome.
# Exit status: the demo's (0 the isolation held, 1 it did not), or 1 when no
# engine could be started.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
cork="$root/$build/cork"

answers() {
	echo 'local ok = pcall(function() cork.docker.connect({ timeout = 5, connect_timeout = 2 }):ping() end)
return ok and 0 or 1' | "$cork" -q script /dev/stdin
}

started=""
if answers; then
	echo "demo: using the Docker engine at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
else
	echo "demo: no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}; starting a private one (tests/lib/dockerd.sh)"
	export CORK_DOCKERD_DIR="${CORK_DOCKERD_DIR:-${TMPDIR:-/tmp}/cork-dockerd.demo$$}"
	# on failure, dockerd.sh says in one line why and what to do
	env_out=$(tests/lib/dockerd.sh start) || exit 1
	eval "$env_out"
	export DOCKER_HOST
	started=1
	trap 'tests/lib/dockerd.sh stop; echo "demo: stopped the private engine (and removed its data: the stand-in images went with it)"' EXIT
	trap 'exit 130' INT TERM
fi
if [ -n "$started" ]; then
	# the engine's network namespace: its containers and published ports are there
	tests/lib/dockerd.sh exec "$cork" run demo
else
	"$cork" run demo
fi
