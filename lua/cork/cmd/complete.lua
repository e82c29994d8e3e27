-- cork complete WHAT: names for shell completion, one a line.
local cork = require "cork"

local M = {}

M.help = [[
usage: cork complete commands|recipes|bottles|agents|slugs|options NAME

Prints names, one a line, for the bash and zsh completion scripts
(share/bash-completion/completions/cork, share/zsh/site-functions/_cork,
installed by make install):
  commands   cork's commands
  recipes    the recipes `cork recipes` lists
  bottles    the bottles that load (`cork bottles`)
  agents     the agents that load
  slugs      the bottles cork's journals know (`cork ls`)
  options N  the --options that command or recipe N's help lists
Prints nothing (exit 0) when there is nothing to offer.]]

local lists = {}

function lists.commands() return require("cork.cli").command_names() end

function lists.recipes()
  local out = {}
  for _, r in ipairs(require("cork.recipes").list()) do out[#out + 1] = r.name end
  return out
end

local function manifests(kind)
  local out, seen = {}, {}
  for _, e in ipairs(require("cork.cmd.bottles").entries(kind)) do
    if e.status == "ok" and not seen[e.name] then seen[e.name] = true; out[#out + 1] = e.name end
  end
  return out
end
function lists.bottles() return manifests("bottle") end
function lists.agents() return manifests("agent") end

function lists.slugs() return require("cork.journal").slugs() end

function lists.options(name)
  local text = require("cork.cli").help_text(name or "")
  local ok = text ~= nil
  if not ok then ok, text = pcall(require("cork.recipes").help, name or "") end
  local out, seen = {}, {}
  local function add(o) if not seen[o] then seen[o] = true; out[#out + 1] = o end end
  -- options where a help text lists them: "  --name ..." rows and "[--name" in usage lines
  for line in ((ok and text or "") .. "\n"):gmatch("([^\n]*)\n") do
    local lead = line:match("^%s*(%-%-[%a][%w-]*)")
    if lead then add(lead) end
    for o in line:gmatch("[%[(|]%s?(%-%-[%a][%w-]*)") do add(o) end
  end
  add("--help")
  return out
end

function M.main(argv)
  local what = argv[1]
  local fn = what and lists[what]
  if not fn then
    cork.error("usage", "complete needs one of: commands, recipes, bottles, agents, slugs, options NAME")
  end
  local ok, names = pcall(fn, argv[2])
  for _, n in ipairs(ok and names or {}) do io.stdout:write(n, "\n") end
  return 0
end

return M
