#!/bin/sh
# mkimage.sh: make cork's test images with no registry.
#
#   tests/lib/mkimage.sh [NAME]     default NAME: cork-test-busybox:latest
#
# Builds a rootfs from Debian's busybox-static (installed with apt-get when
# missing and running as root), with applet links for sh, nc, httpd, sleep,
# cat, echo, ..., a /www/index.html ("cork-test\n"), /etc/passwd with root and
# nobody, and imports it into the engine at DOCKER_HOST (`docker import`
# semantics: POST /images/create?fromSrc=-), so it works against the private
# engine of tests/lib/dockerd.sh with no docker CLI. Idempotent: an image that
# already exists is left alone (CORK_MKIMAGE_FORCE=1 re-imports).
# Prints the image name. Needs DOCKER_HOST=unix://... (default /var/run/docker.sock).
set -eu

NAME=${1:-cork-test-busybox:latest}
HOST=${DOCKER_HOST:-unix:///var/run/docker.sock}
case $HOST in
unix://*) SOCK=${HOST#unix://} ;;
*) echo "mkimage.sh: DOCKER_HOST must be unix:// (got $HOST)" >&2; exit 1 ;;
esac
api() { curl -sf -m 60 --unix-socket "$SOCK" "$@"; }

if [ -z "${CORK_MKIMAGE_FORCE:-}" ] && api "http://docker/images/$NAME/json" >/dev/null 2>&1; then
	echo "$NAME"
	exit 0
fi

BB=""
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ] && file -L "$b" 2>/dev/null | grep -q 'statically linked'; then BB=$b; break; fi
done
if [ -z "$BB" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "mkimage.sh: installing busybox-static" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2 ||
			{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >&2; }
		BB=/bin/busybox
	else
		echo "mkimage.sh: needs a static busybox (Debian package busybox-static)" >&2
		exit 1
	fi
fi

ROOT=$(mktemp -d "${TMPDIR:-/tmp}/cork-rootfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT INT TERM
mkdir -p "$ROOT/bin" "$ROOT/etc" "$ROOT/tmp" "$ROOT/www" "$ROOT/root" "$ROOT/proc" \
	"$ROOT/sys" "$ROOT/dev"
chmod 1777 "$ROOT/tmp"
cp "$BB" "$ROOT/bin/busybox"
for a in sh ash nc httpd sleep cat echo ls env id true false printf head tail seq dd \
	yes wc sed grep tr kill ps mkdir rm touch sync hostname wget ip ifconfig \
	base64 sha256sum md5sum stat date uname whoami test '['; do
	ln -s busybox "$ROOT/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
printf 'cork-test\n' >"$ROOT/www/index.html"

repo=${NAME%:*}
tag=latest
case $NAME in *:*) tag=${NAME##*:} ;; esac
# changes: PATH and a default command, as `docker import -c` would set them.
changes='changes=ENV%20PATH%3D%2Fbin&changes=CMD%20%5B%22%2Fbin%2Fsh%22%5D'
tar -C "$ROOT" --numeric-owner --owner=0 --group=0 -cf - . |
	api -X POST -H 'Content-Type: application/x-tar' --data-binary @- \
		"http://docker/images/create?fromSrc=-&repo=$repo&tag=$tag&$changes" >"$ROOT/.out" || {
	echo "mkimage.sh: import failed" >&2
	exit 1
}
if grep -q '"error' "$ROOT/.out"; then
	echo "mkimage.sh: import failed: $(cat "$ROOT/.out")" >&2
	exit 1
fi
echo "$NAME"
