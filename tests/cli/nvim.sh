#!/bin/sh
# tests/cli/nvim.sh: the Neovim plugin (editors/nvim) in a headless Neovim
# against the real `cork serve --stdio` (tests/nvim/test_plugin.lua: no
# Docker), then: no cork process outlives :qa. Neovim is installed from
# Debian when missing (tools/deps.sh nvim); where it cannot be, the test
# says SKIP loudly. TAP.
set -u
root=${CORK_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${CORK_BIN:-$root/build/cork}
export CORK_ROOT="$root" CORK_BIN="$bin"

if ! command -v nvim >/dev/null 2>&1; then
	"$root/tools/deps.sh" nvim >&2 || true
fi
if ! command -v nvim >/dev/null 2>&1; then
	echo "SKIP: ************************************************************" >&2
	echo "SKIP: the Neovim plugin tests NOT RUN: nvim is not installed and" >&2
	echo "SKIP: could not be (tools/deps.sh nvim failed; see above)" >&2
	echo "SKIP: ************************************************************" >&2
	echo "1..0 # SKIP nvim is not installed and could not be installed"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cork-nvim.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/config/cork/bottles" "$tmp/state" "$tmp/home" "$tmp/path/recipes"
printf 'agent: claude\n' >"$tmp/config/cork/bottles/dev.yaml"
printf 'agent: claude\nenv:\n  WORK_TOKEN: "${CORK_NVIM_SECRET}"\n' >"$tmp/config/cork/bottles/work.yaml"
cat >"$tmp/path/recipes/failing.lua" <<'LUA'
-- failing: a recipe that fails at once (the plugin's error path)
require("cork.log").step("load")
require("cork").error("manifest", "the bottle file is broken on purpose")
LUA
cat >"$tmp/path/recipes/fakelaunch.lua" <<'LUA'
-- fakelaunch: journal a bottle and report it ready (a launch without Docker)
local opts = require("cork.args").parse({ ... }, { slug = "string", detach = "boolean" })
assert(opts.detach, "the plugin passes --detach")
local j = require("cork.journal").open(opts.slug, { backend = "docker", bottle = "fake" })
j:meta({ attach = { "echo", "attached", opts.slug } })
j:detached()
require("cork.log").event("bottle_ready", { slug = opts.slug, backend = "docker" })
LUA
printf '#!/bin/sh\necho "dead-cork: broken on purpose" >&2\nexit 3\n' >"$tmp/dead-cork"
chmod +x "$tmp/dead-cork"

# A marker in the environment of every process this test starts.
marker="CORK_NVIM_TEST=$$-$(date +%s)"
out=$(env "$marker" HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" \
	XDG_DATA_HOME="$tmp/data" XDG_CACHE_HOME="$tmp/cache" CORK_PATH="$tmp/path" \
	DOCKER_HOST="unix://$tmp/no-docker.sock" CORK_NVIM_TMP="$tmp" \
	CORK_NVIM_SECRET="nvim-SECRET-value-$$" \
	timeout 300 nvim --headless -u NONE -i NONE -n \
	-c "luafile $root/tests/nvim/test_plugin.lua" 2>"$tmp/stderr")
rc=$?
printf '%s\n' "$out" | grep -E '^(ok|not ok|#)'
n=$(printf '%s\n' "$out" | grep -cE '^(ok|not ok)')

n=$((n + 1))
if [ "$rc" = 0 ]; then echo "ok $n - nvim exited 0 after :qa"; else
	echo "not ok $n - nvim exited 0 after :qa (got $rc)"; sed 's/^/# /' "$tmp/stderr" | tail -20; fi

# Every process still carrying the marker: none may be left.
stray=""
for e in /proc/[0-9]*/environ; do
	if { tr '\0' '\n' <"$e"; } 2>/dev/null | grep -qx "$marker"; then
		p=${e#/proc/}; p=${p%/environ}
		stray="$stray $p:$(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null)"
	fi
done
n=$((n + 1))
if [ -z "$stray" ]; then echo "ok $n - no cork process left after :qa"; else
	echo "not ok $n - no cork process left after :qa"; echo "# left:$stray"; fi
server=$(cat "$tmp/server-pid" 2>/dev/null || echo)
n=$((n + 1))
if [ -n "$server" ] && [ ! -e "/proc/$server" ]; then echo "ok $n - the server (pid $server) is gone"; else
	echo "not ok $n - the server (pid $server) is gone"; fi
echo "1..$n"
