-- startup: what every cork process pays before it does anything, against
-- bare Lua: `cork version` and `cork script EMPTY.lua` beside `lua5.4 -e ''`
-- (Debian's interpreter) and `true` (starting any program at all),
-- interleaved, in one run; medians and ratios to lua5.4. Also whether a
-- process that never talks to Docker maps libcurl (it should not: cork loads
-- it on first use).
--   cork script bench/startup.lua [N=200]
local N = tonumber(arg[1]) or 200
local BIN = os.getenv("CORK_BIN")
local root = os.getenv("CORK_ROOT") or "."
local summary = dofile(root .. "/bench/lib/summary.lua")

local function once(argv)
  local t0 = cork.time()
  local r = cork.proc.run(argv)
  assert(r.status == 0, "failed: " .. table.concat(argv, " ") .. ": " .. r.stderr)
  return cork.time() - t0
end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local have_lua = cork.proc.run({ "sh", "-c", "command -v lua5.4 >/dev/null" }).status == 0
local empty = os.tmpname()
io.open(empty, "w"):close()
local maps = os.tmpname()
io.open(maps, "w"):write('print((io.open("/proc/self/maps"):read("a"):match("libcurl[^\\n]*")))\n'):close()
for _ = 1, 5 do once({ BIN, "version" }) end   -- warm the page cache
local floor, lua, cv, cs = {}, {}, {}, {}
for i = 1, N do
  floor[i] = once({ "true" })
  if have_lua then lua[i] = once({ "lua5.4", "-e", "" }) end
  cv[i] = once({ BIN, "version" })
  cs[i] = once({ BIN, "script", empty })
end
local mapped = cork.proc.run({ BIN, "script", maps }).stdout:gsub("\n$", "")
os.remove(empty)
os.remove(maps)
local f, v, s = median(floor), median(cv), median(cs)
print(("runs: %d each, interleaved; medians (wall, from cork.proc.run)"):format(N))
print(("  true (fork+exec floor)   %7.2f ms"):format(f * 1e3))
local l
if have_lua then
  l = median(lua)
  print(("  lua5.4 -e ''             %7.2f ms"):format(l * 1e3))
end
local function row(name, x)
  print(("  %-24s %7.2f ms   %s"):format(name, x * 1e3,
    l and ("(%.2fx lua5.4, +%.2f ms)"):format(x / l, (x - l) * 1e3) or ("(%.2fx true)"):format(x / f)))
end
row("cork version", v)
row("cork script EMPTY.lua", s)
print(("  libcurl mapped by `cork script` that never connects: %s"):format(mapped == "nil" and "no" or mapped))
if l then
  summary.ratio("cork version", "lua5.4 -e ''", v, l, 2.5)
  summary.ratio("cork script EMPTY.lua", "lua5.4 -e ''", s, l, 2.5)
else
  print("SKIP: no lua5.4 (Debian package lua5.4): no ratio to bare Lua")
  summary.skip("cork version vs lua5.4", "no lua5.4 (install the Debian package lua5.4)")
end
return 0
