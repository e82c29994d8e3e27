-- tools/man.lua: write cork(1), the man page, to stdout from the same text
-- `cork help` prints (lua/cork/cli.lua, each lua/cork/cmd/NAME.lua's help,
-- and the stock launch recipes' headers), so the two never disagree.
--   build/cork script tools/man.lua > build/cork.1     (the Makefile does this)
local cli = require "cork.cli"
local recipes = require "cork.recipes"

local VERSION = cork.core.versions().cork
local out = {}
local function w(s) out[#out + 1] = s end

-- Text as roff: backslashes as \e, minus signs as \- (so options copy as
-- typed), a line starting with . or ' guarded.
local function esc(s)
  s = s:gsub("\\", "\\e"):gsub("%-", "\\-")
  return (s:gsub("([^\n]*)", function(line)
    if line:match("^[.']") then return "\\&" .. line end
    return line
  end))
end

-- A block of help text, verbatim (it is laid out for a terminal already).
local function verbatim(text)
  w(".nf")
  w(esc((text:gsub("\n+$", ""))))
  w(".fi")
end

w(('.TH CORK 1 "" "cork %s" "User Commands"'):format(VERSION))
w(".SH NAME")
w("cork \\- launch AI coding agents in sandboxed bottles")
w(".SH SYNOPSIS")
w(".B cork")
w("[global flags] COMMAND [args]")
w(".br")
w(".B cork run")
w("docker|smolmachines \\-\\-bottle NAME [options]")
w(".SH DESCRIPTION")
w("cork launches bottles: an AI coding agent sealed in a micro\\-VM (smolvm) or a")
w("container, whose only way out is a per\\-bottle bundle container that filters")
w("everything the agent sends. The launch flows are Lua recipes compiled into")
w("cork; this page is made from the same text as")
w(".BR \"cork help\" .")
w("From nothing to a running bottle: docs/getting\\-started.md in cork's sources.")
w(".SH USAGE")
verbatim(cli.help_text())
w(".SH COMMANDS")
for _, name in ipairs(cli.command_names()) do
  local text = cli.help_text(name)
  if text then
    w(".SS " .. name)
    verbatim(text)
  end
end
w(".SH RECIPES")
w("The stock recipes (")
w(".B cork recipes")
w("lists them all;")
w(".B cork help RECIPE")
w("shows one):")
for _, name in ipairs({ "docker", "smolmachines", "prepare", "demo" }) do
  w(".SS " .. name)
  verbatim(recipes.help(name))
end
w(".SH ENVIRONMENT")
local env = {
  { "CORK_PATH", "';'\\-separated directories searched for recipes and Lua modules before the embedded ones (also \\-\\-lua\\-path)." },
  { "CORK_SMOLVM", "the smolvm binary the smolmachines recipe runs (default: smolvm on PATH)." },
  { "CORK_BUNDLE_IMAGE", "the bundle image when the bottle names none (default cork\\-bundle:latest)." },
  { "CORK_TRUSTED_DIRS", "':'\\-separated directories whose bottles load even inside a git working tree (a $HOME or ~/.config kept in git)." },
  { "CORK_REGISTRY_IMAGE", "the registry image prepare pushes to on smolvm below 1.9." },
  { "DOCKER_HOST", "the Docker engine (unix:// or tcp:// with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH)." },
  { "XDG_CONFIG_HOME", "bottles and agents: $XDG_CONFIG_HOME/cork/{bottles,agents} (default ~/.config)." },
  { "XDG_STATE_HOME", "journals and bottle state: $XDG_STATE_HOME/cork (default ~/.local/state)." },
  { "XDG_CACHE_HOME", "packed VM artifacts: $XDG_CACHE_HOME/cork (default ~/.cache)." },
  { "NO_COLOR", "no ANSI colours (as \\-\\-no\\-color)." },
}
for _, e in ipairs(env) do
  w(".TP")
  w(".B " .. e[1])
  w("\\&" .. e[2])
end
w(".SH EXIT STATUS")
w("0 ok, 1 failed, 2 usage or invalid input (a misspelled name, an invalid bottle), 130 interrupted.")
w("An attached launch and")
w(".B cork attach")
w("exit with the agent's own status.")
w(".SH SEE ALSO")
w("docker(1); cork's docs/: getting\\-started.md, recipes.md, manifests.md, api.md, events.md.")
io.stdout:write(table.concat(out, "\n"), "\n")
