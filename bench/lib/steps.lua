-- bench/lib/steps.lua: per-step timings of one cork command, from inside it,
-- and a record of its external calls (the floor a benchmark replays).
--
--   cork script bench/lib/steps.lua OUT.json COMMAND ARGS...
--
-- Runs `cork COMMAND ARGS...` in this process (cork.cli.main) with its
-- external calls wrapped in timers: every cork.docker client method,
-- docker.connect (which pings), every cork.proc.run (smolvm calls, kill),
-- cork.net's alias_add and alias_remove,
-- cork.fs.append (the journal's fsynced lines), cork.fs.remove, the
-- journal's read, cork.ca.mint, cork.sleep, cork.fs.lock. Writes OUT.json:
--   t_start, t_end   cork.time() at this script's first line and when the
--                    command returned: the caller, timing the whole
--                    process, gets exec + runtime start and the exit
--   steps            { {name, n, ms}, ... } in first-call order
--   calls            the command's successful Docker calls, smolvm and
--                    iptables spawns and alias changes, in order, as
--                    bench/lib/replay.lua replays them ({docker = METHOD,
--                    args, ids} / {spawn = argv, opts} / {net = NAME, args})
-- Nested calls count once: time inside a timed call is not timed again.
-- What is left (command wall minus the steps) is Lua: module loading,
-- manifests, plans, JSON.
local t_start = cork.time()
local out_path = table.remove(arg, 1)
local json = require "cork.json"
local smolvm_bin = os.getenv("CORK_SMOLVM")

local steps, order, calls, depth = {}, {}, {}, 0

-- the ids in a call's result (create returns {id}, inspect {Id}): the
-- replay maps them to the ids its own calls get
local function ids_of(res)
  local out = {}
  if type(res) == "table" then
    for _, k in ipairs({ "id", "Id" }) do
      if type(res[k]) == "string" then out[#out + 1] = res[k] end
    end
  end
  return out
end

-- the host ports an inspect shows, by container port (Docker picks them:
-- the replay maps the recorded ones to its own, found in the same order)
local function host_ports(res)
  if math.type(res) == "integer" or (type(res) == "string" and res:match("^%d+$")) then return { tostring(res) } end
  local ports = type(res) == "table" and type(res.NetworkSettings) == "table" and res.NetworkSettings.Ports
  if type(ports) ~= "table" then return nil end
  local keys, out = {}, {}
  for k in pairs(ports) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    for _, b in ipairs(type(ports[k]) == "table" and ports[k] or {}) do out[#out + 1] = b.HostPort end
  end
  return #out > 0 and out or nil
end

local function boxed(pack, from)
  local out = {}
  for i = from, pack.n do out[#out + 1] = { v = pack[i] } end
  return out
end

local function timed(name, fn, record)
  return function(...)
    if depth > 0 then return fn(...) end
    depth = depth + 1
    local t0 = cork.time()
    local res = table.pack(pcall(fn, ...))
    local dt = cork.time() - t0
    depth = depth - 1
    local s = steps[name]
    if not s then s = { name = name, n = 0, ms = 0 }; steps[name] = s; order[#order + 1] = s end
    s.n, s.ms = s.n + 1, s.ms + dt * 1e3
    if not res[1] then error(res[2], 0) end
    if record then
      local c = record(table.pack(...), res[2])
      if c then c.ms = dt * 1e3; calls[#calls + 1] = c end
    end
    return table.unpack(res, 2, res.n)
  end
end

-- the Docker client's methods (shared by every client through its metatable)
local docker = require "cork.docker"
do
  local t0 = cork.time()
  local ok, d = pcall(docker.connect)
  if ok then
    local methods = getmetatable(d).__index
    for k, f in pairs(methods) do
      if type(f) == "function" and k ~= "close" then
        methods[k] = timed("docker " .. k, f, function(a, res)
          return { docker = k, args = boxed(a, 2), ids = ids_of(res), ports = host_ports(res) }
        end)
      end
    end
    d:close()
  end
  -- the probe connection above is this script's, not the command's
  t_start = t_start + (cork.time() - t0)
end
docker.connect = timed("docker connect (+ping)", docker.connect, function()
  return { docker = "ping", args = {}, ids = {} }
end)
local proc_run = cork.proc.run
local spawn_timers = {}
cork.proc.run = function(argv, o)
  local name = "spawn " .. tostring(argv[1]):match("[^/]*$")
  if argv[1] == smolvm_bin then name = name .. " " .. tostring(argv[2]) end
  spawn_timers[name] = spawn_timers[name] or timed(name, proc_run, function(a)
    -- smolvm, and iptables (a smolmachines bottle's alias guard)
    if a[1][1] ~= smolvm_bin and a[1][1] ~= "iptables" then return nil end
    local o2 = a[2] or {}
    return { spawn = a[1], opts = { env = o2.env, stdin = o2.stdin, timeout = o2.timeout } }
  end)
  return spawn_timers[name](argv, o)
end
-- a smolmachines bottle's alias on lo (netlink): its bundle publishes on it
for _, k in ipairs({ "alias_add", "alias_remove" }) do
  cork.net[k] = timed("net " .. k, cork.net[k], function(a) return { net = k, args = boxed(a, 1) } end)
end
cork.fs.append = timed("journal append (fsync)", cork.fs.append)
cork.fs.remove = timed("fs.remove", cork.fs.remove)
local journal = require "cork.journal"
journal.read = timed("journal read", journal.read)
local ca = require "cork.ca"
ca.mint = timed("ca.mint", ca.mint)
-- sleeps: a launch should have none (it polls what it waits for)
cork.core.sleep = timed("sleep", cork.core.sleep)
cork.sleep = cork.core.sleep
cork.fs.lock = timed("fs.lock", cork.fs.lock)

local rc = require("cork.cli").main(arg)
local t_end = cork.time()
cork.fs.write(out_path, json.encode({ t_start = t_start, t_end = t_end, steps = order, calls = calls, rc = rc }))
return rc
