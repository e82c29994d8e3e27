#!/bin/sh
# The private engine's results do not depend on the host's firewall, and the
# engine leaves that firewall as it found it (issue 14).
#
# On the host: FORWARD policy DROP with br_netfilter's bridge-nf-call-iptables
# on (the state any Docker engine leaves behind). Then, for each engine shape
# (plain: no iptables; iptables: the normal dockerd configuration), a private
# engine (tests/lib/dockerd.sh, in its own network namespace) runs the demo
# (a docker-recipe bottle and its four isolation probes) and a detached
# docker-recipe launch that `cork down` ends. Afterwards the host's filter
# rules (iptables-save, counters aside) are what they were. The host's own
# policy is put back on every exit, failed or not.
#
# Needs root, iptables and dockerd (docker.io); skips loudly otherwise.
set -u
root=${CORK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cork=${CORK_BIN:-$root/build/cork}
cd "$root" || exit 1
# engines of this test's own: not one an outer run named
unset CORK_DOCKERD_NETNS CORK_DOCKERD_SHAPE CORK_DOCKERD_DIR DOCKER_HOST
n=0; fails=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $*"; }
check() { d=$1; shift; if "$@"; then ok "$d"; else notok "$d"; fi; }

skip_all() { echo "1..0 # SKIP $*"; echo "SKIP: *** tests/cli/host-firewall.sh NOT RUN: $* ***" >&2; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "needs root (it sets the host's FORWARD policy)"
command -v iptables >/dev/null 2>&1 && command -v iptables-save >/dev/null 2>&1 || skip_all "no iptables (apt-get install iptables)"
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || skip_all "no dockerd (apt-get install docker.io)"

# One run at a time on a machine: two runs side by side would each take the
# other's DROP for the host's own policy, and the last to finish would leave
# it behind.
lockdir=/run/lock; [ -d "$lockdir" ] || lockdir=/tmp
exec 9>"$lockdir/cork-host-firewall.lock"
command -v flock >/dev/null 2>&1 && { flock -w 900 9 || skip_all "another run held $lockdir/cork-host-firewall.lock for 15 minutes"; }

echo "1..12"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cork-fw.XXXXXX")
rules() { iptables-save -t filter | sed -e '/^#/d' -e 's/\[[0-9]*:[0-9]*\]//'; }
policy() { iptables -S FORWARD | sed -n 's/^-P FORWARD //p'; }
BRNF=/proc/sys/net/bridge/bridge-nf-call-iptables

# what the host had, restored on every exit
orig_policy=$(policy)
rules >"$tmp/rules.orig"
# br_netfilter on, as a host where Docker ran has it (loaded, calling iptables)
[ -e "$BRNF" ] || modprobe br_netfilter 2>/dev/null || true
orig_brnf=$(cat "$BRNF" 2>/dev/null || echo absent)
restore() {
	iptables -P FORWARD "$orig_policy"
	[ "$orig_brnf" != absent ] && echo "$orig_brnf" >"$BRNF" 2>/dev/null
	for s in plain iptables; do CORK_DOCKERD_DIR="$tmp/engine.$s" tests/lib/dockerd.sh stop >/dev/null 2>&1; done
	rm -rf "$tmp"
}
trap restore EXIT
trap 'exit 130' INT TERM

iptables -P FORWARD DROP
[ -e "$BRNF" ] && echo 1 >"$BRNF"
rules >"$tmp/rules.hostile"
echo "# host: FORWARD $(policy), bridge-nf-call-iptables $(cat "$BRNF" 2>/dev/null || echo absent)"

export XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" XDG_CACHE_HOME="$tmp/cache"
mkdir -p "$XDG_CONFIG_HOME/cork/bottles"

for shape in plain iptables; do
	dir="$tmp/engine.$shape"
	if ! env_out=$(CORK_DOCKERD_DIR="$dir" CORK_DOCKERD_SHAPE="$shape" tests/lib/dockerd.sh start 9>&-); then
		notok "$shape engine starts"; notok "demo"; notok "launch"; notok "down"; notok "namespace"; continue
	fi
	ok "$shape engine starts beside the host's FORWARD DROP"
	eval "$env_out"; export DOCKER_HOST
	inns() { CORK_DOCKERD_DIR="$dir" tests/lib/dockerd.sh exec "$@" 9>&-; }
	inns "$cork" -q run demo >"$tmp/demo.$shape" 2>&1
	rc=$?
	check "$shape engine: the demo's isolation holds and its agent reaches its proxy (exit $rc)" [ "$rc" = 0 ]
	[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/demo.$shape"
	# a docker-recipe launch of a bottle of the operator's, detached, then down
	cat >"$XDG_CONFIG_HOME/cork/bottles/fw.yaml" <<-EOF
	agent:
	  provider: custom
	  image: cork-standin-agent:latest
	  command: [sh]
	  user: agent
	  home: /home/agent
	bundle:
	  image: cork-standin-bundle:latest
	EOF
	inns "$cork" --json run docker --bottle fw --detach >"$tmp/run.$shape" 2>&1
	rc=$?
	slug=$(sed -n 's/.*"slug":"\([^"]*\)".*/\1/p' "$tmp/run.$shape" | head -n 1)
	q="http://docker/containers/json?all=1&filters=%7B%22label%22%3A%5B%22cork.slug%3D${slug:-none}%22%5D%7D"
	cs=$(curl -sf --unix-socket "$dir/docker.sock" "$q" | grep -o '"Id"' | wc -l)
	check "$shape engine: cork run docker --bottle fw --detach (exit $rc, slug ${slug:-none}, $cs containers)" \
		[ "$rc" = 0 -a -n "$slug" -a "$cs" -ge 2 ]
	[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/run.$shape" | tail -n 20
	inns "$cork" -q down "${slug:-none}" >"$tmp/down.$shape" 2>&1
	rc=$?
	left=$(curl -sf --unix-socket "$dir/docker.sock" "$q")
	check "$shape engine: cork down leaves no container of the bottle (exit $rc)" [ "$rc" = 0 -a "$left" = "[]" ]
	CORK_DOCKERD_DIR="$dir" tests/lib/dockerd.sh stop
	ns=$(echo "$env_out" | sed -n "s/^CORK_DOCKERD_NETNS='\(.*\)'/\1/p")
	check "$shape engine: its network namespace ($ns) is gone after stop" [ ! -e "/run/netns/$ns" ]
done

rules >"$tmp/rules.after"
check "the host's filter rules are what they were before the engines (FORWARD $(policy))" cmp -s "$tmp/rules.hostile" "$tmp/rules.after"
cmp -s "$tmp/rules.hostile" "$tmp/rules.after" || diff "$tmp/rules.hostile" "$tmp/rules.after" | sed 's/^/#   /'
iptables -P FORWARD "$orig_policy"
[ "$orig_brnf" != absent ] && echo "$orig_brnf" >"$BRNF"
rules >"$tmp/rules.restored"
check "the host's policy is put back ($orig_policy) and its rules are as found" cmp -s "$tmp/rules.orig" "$tmp/rules.restored"
[ "$fails" = 0 ]
