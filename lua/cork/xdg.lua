-- cork.xdg: the XDG base directories cork keeps its files under.
--
--   xdg.home("state")          -- $XDG_STATE_HOME, else ~/.local/state
--   xdg.home("config", getenv) -- with another environment (a plan's opts.env)
--
-- A relative value is ignored, as the XDG spec asks; HOME falls back to
-- the password database through cork.fs.expand_tilde.
local fs = require "cork.fs"

local M = {}

local VARS = {
  config = { "XDG_CONFIG_HOME", "/.config" },
  state = { "XDG_STATE_HOME", "/.local/state" },
  cache = { "XDG_CACHE_HOME", "/.cache" },
}

-- home(kind[, getenv]) -> the base directory (not cork's subdirectory).
function M.home(kind, getenv)
  local v = assert(VARS[kind], "xdg.home: kind is config, state or cache")
  getenv = getenv or os.getenv
  local base = getenv(v[1])
  if base and base:sub(1, 1) == "/" then return base end
  return (getenv("HOME") or fs.expand_tilde("~")) .. v[2]
end

return M
