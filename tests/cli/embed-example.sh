#!/bin/sh
# libcork as installed: `make install DESTDIR=...` lays out the header,
# libcork.a, libcork.so (+ soname links) and cork.pc; examples/embed.c
# builds against it with pkg-config, dynamically and statically, and runs a
# recipe (to the end, and interrupted from its watchdog thread). The shared
# library exports exactly the API of include/cork.h.
root=${CORK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${CORK_BIN:-$root/build/cork}
build=$(cd "$(dirname "$bin")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cork-embed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
n=0; fail=0
t() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fail=1; fi; }

# -o all: install what is built, rebuild nothing (this may be the ASan build)
make -s -C "$root" -o all install BUILD="$build" DESTDIR="$tmp" >"$tmp/install.log" 2>&1
t $? "make install DESTDIR=... (PREFIX /usr/local)"
p=$tmp/usr/local
ok=0
for f in bin/cork include/cork.h lib/libcork.a lib/libcork.so.0.1.0 lib/pkgconfig/cork.pc; do
	[ -f "$p/$f" ] || { ok=1; echo "# missing $f"; }
done
t $ok "installed: cork, cork.h, libcork.a, libcork.so.0.1.0, cork.pc"
ok=0
for f in share/man/man1/cork.1 share/bash-completion/completions/cork share/zsh/site-functions/_cork; do
	[ -f "$p/$f" ] || { ok=1; echo "# missing $f"; }
done
t $ok "installed: the man page cork(1), bash and zsh completion (issue 19.19, 19.20)"
MANWIDTH=100 man -l "$p/share/man/man1/cork.1" 2>/dev/null | grep -q "cork complete commands"
t $? "man -l cork.1 renders the help texts"
[ "$(readlink "$p/lib/libcork.so")" = libcork.so.0 ] && [ "$(readlink "$p/lib/libcork.so.0")" = libcork.so.0.1.0 ]
t $? "libcork.so -> libcork.so.0 -> libcork.so.0.1.0"

want=$(grep -E '^[a-z].*[ *]cork_[a-z_]+\(' "$root/include/cork.h" | sed -E 's/^[^(]*[ *](cork_[a-z_]+)\(.*/\1/' | sort | tr '\n' ' ')
got=$(nm -D --defined-only "$p/lib/libcork.so.0.1.0" | awk '$2 == "T" {print $3}' | sort | tr '\n' ' ')
[ -n "$want" ] && [ "$want" = "$got" ]
t $? "libcork.so exports exactly the functions of cork.h"
[ "$want" = "$got" ] || { echo "# want: $want"; echo "# got:  $got"; }

pc() { PKG_CONFIG_PATH="$p/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp" pkg-config "$@" cork; }
[ "$(pc --modversion)" = "$("$bin" version | sed -n 's/^cork //p')" ]
t $? "pkg-config --modversion cork is cork's version"

# an ASan build's library needs the sanitizer runtime in the program too
san=""
nm -D "$p/lib/libcork.so.0.1.0" | grep -q __asan_init && san="-fsanitize=address,undefined"
CC=${CC:-cc}
flags="-std=c11 -Wall -Wextra -Werror $san"
# shellcheck disable=SC2046
$CC $flags -o "$tmp/embed" "$root/examples/embed.c" $(pc --cflags --libs) -lpthread -Wl,-rpath,"$p/lib" 2>"$tmp/cc.log"
t $? "examples/embed.c builds with pkg-config against libcork.so"
ldd "$tmp/embed" 2>/dev/null | grep -q "libcork.so.0 => $p/lib/libcork.so.0"
t $? "and loads the installed libcork.so.0"

"$tmp/embed" hello --steps 2 --name embed >"$tmp/out" 2>"$tmp/err"
rc=$?
t $((rc != 0)) "embed hello: exit 0"
grep -q '^exit 0 after 7 events$' "$tmp/out" && grep -q '"msg":"hello, embed"' "$tmp/out"
t $? "embed hello: every event through the callback"

"$tmp/embed" --timeout 0.5 hello --steps 3 --pause 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
t $((rc != 130)) "embed --timeout: exit 130 (got $rc)"
grep -q '"msg":"undid step 1"' "$tmp/out" && grep -q '(interrupted: interrupted (SIGINT))$' "$tmp/out"
t $? "embed --timeout: the watchdog thread's cork_interrupt unwound the recipe"

# statically: libcork.a plus what `pkg-config --static` says it needs
libs=$(pc --static --libs | sed 's/-lcork//')
# shellcheck disable=SC2086
$CC $flags -o "$tmp/embed-static" "$root/examples/embed.c" $(pc --cflags) "$p/lib/libcork.a" $libs -lpthread 2>"$tmp/cc.log"
t $? "examples/embed.c builds statically (libcork.a, pkg-config --static)"
"$tmp/embed-static" hello --steps 1 >"$tmp/out" 2>&1
t $? "and runs hello"

# docs/embedding.md shows the example in full: it must be this file
awk '/<!-- example:embed.c -->/ {on = 1; next} on && /^```c$/ {in_code = 1; next}
     in_code && /^```$/ {exit} in_code {print}' "$root/docs/embedding.md" >"$tmp/doc.c"
cmp -s "$tmp/doc.c" "$root/examples/embed.c"
t $? "docs/embedding.md lists examples/embed.c as it is"

if command -v c++ >/dev/null 2>&1; then
	echo '#include <cork.h>
int main() { struct cork *c = cork_new(nullptr); cork_free(c); return 0; }' >"$tmp/x.cc"
	# shellcheck disable=SC2046
	c++ -std=c++11 -Wall -Werror -fsyntax-only $(pc --cflags) "$tmp/x.cc"
	t $? "cork.h compiles as C++"
fi
echo "1..$n"
exit $fail
