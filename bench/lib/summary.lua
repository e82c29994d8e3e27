-- bench/lib/summary.lua: one row per target for the table `make bench` ends
-- with. bench/run-all names the file in CORK_BENCH_SUMMARY; each benchmark
-- adds its rows (JSON lines), and `cork script bench/lib/summary.lua FILE`
-- prints them as the table.
--
--   local summary = dofile(root .. "/bench/lib/summary.lua")
--   summary.ratio("cork version", "lua5.4 -e ''", cork_s, floor_s, 2.5)
--   summary.above("cork ls, 16 bottles", "its Docker calls", cork_s, floor_s, 0.100)
--   summary.value("peak RSS, cork run docker --detach", kib * 1024, 10 * 2^20, "B")
--   summary.skip("smolmachines recipe", "why")
-- A benchmark is not a test: a target that is not met is reported, never
-- an exit status.
local json = require "cork.json"
local M = {}

local function add(row)
  local path = os.getenv("CORK_BENCH_SUMMARY")
  if not path or path == "" then return end
  cork.fs.append(path, json.encode(row) .. "\n", { sync = false })
end

local function ms(s) return ("%.1f ms"):format(s * 1e3) end

-- cork / floor, at most `target` (nil: reported only)
function M.ratio(metric, floor_name, value, floor, target)
  local r = value / floor
  add({ metric = metric, floor = ("%s %s"):format(floor_name, ms(floor)), value = ms(value),
    result = ("%.2fx"):format(r), target = target and ("<= %.2fx"):format(target) or "(report)",
    met = target == nil and "-" or (r <= target and "yes" or "NO") })
end

-- cork - floor, under `limit` seconds
function M.above(metric, floor_name, value, floor, limit)
  local dv = value - floor
  add({ metric = metric, floor = ("%s %s"):format(floor_name, ms(floor)), value = ms(value),
    result = ("+%.1f ms"):format(dv * 1e3), target = ("< +%.0f ms"):format(limit * 1e3),
    met = dv < limit and "yes" or "NO" })
end

-- an absolute value (bytes) under `limit`
function M.value(metric, bytes, limit)
  local mib = function(b) return ("%.1f MiB"):format(b / 2 ^ 20) end
  add({ metric = metric, floor = "-", value = mib(bytes), result = mib(bytes), target = "< " .. mib(limit),
    met = bytes < limit and "yes" or "NO" })
end

function M.skip(metric, why)
  add({ metric = metric, floor = "-", value = "-", result = "-", target = "-", met = "skipped: " .. why })
end

-- cork script bench/lib/summary.lua FILE: print the table
if arg and arg[0] and arg[0]:match("summary%.lua$") and arg[1] then
  local rows = {}
  local ok, text = pcall(cork.fs.read, arg[1])
  for line in (ok and text or ""):gmatch("[^\n]+") do rows[#rows + 1] = json.decode(line) end
  local cols = { { "metric", "metric" }, { "floor", "floor" }, { "value", "cork" }, { "result", "ratio" },
    { "target", "target" }, { "met", "met" } }
  local w = {}
  for i, c in ipairs(cols) do
    w[i] = #c[2]
    for _, r in ipairs(rows) do w[i] = math.max(w[i], #tostring(r[c[1]])) end
  end
  local function line(get)
    local parts = {}
    for i, c in ipairs(cols) do parts[i] = ("%-" .. w[i] .. "s"):format(get(c, i)) end
    print((table.concat(parts, "  "):gsub("%s+$", "")))
  end
  print("== summary (each ratio measured side by side in this run; " .. (os.getenv("CORK_BENCH_LOAD") or "") .. ")")
  line(function(c) return c[2] end)
  line(function(_, i) return ("-"):rep(w[i]) end)
  for _, r in ipairs(rows) do line(function(c) return tostring(r[c[1]]) end) end
  if #rows == 0 then print("(no rows: every benchmark was skipped or failed)") end
  return 0
end

return M
