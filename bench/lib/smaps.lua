-- bench/lib/smaps.lua: where a cork command's resident memory is, by mapping.
--
--   cork script bench/lib/smaps.lua OUT.json COMMAND ARGS...
--
-- Runs `cork COMMAND ARGS...` in this process (cork.cli.main), then reads
-- /proc/self/smaps and /proc/self/status and writes OUT.json:
--   rss_kib, hwm_kib   VmRSS now and VmHWM (the peak) from /proc/self/status
--   lua_kib            the Lua heap (collectgarbage "count") at the end
--   maps               { {name, rss, private}, ... } KiB, biggest first; name
--                      is a file's base name, or [heap], [stack], [anon] ...
-- Read at the end of the command, when every library it loaded is still
-- mapped: what is resident then is the peak less the heap it has freed
-- since (hwm_kib - rss_kib says how much that is).
local out_path = table.remove(arg, 1)
local json = require "cork.json"
local rc = require("cork.cli").main(arg)

local function base(name)
  if name == "" then return "[anon]" end
  return name:match("^%[") and name or name:match("[^/]*$")
end
local by, order, cur = {}, {}, nil
for line in io.lines("/proc/self/smaps") do
  local path = line:match("^%x+%-%x+ %S+ %x+ %S+ %d+%s*(.*)$")
  if path then
    local n = base(path)
    cur = by[n]
    if not cur then cur = { name = n, rss = 0, private = 0 }; by[n] = cur; order[#order + 1] = cur end
  else
    local k, v = line:match("^([%w_]+):%s+(%d+) kB")
    if k == "Rss" then cur.rss = cur.rss + tonumber(v)
    elseif k == "Private_Clean" or k == "Private_Dirty" then cur.private = cur.private + tonumber(v) end
  end
end
table.sort(order, function(a, b) return a.rss > b.rss end)
local status = cork.fs.read("/proc/self/status")
cork.fs.write(out_path, json.encode({
  rss_kib = tonumber(status:match("VmRSS:%s*(%d+)")), hwm_kib = tonumber(status:match("VmHWM:%s*(%d+)")),
  lua_kib = math.floor(collectgarbage("count")), maps = order, rc = rc,
}))
return rc
