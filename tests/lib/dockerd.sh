#!/bin/sh
# dockerd.sh: a private Docker engine for cork's tests, CI and benchmarks.
#
#   tests/lib/dockerd.sh start   start it (idempotent); prints DOCKER_HOST='unix://...'
#                                (for eval, as tests/run-all does)
#   tests/lib/dockerd.sh stop    stop it and remove everything under its directory
#   tests/lib/dockerd.sh env     print `export DOCKER_HOST=...` (for eval) when running
#   tests/lib/dockerd.sh status  exit 0 when it answers /_ping
#
# The engine lives entirely under one directory (CORK_DOCKERD_DIR, default
# /tmp/cork-dockerd.$UID): data root, exec root (which holds its own containerd
# and network namespaces), pid file, socket, log, trust key, an empty
# daemon.json. It never reads or touches a system engine's socket, config or
# data: a system /etc/docker/daemon.json is ignored and --bridge none leaves the
# default docker0 bridge alone, so it can run beside another engine.
#
# Networking: --iptables=false --ip-masq=false --ip-forward=false: the engine
# adds no firewall rules and routes nothing off the host. Containers get a
# network only from user-defined bridge networks; ports published on such a
# network are served by docker-proxy (the userland proxy), which listens on the
# host address given (e.g. 127.0.0.17) and forwards to the container. Without
# iptables, "--internal" is not enforced by the engine (Docker 20.10 still
# gives an internal network's members a default route through the bridge):
# the docker recipe's own "seal" step is what isolates the agent here, and
# tests/integration/test_recipe_docker.lua proves it with forwarding on.
#
# Optional TLS listener (tests/integration/test_docker_tls.lua):
#   CORK_DOCKERD_TLS_ADDR=127.0.0.1:PORT CORK_DOCKERD_TLS_CERTS=DIR
#   DIR holds ca.pem, server-cert.pem, server-key.pem; the engine then also
#   listens on tcp://ADDR with --tlsverify (the unix socket stays as it is).
#
# Exit status: 0 ok; 1 the engine could not start (the reason on stderr, with
# the tail of the engine's log); 2 usage.
set -eu

DIR=${CORK_DOCKERD_DIR:-/tmp/cork-dockerd.$(id -u)}
SOCK=$DIR/docker.sock
PIDFILE=$DIR/dockerd.pid
LOG=$DIR/dockerd.log
WAIT=${CORK_DOCKERD_WAIT:-60}

say() { printf 'dockerd.sh: %s\n' "$*" >&2; }

ping_ok() {
	[ -S "$SOCK" ] || return 1
	curl -sf -m 2 --unix-socket "$SOCK" http://docker/_ping >/dev/null 2>&1
}

running_pid() {
	[ -f "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	# make sure the pid is really our dockerd (pid files outlive reboots)
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "--data-root $DIR/data" || return 1
	echo "$pid"
}

install_if_missing() {
	need=""
	command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need="$need docker.io"
	command -v curl >/dev/null 2>&1 || need="$need curl"
	[ -z "$need" ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		say "missing:$need (install the Debian packages, or run as root with apt-get)"
		return 1
	fi
	say "installing:$need"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >&2; }
}

start() {
	if running_pid >/dev/null && ping_ok; then
		echo "DOCKER_HOST='unix://$SOCK'"
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		say "dockerd needs root (uid $(id -u)); not starting"
		return 1
	fi
	install_if_missing || return 1
	DOCKERD=$(command -v dockerd 2>/dev/null || echo /usr/sbin/dockerd)
	# A stale directory from a killed run: clean it first.
	[ -d "$DIR" ] && cleanup_dir
	mkdir -p "$DIR/data" "$DIR/exec"
	chmod 0711 "$DIR"
	# 20.10 writes a trust key to /etc/docker/key.json unless its config says
	# otherwise (a config-file-only setting there; unknown to newer engines).
	if grep -q deprecated-key-path "$DOCKERD" 2>/dev/null; then
		printf '{"deprecated-key-path": "%s"}\n' "$DIR/key.json" >"$DIR/daemon.json"
	else
		echo '{}' >"$DIR/daemon.json"
	fi
	set -- --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$PIDFILE" \
		--config-file "$DIR/daemon.json" -H "unix://$SOCK" \
		--bridge none --iptables=false --ip-masq=false --ip-forward=false \
		--ip6tables=false --userland-proxy=true
	if [ -n "${CORK_DOCKERD_TLS_ADDR:-}" ]; then
		c=${CORK_DOCKERD_TLS_CERTS:?CORK_DOCKERD_TLS_CERTS must name the cert directory}
		set -- "$@" -H "tcp://$CORK_DOCKERD_TLS_ADDR" --tlsverify --tlscacert "$c/ca.pem" \
			--tlscert "$c/server-cert.pem" --tlskey "$c/server-key.pem"
	fi
	# setsid: the engine must not get the test runner's Ctrl-C before stop runs.
	setsid "$DOCKERD" "$@" </dev/null >"$LOG" 2>&1 &
	i=0
	while ! ping_ok; do
		if ! kill -0 $! 2>/dev/null; then
			say "dockerd exited during start-up; last lines of $LOG:"
			tail -n 15 "$LOG" >&2
			cleanup_dir
			return 1
		fi
		i=$((i + 1))
		if [ $i -gt $((WAIT * 10)) ]; then
			say "dockerd did not answer /_ping on $SOCK within ${WAIT}s; last lines of $LOG:"
			tail -n 15 "$LOG" >&2
			stop >/dev/null 2>&1 || true
			return 1
		fi
		sleep 0.1
	done
	echo "DOCKER_HOST='unix://$SOCK'"
}

# Unmount whatever the engine left mounted under DIR (deepest first), then
# remove DIR. Only paths under DIR are ever touched.
cleanup_dir() {
	if [ -r /proc/self/mountinfo ]; then
		awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo |
			sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
	fi
	rm -rf "$DIR"
}

stop() {
	if pid=$(running_pid); then
		# Remove what is still in it so that no bridge interface or
		# docker-proxy outlives the engine (the engine is ours alone).
		if ping_ok; then
			for c in $(curl -sf -m 10 --unix-socket "$SOCK" 'http://docker/containers/json?all=1' |
				grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4); do
				curl -sf -m 30 -X DELETE --unix-socket "$SOCK" \
					"http://docker/containers/$c?force=1&v=1" >/dev/null || true
			done
			for n in $(curl -sf -m 10 --unix-socket "$SOCK" http://docker/networks |
				grep -o '"Name":"[^"]*"' | cut -d'"' -f4); do
				case $n in bridge|host|none) continue ;; esac
				curl -sf -m 30 -X DELETE --unix-socket "$SOCK" "http://docker/networks/$n" >/dev/null || true
			done
		fi
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null; do
			i=$((i + 1))
			if [ $i -gt 200 ]; then
				say "dockerd $pid did not stop within 20s; killing it"
				# its own children (containerd under our exec root) by pid
				kids=$(pgrep -P "$pid" 2>/dev/null || true)
				kill -KILL "$pid" 2>/dev/null || true
				for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
				sleep 0.5
				break
			fi
			sleep 0.1
		done
	fi
	[ -d "$DIR" ] && cleanup_dir
	return 0
}

case ${1:-} in
start) start ;;
stop) stop ;;
env)
	if running_pid >/dev/null && ping_ok; then
		echo "export DOCKER_HOST='unix://$SOCK'"
	else
		say "no private engine is running under $DIR"
		exit 1
	fi
	;;
status) running_pid >/dev/null && ping_ok ;;
*)
	echo "usage: $0 start|stop|env|status   (CORK_DOCKERD_DIR=$DIR)" >&2
	exit 2
	;;
esac
