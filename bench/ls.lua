-- ls: `cork ls` with 16 running bottles (docker recipe, stand-in images),
-- against its floor: the engine's own listing calls that `cork ls` made
-- (recorded by bench/lib/steps.lua, replayed from this process). The target
-- is a difference, not a ratio: under 100 ms of wall time above the floor.
-- Interleaved runs; medians. smolvm is not installed here (CORK_SMOLVM
-- unset): `cork ls` lists from Docker and the journals.
--   cork script bench/ls.lua [N=20] [BOTTLES=16]
local N = tonumber(arg[1]) or 20
local B = tonumber(arg[2]) or 16
local BIN = os.getenv("CORK_BIN")
local root = os.getenv("CORK_ROOT") or "."
local fs, json = cork.fs, require "cork.json"
local summary = dofile(root .. "/bench/lib/summary.lua")
local replay = dofile(root .. "/bench/lib/replay.lua")
local METRIC = ("cork ls, %d running bottles"):format(B)

local ok_d, d = pcall(function() return cork.docker.connect() end)
if not ok_d or not pcall(d.ping, d) then
  print("SKIP: no Docker engine")
  summary.skip(METRIC, "no Docker engine")
  return 0
end
local standin = require "cork.standin"
local bundle_image, agent_image = standin.bundle_image(d), standin.agent_image(d)

local home = fs.tempdir("cork-bench-ls")
fs.mkdir(home .. "/config/cork/bottles", 448)
fs.write(home .. "/config/cork/bottles/bench.yaml", ([[
agent:
  provider: custom
  image: %s
  command: [sh]
bundle:
  image: %s
]]):format(agent_image, bundle_image))
local env = { XDG_CONFIG_HOME = home .. "/config", XDG_STATE_HOME = home .. "/state", CORK_SMOLVM = false }

local function cork_run(argv)
  local a = { BIN }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local t0 = cork.time()
  local r = cork.proc.run(a, { env = env, timeout = 300 })
  assert(r.status == 0, table.concat(argv, " ") .. " failed: " .. r.stderr)
  return cork.time() - t0, r
end

-- the bottles go, whatever happens below
local s <close> = cork.scope("bench ls")
s:defer(function()
  cork_run({ "-q", "down", "--all" })
  fs.remove(home, { recursive = true, missing_ok = true })
end)
local t0 = cork.time()
for _ = 1, B do cork_run({ "-q", "run", "docker", "--bottle", "bench", "--detach" }) end
print(("%d bottles launched in %.1f s"):format(B, cork.time() - t0))

-- the recording (and warm-up)
local out = home .. "/steps.json"
local _, r = cork_run({ "script", root .. "/bench/lib/steps.lua", out, "ls" })
local rows = select(2, r.stdout:gsub("running", ""))
assert(rows == B, ("cork ls shows %d running bottles, not %d:\n%s"):format(rows, B, r.stdout))
local rec = json.decode(fs.read(out))
local names = {}
for _, c in ipairs(rec.calls) do names[#names + 1] = c.docker end
replay(d, rec.calls, {})

local function median(t) local c = { table.unpack(t) }; table.sort(c); return c[(#c + 1) // 2] end
local cw, fw = {}, {}
for i = 1, N do
  cw[i] = cork_run({ "ls" })
  fw[i] = replay(d, rec.calls, {})
end
local a, b = median(cw), median(fw)
print(("cork ls with %d running bottles, %d interleaved runs, medians"):format(B, N))
print(("  cork ls %7.1f ms   floor %6.1f ms (%s, replayed)   difference %+.1f ms (target < +100 ms)")
  :format(a * 1e3, b * 1e3, table.concat(names, " + "), (a - b) * 1e3))
summary.above(METRIC, "its Docker calls", a, b, 0.100)
return 0
