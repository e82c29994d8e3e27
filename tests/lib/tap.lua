-- tap.lua: a tiny TAP producer for Lua tests run inside `cork script`.
--   local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
--   T.is(1 + 1, 2, "adds"); T.raises(fn, "not_found", "pattern", "name"); T.done()
local T = {}
local n, failed = 0, 0

local function out(s) io.stdout:write(s, "\n"); io.stdout:flush() end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" then
    local ok, json = pcall(require, "cork.json")
    if ok then local ok2, s = pcall(json.encode, v); if ok2 then return s end end
  end
  return tostring(v)
end

function T.diag(...)
  local s = table.concat({...}, " ")
  for line in (s .. "\n"):gmatch("(.-)\n") do out("# " .. line) end
end

function T.ok(cond, name, ...)
  n = n + 1
  if cond then out(("ok %d - %s"):format(n, name or ""))
  else
    -- a TODO test (name ending "# TODO reason") is a known failure: TAP does not count it
    if not (name or ""):find("# TODO", 1, true) then failed = failed + 1 end
    out(("not ok %d - %s"):format(n, name or ""))
    for level = 2, 10 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if not info.short_src:find("tap.lua", 1, true) then
        T.diag(("  at %s:%d"):format(info.short_src, info.currentline))
        break
      end
    end
    if select("#", ...) > 0 then T.diag(...) end
  end
  return cond
end

function T.is(got, want, name)
  return T.ok(got == want, name, "  got:  " .. show(got), "\n  want: " .. show(want))
end

function T.isnt(got, notwant, name)
  return T.ok(got ~= notwant, name, "  got: " .. show(got))
end

function T.like(got, pattern, name)
  return T.ok(type(got) == "string" and got:find(pattern) ~= nil, name,
    "  got:     " .. show(got), "\n  pattern: " .. pattern)
end

function T.unlike(got, pattern, name)
  return T.ok(type(got) == "string" and got:find(pattern) == nil, name,
    "  got:     " .. show(got), "\n  pattern: " .. pattern)
end

local function deq(a, b, path)
  if type(a) ~= type(b) then return false, path end
  if type(a) ~= "table" then return a == b, path end
  for k, v in pairs(a) do
    local ok, p = deq(v, b[k], path .. "." .. tostring(k))
    if not ok then return false, p end
  end
  for k in pairs(b) do if a[k] == nil then return false, path .. "." .. tostring(k) end end
  return true
end

function T.same(got, want, name)
  local ok, where = deq(got, want, "")
  return T.ok(ok, name, "  differs at " .. tostring(where), "\n  got:  " .. show(got),
    "\n  want: " .. show(want))
end

-- Call fn; pass when it raises an error of `kind` (nil: any) whose message
-- matches `pattern` (nil: any). Returns the error object.
function T.raises(fn, kind, pattern, name)
  local ok, err = pcall(fn)
  if ok then T.ok(false, name, "  expected an error, got none"); return nil end
  local k = type(err) == "table" and err.kind or nil
  local msg = type(err) == "table" and tostring(err.message) or tostring(err)
  local good = (kind == nil or k == kind) and (pattern == nil or msg:find(pattern) ~= nil)
  T.ok(good, name, "  kind: " .. tostring(k) .. " (want " .. tostring(kind) .. ")",
    "\n  message: " .. msg .. (pattern and ("\n  pattern: " .. pattern) or ""))
  return err
end

function T.lives(fn, name)
  local ok, err = pcall(fn)
  T.ok(ok, name, not ok and ("  error: " .. tostring(err)) or nil)
  return ok
end

function T.skip_all(reason) out("1..0 # SKIP " .. reason); os.exit(0) end
function T.skip(reason, count)
  for _ = 1, count or 1 do n = n + 1; out(("ok %d # SKIP %s"):format(n, reason)) end
end

function T.done()
  out("1.." .. n)
  -- close the state: to-be-closed variables (temp dirs, scopes) run on failure too
  if failed > 0 then os.exit(1, true) end
end

return T
