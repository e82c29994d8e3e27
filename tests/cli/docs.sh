#!/bin/sh
# The API contract is checkable (as luv's CI checks its docs): every name
# bound in a C module's luaL_Reg tables, and every function or value a Lua
# module exports (M.x, and the methods of its public objects: Client, Driver,
# Journal, Steps), has an entry in docs/api.md: a signature (`x(`, `.x(`,
# `:x{`) or a mention in a heading, table row or list item (`mod.X`). A name
# that merely appears in prose ("close the client") does not count. Lua names
# starting with _ are private by convention and skipped. Also: every doc the
# README links exists, and the check fails when an entry goes missing.
#
#   tests/cli/docs.sh            TAP
#   DOCS_API=FILE tests/cli/docs.sh --list   the missing names, one per line
cd "$(dirname "$0")/../.." || exit 1
API=${DOCS_API:-docs/api.md}

# Lines that can hold an entry: headings, table rows, list items, and
# paragraphs that open with code.
ENTRIES=$(mktemp) || exit 1
trap 'rm -f "$ENTRIES"' EXIT
grep -E '^(#|\||- |`)' "$API" > "$ENTRIES"
has() {
	grep -qE "[.:\`]$1[({]" "$API" && return 0
	grep -qE "[.:\`]$1([.\`[]|\$| )" "$ENTRIES"
}
c_names() {
	grep -oE '\{ *"[a-z_][a-z0-9_]*" *, *[a-z_][a-z0-9_]* *\}' "$1" | sed -E 's/\{ *"([^"]+)".*/\1/' |
		grep -v '^__' | sort -u
}
lua_names() {
	grep -oE '^(function (M|Client|Driver|Journal|Steps)[.:][A-Za-z_][A-Za-z0-9_]*|M\.[A-Za-z_][A-Za-z0-9_]* *=)' "$1" |
		sed -E 's/^function [A-Za-z]+[.:]//; s/^M\.//; s/ *=$//' | grep -v '^_' | sort -u
}
missing_in() {
	case "$1" in *.c) names=$(c_names "$1") ;; *) names=$(lua_names "$1") ;; esac
	for name in $names; do has "$name" || printf ' %s' "$name"; done
}

if [ "${1:-}" = "--list" ]; then
	for f in src/*.c lua/cork/*.lua; do
		for name in $(missing_in "$f"); do echo "$f: $name"; done
	done
	exit 0
fi

n=0; fail=0
for f in src/*.c lua/cork/*.lua; do
	case "$f" in *.c) [ -n "$(c_names "$f")" ] || continue ;; *) [ -n "$(lua_names "$f")" ] || continue ;; esac
	missing=$(missing_in "$f")
	n=$((n + 1))
	if [ -z "$missing" ]; then echo "ok $n - $f: every bound or exported name has an entry in docs/api.md"
	else echo "not ok $n - $f: no entry in docs/api.md for:$missing"; fail=1; fi
done

# The check itself: a copy of api.md without core.opt's row and with
# dryrun's recorder only in prose must report exactly those.
if [ -z "${DOCS_API:-}" ]; then
	tmp=$(mktemp) || exit 1
	grep -v '`core.opt(' docs/api.md | sed -E 's/`recorder\(/recorder (/g' > "$tmp"
	printf '%s\n' 'The recorder prints calls (prose is not an entry).' >> "$tmp"
	got=$(DOCS_API=$tmp "$0" --list | grep -E ': (opt|recorder)$' | sort | tr '\n' ' ')
	rm -f "$tmp"
	n=$((n + 1))
	want="lua/cork/dryrun.lua: recorder src/core.c: opt "
	if [ "$got" = "$want" ]; then echo "ok $n - the check fails for a name with no entry (or only prose)"
	else echo "not ok $n - the check misses removed entries: got '$got', want '$want'"; fail=1; fi
fi

for doc in $(grep -oE '\(docs/[a-z_]+\.md\)' README.md | tr -d '()' | sort -u); do
	n=$((n + 1))
	if [ -f "$doc" ]; then echo "ok $n - README links $doc"; else echo "not ok $n - README links missing $doc"; fail=1; fi
done
echo "1..$n"
exit $fail
