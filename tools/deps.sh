#!/bin/sh
# tools/deps.sh [build|test|demo|nvim|bench|all]: install cork's build and test dependencies
# from Debian's packages with apt-get, only those that are missing (a no-op
# when everything is there). Default: all.
set -eu
build="gcc make pkg-config liblua5.4-dev lua-cjson-dev libyaml-dev libcurl4-openssl-dev libssl-dev"
# prove (perl), openssl + curl (CA tests), busybox-static (test images),
# docker.io (the private engine), iproute2 + util-linux (netns tests),
# mitmproxy (a real consumer of the minted CAs), valgrind (leak checks),
# docker-registry (the stand-in registry image: prepare's registry path),
# neovim (the editor plugin's tests: editors/nvim),
# debootstrap (the real bundle image: cork run bundle --from-apt),
# socat (test_cancel: an engine that goes away, as a proxy that is stopped)
test="perl openssl curl ca-certificates busybox-static docker.io iproute2 util-linux mitmproxy valgrind docker-registry neovim debootstrap socat"
# the benchmarks also need what the tests need; lua5.4 is the startup floor;
# dpkg-dev and the archive keyring build cork's own libcurl (tools/libcurl.sh)
bench="lua5.4 dpkg-dev debian-archive-keyring"
case "${1:-all}" in
	build) want=$build ;;
	test) want=$test ;;
	demo) want="$build busybox-static docker.io curl ca-certificates debootstrap" ;;
	nvim) want="neovim" ;;
	bench) want="$build $test $bench" ;;
	all) want="$build $test" ;;
	*) echo "usage: tools/deps.sh [build|test|demo|nvim|bench|all]" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing"
if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else
	echo "deps: need root (or sudo) to install:$missing" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >/dev/null || true
# shellcheck disable=SC2086
$sudo apt-get install -y -q --no-install-recommends $missing >/dev/null
echo "deps: done"
