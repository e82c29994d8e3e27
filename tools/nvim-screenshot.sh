#!/bin/sh
# tools/nvim-screenshot.sh OUT.png: the README's picture of the Neovim plugin,
# taken from a real session: Neovim in an xterm on a virtual X server
# (Xvfb), driving a private Docker engine ($DOCKER_HOST, e.g. from
# tests/lib/dockerd.sh) with the stand-in images. It launches a bottle with
# :Cork run docker, shows :Cork ls, takes the picture, ends the bottle.
# Needs: xvfb xterm x11-apps imagemagick fonts-dejavu-core neovim (Debian).
set -eu
out=${1:?usage: tools/nvim-screenshot.sh OUT.png}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORK_BIN:-$root/build/cork}
: "${DOCKER_HOST:?set DOCKER_HOST to a (private) engine}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cork-shot.XXXXXX")
display=:${CORK_SHOT_DISPLAY:-77}
xvfb=""
cleanup() {
	[ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# the stand-in images, and a bottle "demo" that uses them
cat >"$tmp/images.lua" <<'LUA'
require("cork.standin").images(require("cork.docker").connect())
LUA
"$bin" script "$tmp/images.lua" >/dev/null
mkdir -p "$tmp/config/cork/bottles" "$tmp/state" "$tmp/home"
cat >"$tmp/config/cork/bottles/demo.yaml" <<'YAML'
agent:
  provider: claude
  image: cork-standin-agent:latest
bundle:
  image: cork-standin-bundle:latest
YAML

cat >"$tmp/init.lua" <<LUA
vim.opt.runtimepath:prepend("$root/editors/nvim")
vim.opt.termguicolors = false
vim.opt.laststatus = 2
vim.opt.shortmess:append("I")
vim.cmd("runtime! plugin/cork.lua")
require("cork_nvim").setup({ cmd = { "$bin" } })
vim.defer_fn(function()
  vim.cmd("Cork run docker --bottle demo")
  vim.cmd("wincmd o")
  local rb = vim.api.nvim_get_current_buf()
  local function wait_done()
    local text = table.concat(vim.api.nvim_buf_get_lines(rb, 0, -1, false), "\n")
    local slug = text:match("finished %(exit 0%): bottle (%S+)")
    if not slug then return vim.defer_fn(wait_done, 200) end
    vim.cmd("normal! gg")
    vim.cmd("Cork ls")
    vim.cmd("resize 8")
    vim.defer_fn(function()
      vim.fn.writefile({ slug }, "$tmp/ready")
    end, 2500)
  end
  wait_done()
end, 300)
LUA

Xvfb "$display" -screen 0 1200x760x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
sleep 1
DISPLAY=$display HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" \
	xterm -geometry 132x40+0+0 -fa "DejaVu Sans Mono" -fs 10 -bg "#1d1f21" -fg "#c5c8c6" \
	-e nvim -u "$tmp/init.lua" -i NONE -n &
xterm=$!
i=0
while [ ! -s "$tmp/ready" ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
[ -s "$tmp/ready" ] || { echo "nvim-screenshot: the launch did not finish" >&2; kill $xterm; exit 1; }
slug=$(cat "$tmp/ready")
DISPLAY=$display xwd -root -silent >"$tmp/shot.xwd"
# the xterm's area only
convert-im6.q16 "$tmp/shot.xwd" -crop "$(DISPLAY=$display xwininfo -root -tree | awk '/xterm/ {print $(NF-1); exit}' | sed 's/+0+0$//')+0+0" +repage "$out" 2>/dev/null ||
	convert-im6.q16 "$tmp/shot.xwd" "$out"
kill $xterm 2>/dev/null || true
wait $xterm 2>/dev/null || true
XDG_CONFIG_HOME="$tmp/config" XDG_STATE_HOME="$tmp/state" "$bin" -q down "$slug"
echo "nvim-screenshot: $out ($slug launched and ended)"
