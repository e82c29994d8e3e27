-- cork.recipes: find, list and run recipes.
--
-- A recipe is a Lua file. By name, it is looked up in each CORK_PATH
-- directory (DIR/recipes/NAME.lua, then DIR/NAME.lua) and then among the
-- recipes compiled into cork (recipes/NAME.lua); a name containing "/" or
-- ending in ".lua" that names an existing file is used as a path.
-- The first line, a `-- ` comment, is the recipe's one-line description.
local core = require "cork.core"
local fs = require "cork.fs"

local M = {}

local function search_dirs()
  local dirs = {}
  for d in (core.settings().lua_path or ""):gmatch("[^;]+") do dirs[#dirs + 1] = d end
  return dirs
end

local function describe(text, name)
  local first = text:match("^([^\n]*)") or ""
  local d = first:match("^%-%-+%s*(.-)%s*$")
  if not d then return "" end
  d = d:gsub("^" .. name:gsub("%p", "%%%0") .. "%s*[:%-]+%s*", "")
  return d
end

-- find(name) -> { name, origin = "path"|"embedded", path, chunkname, source }
function M.find(name)
  if type(name) ~= "string" or name == "" then core.error("usage", "no recipe named") end
  local candidates = {}
  if name:find("/", 1, true) or name:match("%.lua$") then
    local st = fs.stat(name)
    if st and st.type == "file" then candidates[1] = name end
  end
  if not name:find("..", 1, true) then
    for _, d in ipairs(search_dirs()) do
      candidates[#candidates + 1] = d .. "/recipes/" .. name .. ".lua"
      candidates[#candidates + 1] = d .. "/" .. name .. ".lua"
    end
  end
  for _, p in ipairs(candidates) do
    local st = fs.stat(p)
    if st and st.type == "file" then
      return { name = name, origin = "path", path = p, chunkname = "@" .. p, source = fs.read(p) }
    end
  end
  local rel = "recipes/" .. name:gsub("%.lua$", "") .. ".lua"
  local text = core.embedded(rel)
  if text then
    return { name = name, origin = "embedded", path = rel, chunkname = "@" .. rel, source = text }
  end
  local names = {}
  for _, r in ipairs(M.list()) do names[#names + 1] = r.name end
  local hint = require("cork.args").suggest(name, names)
  core.error("not_found", ("no recipe '%s'%s (see `cork recipes`)"):format(name,
    hint and ("; did you mean '%s'?"):format(hint) or ""), { recipe = name, suggestion = hint })
end

-- help(name) -> the recipe's help: its leading comment block (description,
-- usage, options), read from the file and never run.
function M.help(name)
  local r = M.find(name)
  local lines = {}
  for line in (r.source .. "\n"):gmatch("([^\n]*)\n") do
    if line:sub(1, 2) ~= "--" then break end
    lines[#lines + 1] = (line:gsub("^%-%- ?", ""))
  end
  if #lines == 0 then return ("%s: no description (%s)"):format(name, r.path) end
  return table.concat(lines, "\n")
end

-- list() -> { { name, description, origin, path }, ... } sorted by name;
-- a recipe on CORK_PATH hides the embedded one of the same name.
function M.list()
  local seen, out = {}, {}
  local function add(name, origin, path, text)
    if seen[name] then return end
    seen[name] = true
    out[#out + 1] = { name = name, origin = origin, path = path, description = describe(text, name) }
  end
  for _, d in ipairs(search_dirs()) do
    for _, sub in ipairs({ d .. "/recipes", d }) do
      local st = fs.stat(sub)
      if st and st.type == "directory" then
        for _, f in ipairs(fs.list(sub)) do
          local n = f:match("^(.+)%.lua$")
          local p = sub .. "/" .. f
          local fst = fs.stat(p)
          if n and fst and fst.type == "file" then
            local text = fs.read(p)
            if text:match("^%-%-") then add(n, "path", p, text) end
          end
        end
      end
    end
  end
  for _, p in ipairs(core.embedded_list("recipes/")) do
    local n = p:match("^recipes/(.+)%.lua$")
    if n and not n:find("/assets/", 1, true) then add(n, "embedded", p, core.embedded(p)) end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

-- load(source, chunkname) -> function; syntax errors raise kind "invalid".
function M.load_chunk(source, chunkname)
  local fn, err = load(source, chunkname, "t")
  if not fn then core.error("invalid", err) end
  return fn
end

-- run(name, args) -> exit code. `arg` and `...` hold the arguments.
function M.run(name, args)
  local r = M.find(name)
  local fn = M.load_chunk(r.source, r.chunkname)
  args = args or {}
  args[0] = r.path
  _G.arg = args
  _G.cork = _G.cork or require "cork"
  local rc = fn(table.unpack(args, 1, #args))
  if math.type(rc) == "integer" then return rc end
  return 0
end

return M
