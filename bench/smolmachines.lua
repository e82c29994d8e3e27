-- smolmachines: the smolmachines recipe against the stand-in smolvm
-- (tests/fakes/smolvm, whose guests are chroots), launch to ready
-- (`cork run smolmachines --detach`) and teardown (`cork down SLUG`), each
-- against its floor: the same stand-in calls and Docker calls that cork
-- made (recorded by bench/lib/steps.lua), issued back to back from this
-- process (bench/lib/replay.lua). Interleaved cycles; medians; ratios. Also
-- the sleeps a traced launch and teardown took (there should be none: every
-- wait polls what it waits for).
--   cork script bench/smolmachines.lua [N=5]
local N = tonumber(arg[1]) or 5
local BIN = os.getenv("CORK_BIN")
local root = os.getenv("CORK_ROOT") or "."
local fs, json = cork.fs, require "cork.json"
local summary = dofile(root .. "/bench/lib/summary.lua")
local replay = dofile(root .. "/bench/lib/replay.lua")
local METRIC = "smolmachines recipe (stand-in)"

local function skip(why)
  print("SKIP: " .. why)
  summary.skip(METRIC, why)
  return 0
end
local ok_d, d = pcall(function() return cork.docker.connect() end)
if not ok_d or not pcall(d.ping, d) then return skip("no Docker engine") end
if cork.core.uid() ~= 0 then return skip("the stand-in smolvm's guests are chroots: needs root") end
if not fs.exists("/bin/busybox") then return skip("no /bin/busybox (Debian package busybox-static)") end
local standin = require "cork.standin"
local bundle_image, agent_image = standin.bundle_image(d), standin.agent_image(d)

local home = fs.tempdir("cork-bench-smol")
local s <close> = cork.scope("bench smolmachines")
s:defer(function() fs.remove(home, { recursive = true, missing_ok = true }) end)
fs.mkdir(home .. "/config/cork/bottles", 448)
fs.mkdir(home .. "/smolvm", 448)
fs.write(home .. "/config/cork/bottles/bench.yaml", ([[
agent:
  provider: custom
  image: %s
  command: [sh]
bundle:
  image: %s
egress:
  routes:
    - { host: api.example.invalid, auth: bearer, token_ref: CORK_BENCH_TOKEN }
]]):format(agent_image, bundle_image))
local artifact = home .. "/agent.smolmachine"
fs.write(artifact, "user=agent\ncommands=git\n")
local SMOLVM = root .. "/tests/fakes/smolvm"
local env = { XDG_CONFIG_HOME = home .. "/config", XDG_STATE_HOME = home .. "/state", CORK_BENCH_TOKEN = "bench-token",
  CORK_SMOLVM = SMOLVM, FAKE_SMOLVM_STATE = home .. "/smolvm" }
local UP = { "-q", "run", "smolmachines", "--bottle", "bench", "--from", artifact, "--detach" }

local function cork_run(argv)
  local a = { BIN }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local t0 = cork.time()
  local r = cork.proc.run(a, { env = env, timeout = 300 })
  local dt = cork.time() - t0
  assert(r.status == 0, table.concat(argv, " ") .. " failed: " .. r.stderr)
  return dt, r
end
local function traced(argv)
  local out = home .. "/steps.json"
  local a = { "-q", "script", root .. "/bench/lib/steps.lua", out }
  for _, x in ipairs(argv) do if x ~= "-q" then a[#a + 1] = x end end
  local _, r = cork_run(a)
  local st = json.decode(fs.read(out))
  st.stdout = r.stdout
  return st
end

-- the recording (and warm-up); the state dir is copied before the down
-- removes it (the bundle's mounts name files in it)
local rec_up = traced(UP)
local slug = rec_up.stdout:match("^(%S+)\n")
local state_dir = home .. "/state/cork/" .. slug
local state_copy = home .. "/state-copy"
assert(cork.proc.run({ "cp", "-a", state_dir, state_copy }).status == 0, "cannot copy " .. state_dir)
local rec_down = traced({ "down", slug })
if os.getenv("CORK_BENCH_DUMP") then cork.fs.write(os.getenv("CORK_BENCH_DUMP"), json.encode({ up = rec_up, down = rec_down })) end
local subst = { [state_dir] = state_copy }
-- the replayed spawns get the same env as cork's (the stand-in's state dir)
local function with_env(calls)
  for _, c in ipairs(calls) do
    if c.spawn then
      local e = {}
      for k, v in pairs(env) do e[k] = v end
      for k, v in pairs(c.opts.env or {}) do e[k] = v end
      c.opts.env = e
    end
  end
  return calls
end
with_env(rec_up.calls)
with_env(rec_down.calls)
local function count(calls)
  local nd, ns = 0, 0
  for _, c in ipairs(calls) do if c.spawn then ns = ns + 1 else nd = nd + 1 end end
  return nd, ns
end
local function floor_cycle()
  local ids, ports = {}, {}
  local up = replay(d, rec_up.calls, { ids = ids, subst = subst, ports = ports })
  local down = replay(d, rec_down.calls, { ids = ids, subst = subst, ports = ports })
  return up, down
end
floor_cycle()

local function median(t) local c = { table.unpack(t) }; table.sort(c); return c[(#c + 1) // 2] end
local cu, cd, fu, fd = {}, {}, {}, {}
for i = 1, N do
  local up, r = cork_run(UP)
  cu[i] = up
  cd[i] = cork_run({ "-q", "down", r.stdout:match("^(%S+)\n") })
  fu[i], fd[i] = floor_cycle()
end
local a, b, x, y = median(cu), median(cd), median(fu), median(fd)
local ud, us = count(rec_up.calls)
local dd, ds = count(rec_down.calls)
print(("smolmachines recipe against the stand-in, %d interleaved cycles, medians; floor: cork's own calls "
  .. "replayed back to back (launch %d Docker + %d smolvm, teardown %d + %d)"):format(N, ud, us, dd, ds))
print(("  launch to ready  cork %6.0f ms   floor %6.0f ms   ratio %.3f   (+%.0f ms)"):format(a * 1e3, x * 1e3, a / x,
  (a - x) * 1e3))
print(("  teardown         cork %6.0f ms   floor %6.0f ms   ratio %.3f   (+%.0f ms)"):format(b * 1e3, y * 1e3, b / y,
  (b - y) * 1e3))
for _, rec in ipairs({ { "launch", rec_up }, { "teardown", rec_down } }) do
  local sl = { n = 0, ms = 0 }
  for _, st in ipairs(rec[2].steps) do if st.name == "sleep" then sl = st end end
  print(("  sleeps in a traced %s: %d (%.0f ms)"):format(rec[1], sl.n, sl.ms))
end
summary.ratio("smolmachines (stand-in): launch to ready", "its stand-in + Docker calls", a, x, nil)
summary.ratio("smolmachines (stand-in): teardown", "its stand-in + Docker calls", b, y, nil)
return 0
