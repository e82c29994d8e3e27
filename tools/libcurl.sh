#!/bin/sh
# tools/libcurl.sh DIR: cork's own libcurl, built from Debian's source
# package of the installed libcurl4 (same version, Debian's patches) with
# only what cork.docker uses, twice:
#   DIR/libcurl.so.4        HTTP/1.1, unix sockets, TLS with OpenSSL
#   DIR/libcurl-notls.so.4  HTTP/1.1, unix sockets (no TLS: no libssl or
#                           libcrypto to map and initialize)
# Debian's libcurl.so.4 links 27 more libraries (gnutls for librtmp, krb5,
# ldap, ssh2, nghttp2, idn2, psl, brotli, zstd, ...) that the dynamic loader
# maps and initializes in every process that talks to Docker: 4.5 MiB of its
# peak RSS and about 20 ms of its start; OpenSSL's load and init are another
# 14 ms (docs/performance.md). cork loads these when they sit in `libcurl/`
# beside the cork binary, or in PREFIX/lib/cork after `make install`: the
# TLS-less one for an engine without TLS (a unix socket), and Debian's
# libcurl otherwise (docs/api.md).
#
# The source comes through apt-get with a private state directory under
# DIR (deb-src entries made from the machine's own Debian entries): nothing
# of the machine's apt configuration changes. Nothing is done when both
# files are there. Exit status 1, with the reason, when the source cannot be
# had or does not build (cork then uses Debian's libcurl).
set -eu
dir=${1:?usage: tools/libcurl.sh DIR}
# absolute: the build below changes directory (make bench passes build/libcurl)
mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
[ -f "$dir/libcurl.so.4" ] && [ -f "$dir/libcurl-notls.so.4" ] && exit 0
say() { printf 'libcurl.sh: %s\n' "$*" >&2; }
fail() { say "cannot build cork's libcurl: $*"; exit 1; }
version=$(dpkg-query -W -f='${Version}' libcurl4 2>/dev/null) || fail "libcurl4 is not installed (make deps)"
for t in apt-get dpkg-source gcc make; do command -v $t >/dev/null || fail "$t not found"; done
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || fail "no Debian archive keyring"
mkdir -p "$dir"
work=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/parts" "$work/apt/lists/partial" "$work/apt/cache"
# deb-src twins of the machine's deb822 Debian entries (URIs and suites)
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	sed -n -e 's/^Types:.*/Types: deb-src/p' -e '/^URIs:/p' -e '/^Suites:/p' -e '/^Components:/p' \
	  -e '/^Signed-By:/p' -e 's/^$//p' "$f"
	echo
done > "$work/apt/parts/src.sources"
# and of one-line entries
cat /etc/apt/sources.list 2>/dev/null | sed -n 's/^deb \(.*\)$/deb-src \1/p' > "$work/apt/parts/src.list" || true
grep -q . "$work/apt/parts/src.sources" "$work/apt/parts/src.list" || fail "no Debian entries in the apt sources"
opts="-o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=$work/apt/parts
  -o Dir::State::Lists=$work/apt/lists -o Dir::Cache=$work/apt/cache -o APT::Sandbox::User=root -q"
say "fetching Debian's source of curl $version"
# shellcheck disable=SC2086
apt-get $opts update >"$work/apt.log" 2>&1 || fail "apt-get update: $(tail -1 "$work/apt.log")"
# shellcheck disable=SC2086
(cd "$work" && apt-get $opts source --download-only "curl=$version" >>"$work/apt.log" 2>&1) ||
	fail "apt-get source curl=$version: $(tail -1 "$work/apt.log")"
(cd "$work" && dpkg-source -x ./curl_*.dsc src >/dev/null 2>&1) || fail "dpkg-source -x failed"
# build OUT TLS-FLAG WHAT: one configure and build of the library, in a copy
# of the source of its own
build() {
	out=$dir/$1
	[ -f "$out" ] && return 0
	src=$work/src-$2
	cp -a "$work/src" "$src"
	say "building $1: libcurl $version ($3)"
	(cd "$src" && ./configure --disable-static --enable-shared "$2" --without-zlib --without-brotli \
		--without-zstd --without-libpsl --without-libidn2 --without-nghttp2 --without-librtmp --without-libssh2 \
		--without-libgsasl --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
		--disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher --disable-mqtt \
		--disable-ftp --disable-file --disable-manual --disable-ntlm --disable-kerberos-auth \
		--disable-negotiate-auth --disable-alt-svc --disable-hsts --disable-doh --disable-netrc \
		--disable-progress-meter --disable-cookies >"$work/configure.log" 2>&1) ||
		fail "$1: configure failed: $(tail -1 "$work/configure.log")"
	(cd "$src" && make -j2 -C lib >"$work/make.log" 2>&1) || fail "$1: make failed: $(tail -1 "$work/make.log")"
	lib=$(ls "$src"/lib/.libs/libcurl.so.4.* 2>/dev/null | head -1)
	[ -n "$lib" ] || fail "$1: no libcurl.so.4 was built"
	install -m 0644 "$lib" "$out.tmp" && mv "$out.tmp" "$out"
	rm -rf "$src"
	say "built $out"
}
build libcurl.so.4 --with-openssl "HTTP, unix sockets, OpenSSL"
build libcurl-notls.so.4 --without-ssl "HTTP, unix sockets, no TLS"
