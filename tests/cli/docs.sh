#!/bin/sh
# Every name bound in a C module's luaL_Reg tables appears in docs/api.md
# (as luv's CI checks its docs), and every doc the README links exists.
cd "$(dirname "$0")/../.." || exit 1
n=0; fail=0
for f in src/*.c; do
	names=$(grep -oE '\{ *"[a-z_][a-z0-9_]*" *, *[a-z_][a-z0-9_]* *\}' "$f" | sed -E 's/\{ *"([^"]+)".*/\1/' | grep -v '^__' | sort -u)
	[ -n "$names" ] || continue
	missing=""
	for name in $names; do
		grep -qw -- "$name" docs/api.md || missing="$missing $name"
	done
	n=$((n + 1))
	if [ -z "$missing" ]; then echo "ok $n - $f: every bound name is in docs/api.md"
	else echo "not ok $n - $f: not in docs/api.md:$missing"; fail=1; fi
done
for doc in $(grep -oE '\(docs/[a-z_]+\.md\)' README.md | tr -d '()' | sort -u); do
	n=$((n + 1))
	if [ -f "$doc" ]; then echo "ok $n - README links $doc"; else echo "not ok $n - README links missing $doc"; fail=1; fi
done
echo "1..$n"
exit $fail
