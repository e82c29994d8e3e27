#!/bin/sh
# dockerd.sh: a private Docker engine for cork's tests, CI, benchmarks and demo.
#
#   tests/lib/dockerd.sh start       start it (idempotent); prints, for eval:
#                                      DOCKER_HOST='unix://...'
#                                      CORK_DOCKERD_NETNS='NAME'
#   tests/lib/dockerd.sh exec CMD..  run CMD in the engine's network namespace
#   tests/lib/dockerd.sh stop        stop it, remove everything under its
#                                    directory and the namespace it made
#   tests/lib/dockerd.sh env         print the exports (for eval) when running
#   tests/lib/dockerd.sh status      exit 0 when it answers /_ping
#
# The engine lives entirely under one directory (CORK_DOCKERD_DIR, default
# /tmp/cork-dockerd.$UID): data root, exec root (which holds its own containerd),
# pid file, socket, log, trust key, an empty daemon.json. It never reads or
# touches a system engine's socket, config or data.
#
# Network namespace (why: docs/architecture.md, "A private engine"). The
# engine runs in a network namespace of its own, made at start and deleted at
# stop: its bridges, its firewall rules, its docker-proxy listeners and the
# loopback aliases cork adds all live there. The host's FORWARD policy,
# br_netfilter and any engine running beside it then change nothing in its
# results, and it changes nothing of theirs. Whatever talks to the engine's
# containers or published ports (the tests, cork itself) must run in that
# namespace too: `dockerd.sh exec CMD` (nsenter --net) does that; the unix
# socket is a file and works from anywhere.
#   CORK_DOCKERD_NETNS=NAME     join (or make) the named namespace instead of
#                               corkd-<hash of DIR>; one the script did not make
#                               is never deleted by it
#   CORK_DOCKERD_NETNS=current  no namespace of its own: the caller's (the old
#                               behaviour; results then depend on the caller's
#                               firewall)
#
# Shape (CORK_DOCKERD_SHAPE): the two configurations a user's engine can have.
#   plain     (default) --bridge none --iptables=false --ip-masq=false
#             --ip-forward=false: the engine adds no firewall rules and routes
#             nothing. Containers get a network only from user-defined bridge
#             networks; published ports are served by docker-proxy. Without
#             iptables "--internal" is not enforced by the engine (Docker 20.10
#             still gives an internal network's members a default route): the
#             docker recipe's own "seal" step is what isolates the agent.
#   iptables  the normal dockerd configuration: iptables, masquerading and
#             forwarding on, the default bridge; the engine enforces --internal
#             with its own rules (inside the namespace).
#
# Optional TLS listener (tests/integration/test_docker_tls.lua):
#   CORK_DOCKERD_TLS_ADDR=127.0.0.1:PORT CORK_DOCKERD_TLS_CERTS=DIR
#   DIR holds ca.pem, server-cert.pem, server-key.pem; the engine then also
#   listens on tcp://ADDR with --tlsverify (the unix socket stays as it is).
#
# Exit status: 0 ok; 1 the engine could not start (the reason in one line on
# stderr, starting "dockerd.sh: cannot start a private Docker engine:", then
# the tail of the engine's log when it has one); 2 usage.
set -eu

DIR=${CORK_DOCKERD_DIR:-/tmp/cork-dockerd.$(id -u)}
SOCK=$DIR/docker.sock
PIDFILE=$DIR/dockerd.pid
LOG=$DIR/dockerd.log
WAIT=${CORK_DOCKERD_WAIT:-60}
SHAPE=${CORK_DOCKERD_SHAPE:-plain}
# corkd-<hash of DIR>: one namespace per engine directory, short enough for
# interface-name-like limits, stable across start/stop of the same DIR.
DEFAULT_NS=corkd-$(printf '%s' "$DIR" | cksum | cut -d' ' -f1)
NS=${CORK_DOCKERD_NETNS:-$DEFAULT_NS}
# what start did with the namespace ("NAME made" or "NAME joined"), so that
# stop deletes only one it made
NSFILE=$DIR/netns

say() { printf 'dockerd.sh: %s\n' "$*" >&2; }
# The one line make test / make demo show when no engine can run here.
cannot() { say "cannot start a private Docker engine: $*"; }

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
	command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need="$need iproute2"
	command -v nsenter >/dev/null 2>&1 || need="$need util-linux"
	[ -z "$need" ] && return 0
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		cannot "missing:$need (install these Debian packages: apt-get install$need)"
		return 1
	fi
	say "installing:$need"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >&2; } ||
		{ cannot "apt-get could not install:$need"; return 1; }
}

# the namespace recorded at start (stop and exec use it even when the
# environment no longer names it)
recorded_ns() {
	[ -f "$NSFILE" ] && cut -d' ' -f1 "$NSFILE" 2>/dev/null
}

ns_exists() { [ -e "/run/netns/$1" ]; }

# Make (or join) the engine's namespace; bring its loopback up.
ns_setup() {
	[ "$NS" = current ] && { echo "current joined" >"$NSFILE"; return 0; }
	how=joined
	if [ "$NS" = "$DEFAULT_NS" ] && ns_exists "$NS"; then
		# ours, left by a killed run of the same DIR: start afresh
		ip netns del "$NS" 2>/dev/null || true
	fi
	if ! ns_exists "$NS"; then
		if ! err=$(ip netns add "$NS" 2>&1); then
			cannot "no network namespace ($err); it needs root with CAP_SYS_ADMIN (run as root, not in an unprivileged container)"
			return 1
		fi
		how=made
	fi
	echo "$NS $how" >"$NSFILE"
	ip -n "$NS" link set lo up
}

ns_teardown() {
	[ -f "$NSFILE" ] || return 0
	read -r name how <"$NSFILE" || return 0
	[ "$how" = made ] && ns_exists "$name" && ip netns del "$name" 2>/dev/null
	return 0
}

print_env() {
	echo "${1:-}DOCKER_HOST='unix://$SOCK'"
	echo "${1:-}CORK_DOCKERD_NETNS='$(recorded_ns || echo "$NS")'"
}

start() {
	if running_pid >/dev/null && ping_ok; then
		print_env
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		cannot "it needs root (uid $(id -u)); run as root or with sudo, or set DOCKER_HOST to an engine of yours (make demo)"
		return 1
	fi
	case $SHAPE in plain | iptables) ;; *)
		say "CORK_DOCKERD_SHAPE must be plain or iptables, not '$SHAPE'"
		return 2 ;;
	esac
	install_if_missing || return 1
	DOCKERD=$(command -v dockerd 2>/dev/null || echo /usr/sbin/dockerd)
	# A stale directory from a killed run: clean it first.
	[ -d "$DIR" ] && cleanup_dir
	mkdir -p "$DIR/data" "$DIR/exec"
	chmod 0711 "$DIR"
	ns_setup || { rm -rf "$DIR"; return 1; }
	# 20.10 writes a trust key to /etc/docker/key.json unless its config says
	# otherwise (a config-file-only setting there; unknown to newer engines).
	if grep -q deprecated-key-path "$DOCKERD" 2>/dev/null; then
		printf '{"deprecated-key-path": "%s"}\n' "$DIR/key.json" >"$DIR/daemon.json"
	else
		echo '{}' >"$DIR/daemon.json"
	fi
	set -- --data-root "$DIR/data" --exec-root "$DIR/exec" --pidfile "$PIDFILE" \
		--config-file "$DIR/daemon.json" -H "unix://$SOCK" --userland-proxy=true
	if [ "$SHAPE" = plain ]; then
		set -- "$@" --bridge none --iptables=false --ip-masq=false --ip-forward=false --ip6tables=false
	else
		set -- "$@" --iptables=true --ip-masq=true --ip-forward=true
	fi
	if [ -n "${CORK_DOCKERD_TLS_ADDR:-}" ]; then
		c=${CORK_DOCKERD_TLS_CERTS:?CORK_DOCKERD_TLS_CERTS must name the cert directory}
		set -- "$@" -H "tcp://$CORK_DOCKERD_TLS_ADDR" --tlsverify --tlscacert "$c/ca.pem" \
			--tlscert "$c/server-cert.pem" --tlskey "$c/server-key.pem"
	fi
	# setsid: the engine must not get the test runner's Ctrl-C before stop runs.
	# (a plain command, not a shell function, in the background: a function's
	# subshell would keep a saved copy of our stdout open, and `$(start)`
	# would wait for the engine to exit)
	if [ "$NS" = current ]; then
		setsid "$DOCKERD" "$@" </dev/null >"$LOG" 2>&1 &
	else
		nsenter --net="/run/netns/$NS" -- setsid "$DOCKERD" "$@" </dev/null >"$LOG" 2>&1 &
	fi
	i=0
	while ! ping_ok; do
		if ! kill -0 $! 2>/dev/null; then
			cannot "dockerd exited during start-up; last lines of $LOG:"
			tail -n 15 "$LOG" >&2
			ns_teardown
			cleanup_dir
			return 1
		fi
		i=$((i + 1))
		if [ $i -gt $((WAIT * 10)) ]; then
			cannot "dockerd did not answer /_ping on $SOCK within ${WAIT}s; last lines of $LOG:"
			tail -n 15 "$LOG" >&2
			stop >/dev/null 2>&1 || true
			return 1
		fi
		sleep 0.1
	done
	print_env
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
	ns_teardown
	[ -d "$DIR" ] && cleanup_dir
	# a namespace of ours whose DIR went first (a killed stop)
	if [ "$NS" = "$DEFAULT_NS" ] && ns_exists "$NS"; then ip netns del "$NS" 2>/dev/null || true; fi
	return 0
}

case ${1:-} in
start) start ;;
stop) stop ;;
exec)
	shift
	[ $# -gt 0 ] || { echo "usage: $0 exec CMD [ARG...]" >&2; exit 2; }
	n=$(recorded_ns || true)
	[ -n "$n" ] || { say "no private engine is running under $DIR (start it first)"; exit 1; }
	if [ "$n" = current ]; then exec "$@"; else exec nsenter --net="/run/netns/$n" -- "$@"; fi
	;;
env)
	if running_pid >/dev/null && ping_ok; then
		print_env "export "
	else
		say "no private engine is running under $DIR"
		exit 1
	fi
	;;
status) running_pid >/dev/null && ping_ok ;;
*)
	echo "usage: $0 start|stop|exec CMD...|env|status   (CORK_DOCKERD_DIR=$DIR)" >&2
	exit 2
	;;
esac
