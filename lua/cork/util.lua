-- cork.util: the small helpers several library modules share (one copy of
-- each, instead of one per module).
local M = {}

-- copy(v) -> a deep copy of a table (other values as they are). Tables are
-- trees here (manifests, plans): no cycles. Metatables are shared, not
-- copied, so a list marked with cork.json.array stays a list.
function M.copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = M.copy(x) end
  return setmetatable(t, getmetatable(v))
end

-- getenv_of(opts) -> the getenv a plan or manifest reads: opts.env as a
-- function, or a table of name -> value, else os.getenv.
function M.getenv_of(opts)
  local e = opts and opts.env
  if type(e) == "function" then return e end
  if type(e) == "table" then return function(k) return e[k] end end
  return os.getenv
end

return M
