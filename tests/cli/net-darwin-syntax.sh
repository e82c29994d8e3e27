#!/bin/sh
# The macOS half of src/net.c (SIOCAIFADDR/SIOCDIFADDR on lo0, one sudo for the
# missing aliases: how the smolmachines recipe puts a bottle's 198.18.x.y alias
# on lo0) cannot run here; type-check it at least, against a small shim of the
# BSD declarations (tests/shims/darwin), with the project's warnings. Also
# src/canary.c (the isolation check's listeners), which must not use Linux-only
# socket flags.
set -u
root=${CORK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root" || exit 1
echo "1..4"
flags="-std=c11 -D_GNU_SOURCE -U__linux__ -D__APPLE__ -Wall -Wextra -Wshadow \
 -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 -Wno-unused-parameter -Werror \
 -fsyntax-only -Itests/shims/darwin -Isrc $(pkg-config --cflags lua5.4)"
n=0
for f in src/net.c src/canary.c; do
for c in gcc clang; do
  n=$((n + 1))
  if ! command -v $c >/dev/null 2>&1; then
    echo "ok $n # SKIP $c not installed"
    continue
  fi
  # shellcheck disable=SC2086
  if out=$($c $flags $f 2>&1); then
    echo "ok $n - $f __APPLE__ branch compiles with $c"
  else
    echo "not ok $n - $f __APPLE__ branch compiles with $c"
    printf '%s\n' "$out" | sed 's/^/# /'
  fi
done
done
