#!/bin/sh
# The embedding surfaces under valgrind (--leak-check=full, errors fail):
# the libcork C tests, and `cork serve --stdio` through the whole protocol
# test. Skipped without valgrind, and for an ASan build (they do not mix).
root=${CORK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
export CORK_ROOT="$root"
bin=${CORK_BIN:-$root/build/cork}
export CORK_BIN="$bin"
build=$(dirname "$bin")
if ! command -v valgrind >/dev/null 2>&1; then echo "1..0 # SKIP valgrind not installed"; exit 0; fi
if nm "$bin" 2>/dev/null | grep -q __asan_init; then echo "1..0 # SKIP an ASan build"; exit 0; fi
vg="valgrind --leak-check=full --error-exitcode=1 -q"
n=0; fail=0
t() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }
log=$(mktemp "${TMPDIR:-/tmp}/cork-vg.XXXXXX")
trap 'rm -f "$log"' EXIT
for c in test_embed test_runtime; do
	if [ -x "$build/tests/$c" ]; then
		$vg "$build/tests/$c" >"$log" 2>&1
		rc=$?
		t $rc "valgrind: $c (libcork)"
		[ $rc = 0 ] || sed 's/^/# /' "$log" | grep -v '^# ok ' | head -40 >&2
	fi
done
CORK_SERVE_WRAP="$vg" "$bin" script "$root/tests/lua/test_serve.lua" >"$log" 2>&1
rc=$?
t $rc "valgrind: cork serve --stdio through tests/lua/test_serve.lua"
[ $rc = 0 ] || sed 's/^/# /' "$log" | grep -v '^# ok ' | head -40 >&2
echo "1..$n"
exit $fail
