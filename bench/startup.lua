-- startup: `cork version` is the floor every recipe pays. Measured against
-- the cost of starting any program at all (`true`), interleaved, in one run.
local N = tonumber(arg[1]) or 200
local BIN = os.getenv("CORK_BIN")

local function once(argv)
  local t0 = cork.time()
  local r = cork.proc.run(argv)
  assert(r.status == 0, "failed: " .. table.concat(argv, " "))
  return cork.time() - t0
end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local floor, cv, cs = {}, {}, {}
local hello_src = os.tmpname()
io.open(hello_src, "w"):write("return 0\n"):close()
for _ = 1, 5 do once({ BIN, "version" }) end   -- warm the page cache
for i = 1, N do
  floor[i] = once({ "true" })
  cv[i] = once({ BIN, "version" })
  cs[i] = once({ BIN, "script", hello_src })
end
os.remove(hello_src)
local f, v, s = median(floor), median(cv), median(cs)
print(("runs: %d each, interleaved; medians"):format(N))
print(("  true (fork+exec floor)   %7.2f ms"):format(f * 1e3))
print(("  cork version             %7.2f ms   (%.1fx the floor, +%.2f ms)"):format(v * 1e3, v / f, (v - f) * 1e3))
print(("  cork script (empty)      %7.2f ms   (%.1fx the floor, +%.2f ms)"):format(s * 1e3, s / f, (s - f) * 1e3))
local target = 0.010
print(("  cork version vs the 10 ms budget: %s (%.0f%% of it)"):format(v < target and "within" or "OVER", v / target * 100))
