-- cork.args: parse a subcommand's or recipe's options against a spec.
--
--   local opts, rest = require("cork.args").parse(args, {
--     bottle = "string", agent = "string", detach = "boolean", port = "number",
--   }, { usage = "cork run smolmachines --bottle NAME [--detach]" })
--
-- Accepts --name value, --name=value and --flag; unknown options and missing
-- values raise kind "usage" (exit code 2), naming the option.
local core = require "cork.core"

local M = {}

local function usage_error(msg, spec_opts)
  local text = msg
  if spec_opts and spec_opts.usage then text = text .. "\nusage: " .. spec_opts.usage end
  core.error("usage", text)
end

-- Suggest the closest known option for a typo.
local function closest(name, spec)
  local best, bestd
  for k in pairs(spec) do
    local a, b = name, k
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
      local cur = { [0] = i }
      for j = 1, #b do
        local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      end
      prev = cur
    end
    local d = prev[#b]
    if d <= 2 and (not bestd or d < bestd) then best, bestd = k, d end
  end
  return best
end
M.closest = closest

-- suggest(word, names) -> the name closest to word (a typo: at most two
-- edits, case aside), or nil. names: a list of strings.
function M.suggest(word, names)
  if type(word) ~= "string" then return nil end
  local spec, lower = {}, {}
  for _, n in ipairs(names or {}) do
    if n:lower() == word:lower() then return n end
    spec[n:lower()] = true; lower[n:lower()] = n
  end
  local best = closest(word:lower(), spec)
  return best and lower[best] or nil
end

function M.parse(args, spec, spec_opts)
  local opts, rest = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--" then
      for j = i + 1, #args do rest[#rest + 1] = args[j] end
      break
    end
    local name, value = a:match("^%-%-([%w][%w%-_]*)=(.*)$")
    if not name then name = a:match("^%-%-([%w][%w%-_]*)$") end
    if name then
      local key = name:gsub("-", "_")
      local kind = spec[key]
      if not kind then
        local hint = closest(key, spec)
        usage_error(("unknown option --%s%s"):format(name,
          hint and (" (did you mean --%s?)"):format(hint:gsub("_", "-")) or ""), spec_opts)
      end
      if kind == "boolean" then
        if value then usage_error(("option --%s takes no value"):format(name), spec_opts) end
        opts[key] = true
      else
        if not value then
          i = i + 1
          value = args[i]
          if value == nil then usage_error(("option --%s needs a value"):format(name), spec_opts) end
        end
        if kind == "number" then
          local v = tonumber(value)
          if not v then usage_error(("option --%s needs a number, got '%s'"):format(name, value), spec_opts) end
          opts[key] = v
        elseif kind == "list" then
          opts[key] = opts[key] or {}
          table.insert(opts[key], value)
        else
          opts[key] = value
        end
      end
    elseif a:match("^%-%a") and a ~= "-" then
      usage_error(("unknown option %s"):format(a), spec_opts)
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

return M
