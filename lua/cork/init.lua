-- cork: the whole binding set in one table. `cork script` and `cork repl`
-- start with it bound to the global `cork`.
local core = require "cork.core"

local cork = {
  core = core,
  scope = require "cork.scope",
  proc = require "cork.proc",
  fs = require "cork.fs",
  json = require "cork.json",
  yaml = require "cork.yaml",
  log = require "cork.log",
  sleep = core.sleep,
  time = core.time,
  error = core.error,
  is_error = core.is_error,
  version = core.versions().cork,
}

-- Modules added by later layers load on first use: cork.docker, cork.net, ...
return setmetatable(cork, {
  __index = function(t, name)
    if type(name) ~= "string" then return nil end
    local ok, mod = pcall(require, "cork." .. name)
    if ok then rawset(t, name, mod); return mod end
    if type(mod) == "string" and not mod:find("module 'cork." .. name .. "' not found", 1, true) then
      error(mod, 2)
    end
    return nil
  end,
})
