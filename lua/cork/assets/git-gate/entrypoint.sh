#!/bin/sh
# git-gate entrypoint (generated plan, shipped by cork): serve bare mirrors of
# the bottle's declared upstreams to the agent over git://, and nothing else.
#
# $GIT_GATE_CONF/upstreams holds one line per upstream, tab separated:
#   NAME  URL  IDENTITY_FILE|-  KNOWN_HOSTS_FILE|-
# ssh never trusts on first use: StrictHostKeyChecking=yes against the
# known_hosts file cork built from the bottle's declared host key.
set -eu

CONF=${GIT_GATE_CONF:-/etc/cork/git-gate}
ROOT=${GIT_GATE_ROOT:-/var/lib/cork/git-gate}
PORT=${GIT_GATE_PORT:-9418}
LISTEN=${GIT_GATE_LISTEN:-0.0.0.0}
HOOKS=${GIT_GATE_HOOKS:-$CONF/hooks}

tab=$(printf '\t')
mkdir -p "$ROOT"

ssh_command() {
	# $1 identity file, $2 known_hosts file
	cmd="ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
	cmd="$cmd -o UserKnownHostsFile=$2 -o GlobalKnownHostsFile=/dev/null -i $1"
	if [ -n "${GIT_GATE_PROXY:-}" ]; then
		# reach the upstream through pipelock's CONNECT, like all other traffic
		cmd="$cmd -o ProxyCommand='nc -X connect -x $GIT_GATE_PROXY %h %p'"
	fi
	printf '%s\n' "$cmd"
}

while IFS="$tab" read -r name url key known; do
	case "$name" in
	'' | '#'*) continue ;;
	*/* | .*)
		echo "git-gate: bad repository name: $name" >&2
		exit 1
		;;
	esac
	repo="$ROOT/$name.git"
	if [ ! -d "$repo" ]; then
		git init --quiet --bare "$repo"
	fi
	git -C "$repo" config remote.origin.url "$url"
	git -C "$repo" config remote.origin.fetch '+refs/heads/*:refs/heads/*'
	git -C "$repo" config --add remote.origin.fetch '+refs/tags/*:refs/tags/*'
	git -C "$repo" config core.hooksPath "$HOOKS"
	git -C "$repo" config receive.denyDeletes true
	git -C "$repo" config receive.denyNonFastForwards true
	if [ "$key" != "-" ]; then
		if [ "$known" = "-" ] || [ ! -s "$known" ]; then
			echo "git-gate: $name: no known_hosts for an ssh upstream; refusing" >&2
			exit 1
		fi
		git -C "$repo" config core.sshCommand "$(ssh_command "$key" "$known")"
	fi
	if ! git -C "$repo" fetch --quiet --prune origin; then
		# one unreachable upstream must not take the others (or the bundle)
		# down: serve what the mirror has; the access hook fetches again
		# before every clone or fetch
		echo "git-gate: $name: first fetch from the upstream failed; serving the mirror as it is" >&2
		continue
	fi
	# the mirror's HEAD follows the upstream's default branch, so clones check it out
	head=$(git -C "$repo" ls-remote --symref origin HEAD | sed -n 's/^ref: \(refs\/heads\/[^	]*\)	HEAD$/\1/p')
	if [ -n "$head" ]; then
		git -C "$repo" symbolic-ref HEAD "$head"
	fi
done <"$CONF/upstreams"

exec git daemon --reuseaddr --listen="$LISTEN" --port="$PORT" \
	--base-path="$ROOT" --export-all --enable=receive-pack \
	--access-hook="$HOOKS/access" "$ROOT"
