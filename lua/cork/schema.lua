-- cork.schema: validate decoded YAML against a small declarative schema and
-- report every problem as "FILE:LINE:COL: PATH: problem", with a did-you-mean
-- suggestion for unknown keys.
--
-- A schema is a tree of nodes built with the constructors below:
--   S.string{pattern=, enum=, check=}   S.boolean   S.integer{min=, max=}
--   S.scalar            (string, number or boolean: env values)
--   S.any{check=}       (any value; the check decides)
--   S.list(node, {check=})   S.map{fields={...}, required={...}, aliases={...}, check=}
--   S.dict(keynode_check, valuenode)    (free-form keys: env)
--   S.either(node1, node2)              (first whose type matches is used)
-- `check(value, at)` is a custom rule: call at.fail(msg[, key]) to report.
--
-- validate(value, node, {file=, positions=, line_offset=}) -> list of error
-- strings, sorted by position. Nothing here raises: the caller decides.
local M = {}

local null_value
do
  local ok, json = pcall(require, "cork.json")
  if ok and type(json) == "table" then null_value = json.null end
end

function M.is_null(v) return v == nil or (null_value ~= nil and v == null_value) end

local function is_sequence(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  return n == #t
end

local function is_list(t) return type(t) == "table" and is_sequence(t) end
local function is_map(t)
  if type(t) ~= "table" then return false end
  if next(t) == nil then return true end      -- {} and [] decode alike
  return not is_sequence(t)
end
M.is_list, M.is_map = is_list, is_map

-- What an operator would call the value, for "expected X, got Y".
function M.describe(v)
  if M.is_null(v) then return "null" end
  local t = type(v)
  if t == "string" then return "a string" end
  if t == "boolean" then return "a boolean" end
  if t == "number" then return math.type(v) == "integer" and "an integer" or "a number" end
  if t == "table" then
    if next(v) == nil then return "an empty mapping" end
    return is_sequence(v) and "a list" or "a mapping"
  end
  return "a " .. t
end

-- Optimal string alignment distance (a transposition counts as one edit).
local function distance(a, b)
  local la, lb = #a, #b
  if math.abs(la - lb) > 3 then return 99 end
  local d = {}
  for i = 0, la do d[i] = {[0] = i} end
  for j = 0, lb do d[0][j] = j end
  for i = 1, la do
    for j = 1, lb do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[la][lb]
end
M.distance = distance

-- The closest candidate within a small edit distance, or nil.
function M.suggest(word, candidates)
  if type(word) ~= "string" or #word > 64 then return nil end
  local lw = word:lower():gsub("-", "_")
  local best, bestd
  local sorted = {}
  for _, c in ipairs(candidates) do sorted[#sorted + 1] = c end
  table.sort(sorted)
  for _, c in ipairs(sorted) do
    local d = distance(lw, (c:lower():gsub("-", "_")))
    if d < (bestd or math.huge) then best, bestd = c, d end
  end
  if bestd and bestd <= math.max(1, math.min(2, #word // 3)) and bestd < #word then
    return best
  end
  return nil
end

-- ---- node constructors ----------------------------------------------------

local S = {}
M.S = S

function S.string(o) o = o or {}; o.type = "string"; return o end
S.boolean = {type = "boolean"}
function S.integer(o) o = o or {}; o.type = "integer"; return o end
S.scalar = {type = "scalar"}
function S.any(o) o = o or {}; o.type = "any"; return o end
function S.list(item, o) o = o or {}; o.type = "list"; o.item = item; return o end
function S.map(o) o.type = "map"; o.fields = o.fields or {}; return o end
function S.dict(key_check, value, o)
  o = o or {}; o.type = "dict"; o.key_check = key_check; o.value = value; return o
end
function S.either(...) return {type = "either", options = {...}} end

local expected_name = {
  string = "a string", boolean = "a boolean", integer = "an integer",
  scalar = "a string, number or boolean", list = "a list", map = "a mapping",
  dict = "a mapping", any = "any value",
}

local function type_ok(node, v)
  local t = node.type
  if t == "string" then return type(v) == "string" end
  if t == "boolean" then return type(v) == "boolean" end
  if t == "integer" then return math.type(v) == "integer" end
  if t == "scalar" then
    return type(v) == "string" or type(v) == "number" or type(v) == "boolean"
  end
  if t == "list" then return is_list(v) end
  if t == "any" then return true end
  if t == "map" or t == "dict" then return is_map(v) end
  if t == "either" then
    for _, o in ipairs(node.options) do if type_ok(o, v) then return true end end
    return false
  end
  return false
end

local function expected(node)
  if node.type == "either" then
    local names = {}
    for _, o in ipairs(node.options) do names[#names + 1] = expected_name[o.type] end
    return table.concat(names, " or ")
  end
  return expected_name[node.type]
end

local function join_path(path, key)
  if math.type(key) == "integer" then return path .. "[" .. key .. "]" end
  key = tostring(key)
  if path == "" then return key end
  return path .. "." .. key
end
M.join_path = join_path

-- ---- validation -----------------------------------------------------------

local Ctx = {}
Ctx.__index = Ctx

-- Position of key `key` in table `t` (or of t itself when key is nil).
function Ctx:pos(t, key)
  local p = self.positions and type(t) == "table" and self.positions[t]
  local at = p and (key == nil and p[0] or p[key])
  if not at and p then at = p[0] end
  local line, col = 1, 1
  if type(at) == "table" then line, col = at.line or 1, at.col or 1 end
  return line + (self.line_offset or 0), col
end

function Ctx:where(t, key)
  local line, col = self:pos(t, key)
  return ("%s:%d:%d"):format(self.file, line, col)
end

function Ctx:add(t, key, path, msg)
  local line, col = self:pos(t, key)
  local text = ("%s:%d:%d: %s%s"):format(self.file, line, col,
    path ~= "" and (path .. ": ") or "", msg)
  self.errors[#self.errors + 1] = {line = line, col = col, n = #self.errors, text = text}
end

local check

local function run_custom(ctx, node, v, parent, key, path)
  if not node.check then return end
  local at = {
    path = path, parent = parent, key = key, value = v, positions = ctx.positions,
    where = function(k) if k == nil then return ctx:where(parent, key) end return ctx:where(v, k) end,
    fail = function(msg, k)
      if k == nil then ctx:add(parent, key, path, msg)
      else ctx:add(v, k, join_path(path, k), msg) end
    end,
  }
  node.check(v, at)
end

-- Validate v (found under parent[key], displayed as path) against node.
check = function(ctx, node, v, parent, key, path)
  if node.type == "either" then
    for _, o in ipairs(node.options) do
      if type_ok(o, v) then return check(ctx, o, v, parent, key, path) end
    end
    ctx:add(parent, key, path, ("expected %s, got %s"):format(expected(node), M.describe(v)))
    return
  end
  if not type_ok(node, v) then
    ctx:add(parent, key, path, ("expected %s, got %s"):format(expected(node), M.describe(v)))
    return
  end
  local t = node.type
  if t == "string" then
    if node.nonempty and v == "" then
      ctx:add(parent, key, path, "must not be empty"); return
    end
    if node.enum then
      local okv = false
      for _, e in ipairs(node.enum) do if e == v then okv = true end end
      if not okv then
        local hint = M.suggest(v, node.enum)
        ctx:add(parent, key, path, ("%q is not one of %s%s"):format(v,
          table.concat(node.enum, ", "), hint and (' (did you mean "' .. hint .. '"?)') or ""))
        return
      end
    end
    if node.pattern and not v:find(node.pattern) then
      ctx:add(parent, key, path, node.pattern_message or ("%q is not valid"):format(v))
      return
    end
  elseif t == "integer" then
    if (node.min and v < node.min) or (node.max and v > node.max) then
      ctx:add(parent, key, path, ("must be between %d and %d"):format(node.min or math.mininteger,
        node.max or math.maxinteger))
      return
    end
  elseif t == "list" then
    for i, item in ipairs(v) do
      if M.is_null(item) then
        ctx:add(v, i, join_path(path, i), ("expected %s, got null"):format(expected(node.item)))
      else
        check(ctx, node.item, item, v, i, join_path(path, i))
      end
    end
  elseif t == "map" then
    local names = {}
    for name in pairs(node.fields) do names[#names + 1] = name end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local seen, unknown = {}, false
    for _, k in ipairs(keys) do
      local name = type(k) == "string" and (node.aliases and node.aliases[k] or k) or nil
      local field = name and node.fields[name]
      local kp = join_path(path, k)
      if not field then
        unknown = true
        -- did-you-mean costs an edit distance per known key: a file of many
        -- unknown keys gets suggestions for the first MAX_HINTS only
        ctx.hints = (ctx.hints or 0) + 1
        local hint = ctx.hints <= M.MAX_HINTS and M.suggest(type(k) == "string" and k or nil, names) or nil
        ctx:add(v, k, kp, "unknown key" .. (hint and (' (did you mean "' .. hint .. '"?)') or ""))
      elseif seen[name] then
        ctx:add(v, k, kp, ('"%s" is also given as "%s"; keep one'):format(k, seen[name]))
      else
        seen[name] = k
        if not M.is_null(v[k]) then check(ctx, field, v[k], v, k, kp) end
      end
    end
    -- a misspelt key is most likely the one a rule below would miss: say
    -- only that (the document fails either way)
    if unknown then return end
    for _, r in ipairs(node.required or {}) do
      local present = false
      for k, name in pairs(seen) do
        if k == r and not M.is_null(v[name]) then present = true end
      end
      if not present then ctx:add(parent, key, path, ('missing required key "%s"'):format(r)) end
    end
  elseif t == "dict" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      local kp = join_path(path, k)
      local problem = node.key_check and node.key_check(k)
      if problem then
        ctx:add(v, k, kp, problem)
      elseif M.is_null(v[k]) then
        ctx:add(v, k, kp, ("expected %s, got null"):format(expected(node.value)))
      else
        check(ctx, node.value, v[k], v, k, kp)
      end
    end
  end
  run_custom(ctx, node, v, parent, key, path)
end

-- At most this many errors are reported per file (then "... and N more"),
-- and did-you-mean runs for the first MAX_HINTS unknown keys.
M.MAX_ERRORS = 50
M.MAX_HINTS = 20

-- Validate a whole document. Returns the list of messages (empty when valid),
-- in document order.
function M.validate(doc, node, opts)
  local ctx = setmetatable({file = opts.file or "?", positions = opts.positions,
    line_offset = opts.line_offset or 0, errors = {}}, Ctx)
  -- The document itself has no parent: wrap it so positions resolve to it.
  local root = {doc}
  if ctx.positions and type(doc) == "table" then
    local p = ctx.positions[doc]
    ctx.positions[root] = {[1] = p and p[0] or {line = 1, col = 1}}
  end
  if M.is_null(doc) then
    ctx:add(root, 1, "", ("expected %s, got an empty document"):format(expected(node)))
  else
    check(ctx, node, doc, root, 1, "")
  end
  if ctx.positions then ctx.positions[root] = nil end
  table.sort(ctx.errors, function(a, b)
    if a.line ~= b.line then return a.line < b.line end
    if a.col ~= b.col then return a.col < b.col end
    return a.n < b.n
  end)
  local out = {}
  for i, e in ipairs(ctx.errors) do
    if i > M.MAX_ERRORS then
      out[#out + 1] = ("%s: ... and %d more errors"):format(ctx.file, #ctx.errors - M.MAX_ERRORS)
      break
    end
    out[i] = e.text
  end
  return out
end

-- "FILE:LINE:COL" for key `key` of table `t` (for errors raised later).
function M.where(file, positions, t, key, line_offset)
  local ctx = setmetatable({file = file, positions = positions, line_offset = line_offset}, Ctx)
  return ctx:where(t, key)
end

return M
