#!/bin/sh
# cork bundle: the image's packages and users, run as root inside the new
# root filesystem (the Dockerfile's RUN, or chroot for --from-apt).
# $1: the package list file. Both build paths run exactly this.
set -eu
export DEBIAN_FRONTEND=noninteractive
pkgs=$(grep -v '^[[:space:]]*#' "$1" | tr -s ' \n' ' ')
apt-get update -q
# shellcheck disable=SC2086 # one package per word
apt-get install -y -q --no-install-recommends $pkgs
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
	/var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} +
# one user per daemon, no login, no home of their own (the entrypoint makes
# /run/cork/DAEMON for each)
for u in cork-pipelock:990 cork-egress:991 cork-git:992 cork-supervise:993; do
	name=${u%:*}
	id=${u#*:}
	getent group "$name" >/dev/null || groupadd --system --gid "$id" "$name"
	getent passwd "$name" >/dev/null || useradd --system --uid "$id" --gid "$id" --no-create-home \
		--home-dir "/run/cork/${name#cork-}" --shell /usr/sbin/nologin "$name"
done
