-- cork bottles: the bottles and agents cork can find, and where.
local cork = require "cork"
local args = require "cork.args"
local manifest = require "cork.manifest"

local USAGE = "cork bottles"

local M = {}

M.help = [[
usage: ]] .. USAGE .. [[


Lists the bottles and agents cork can find, with the file each name loads
from, in the order cork searches:
  bottles  $XDG_CONFIG_HOME/cork/bottles (~/.config/cork/bottles),
           ~/.bot-bottle/bottles
  agents   the same config dirs' agents/, then ./.cork/agents
A name found twice loads from the first; later copies are marked shadowed.
A bottle inside a git working tree is marked ignored, with why (see
CORK_TRUSTED_DIRS in docs/manifests.md); a file that does not load is marked
invalid, with its first error. An agent shows the bottle it names.

With the global --json, one "manifest" event per file: kind (bottle or
agent), name, path, dir, status (ok, invalid, ignored, shadowed), and
error (why; for shadowed, the file that wins), bottle or description where
they apply.]]

local EXTS = { ".yaml", ".yml", ".md" }

-- Every file of a kind, in search order: {kind, name, path, status, ...}.
function M.entries(kind)
  local dirs = manifest.dirs()[kind == "agent" and "agents" or "bottles"]
  local out, seen = {}, {}
  for _, dir in ipairs(dirs) do
    local ok, files = pcall(cork.fs.list, dir)
    for _, f in ipairs(ok and files or {}) do
      local name, ext = f:match("^(.+)(%.[%w]+)$")
      local known = false
      for _, e in ipairs(EXTS) do if e == ext then known = true end end
      local path = dir .. "/" .. f
      local st = cork.fs.stat(path)
      if known and st and st.type ~= "directory" then
        local e = {}
        e.kind, e.name, e.path, e.dir = kind, name, path, dir
        local why = kind == "bottle" and manifest.untrusted(path) or nil
        if why then
          e.status, e.error = "ignored", why
        elseif seen[name] then
          e.status, e.error = "shadowed", seen[name]
        else
          seen[name] = path
          local lok, v = pcall(manifest.load_file, path, kind, name)
          if lok then
            e.status = "ok"
            e.description = v.description
            if kind == "agent" then e.bottle = v.bottle end
          else
            e.status = "invalid"
            local msg = (cork.is_error(v) and v.message or tostring(v)):match("[^\n]*")
            if msg:sub(1, #path) == path then msg = f .. msg:sub(#path + 1) end
            e.error = msg
          end
        end
        out[#out + 1] = e
      end
    end
  end
  return out, dirs
end

function M.main(argv)
  local _, rest = args.parse(argv, {}, { usage = USAGE })
  if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], USAGE)) end
  local json = cork.core.settings().json
  for _, kind in ipairs({ "bottle", "agent" }) do
    local list, dirs = M.entries(kind)
    if json then
      for _, e in ipairs(list) do cork.log.event("manifest", e) end
    else
      print(("%ss (searched: %s)"):format(kind, table.concat(dirs, ", ")))
      if #list == 0 then print("  (none)") end
      local w = 0
      for _, e in ipairs(list) do w = math.max(w, #e.name) end
      for _, e in ipairs(list) do
        local note = ""
        if e.status == "shadowed" then note = ("  [shadowed by %s]"):format(e.error)
        elseif e.status ~= "ok" then note = ("  [%s: %s]"):format(e.status, e.error)
        elseif e.bottle then note = ("  (bottle %s)"):format(e.bottle) end
        print(("  %-" .. w .. "s  %s%s"):format(e.name, e.path, note))
      end
    end
  end
  return 0
end

return M
