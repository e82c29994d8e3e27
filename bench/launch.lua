-- launch: the docker recipe's launch-to-ready (`cork run docker --detach`)
-- and teardown (`cork down SLUG`), each against its floor: the very Docker
-- calls that cork made (recorded once by bench/lib/steps.lua, then replayed
-- back to back from this process by bench/lib/replay.lua, with the same
-- names, bodies and execs). Interleaved cycles; medians; ratios. Also the
-- CPU and the peak RSS of the cork processes (cork.proc.run's rusage), and
-- where launch's and teardown's time goes, step by step (traced runs, apart from the
-- timed ones). The images are cork.standin's (built once per engine).
--   cork script bench/launch.lua [N=9] [PROFILE_RUNS=3]
-- (9 cycles: with 5, the median of the engine's own time for the same calls
-- moved by 3% between runs, more than half of what is cork's in a teardown)
local N = tonumber(arg[1]) or 9
local P = tonumber(arg[2]) or 3
local BIN = os.getenv("CORK_BIN")
local root = os.getenv("CORK_ROOT") or "."
local fs, json = cork.fs, require "cork.json"
local summary = dofile(root .. "/bench/lib/summary.lua")
local replay = dofile(root .. "/bench/lib/replay.lua")

local ok_d, d = pcall(function() return cork.docker.connect() end)
if not ok_d or not pcall(d.ping, d) then
  print("SKIP: no Docker engine")
  summary.skip("docker recipe", "no Docker engine")
  return 0
end
local ok_s, standin = pcall(require, "cork.standin")
if not ok_s then print("SKIP: cork.standin not available: " .. tostring(standin)); return 0 end
local bundle_image = standin.bundle_image(d)
local agent_image = standin.agent_image(d)

local home = fs.tempdir("cork-bench-launch")
local s <close> = cork.scope("bench launch")
s:defer(function() fs.remove(home, { recursive = true, missing_ok = true }) end)
fs.mkdir(home .. "/config/cork/bottles", 448)
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
local env = { XDG_CONFIG_HOME = home .. "/config", XDG_STATE_HOME = home .. "/state", CORK_BENCH_TOKEN = "bench-token",
  CORK_SMOLVM = false }
local UP = { "-q", "run", "docker", "--bottle", "bench", "--detach" }

local function cork_run(argv)
  local a = { BIN }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local t0 = cork.time()
  local r = cork.proc.run(a, { env = env, timeout = 120 })
  local dt = cork.time() - t0
  assert(r.status == 0, table.concat(argv, " ") .. " failed: " .. r.stderr)
  return dt, r
end

-- a traced run: bench/lib/steps.lua around the command; its JSON, plus the
-- process's start (exec, loader, runtime, until the script's first line)
-- and end (closing the Lua state, exit) from the wall time around it
local function traced(argv)
  local out = home .. "/steps.json"
  local a = { "-q", "script", root .. "/bench/lib/steps.lua", out }
  for _, x in ipairs(argv) do if x ~= "-q" then a[#a + 1] = x end end
  local t0 = cork.time()
  local _, r = cork_run(a)
  local t1 = cork.time()
  local st = json.decode(fs.read(out))
  st.wall, st.start, st.exit = t1 - t0, st.t_start - t0, t1 - st.t_end
  st.stdout = r.stdout
  return st
end

-- the recording (also the warm-up): one traced launch and down; the state
-- dir is copied before the down removes it (the bundle's mounts name files
-- in it, and the replayed creates need them)
local rec_up = traced(UP)
local slug = rec_up.stdout:match("^(%S+)\n")   -- --detach prints the slug
local state_dir = home .. "/state/cork/" .. slug
local state_copy = home .. "/state-copy"
assert(cork.proc.run({ "cp", "-a", state_dir, state_copy }).status == 0, "cannot copy " .. state_dir)
local rec_down = traced({ "down", slug })
local subst = { [state_dir] = state_copy }
local function floor_cycle()
  local ids = {}
  local c0 = os.clock()
  local up, per_up = replay(d, rec_up.calls, { ids = ids, subst = subst })
  local down, per = replay(d, rec_down.calls, { ids = ids, subst = subst })
  return up, down, os.clock() - c0, per, per_up
end
floor_cycle()   -- warm up the replay too

local function median(t) local c = { table.unpack(t) }; table.sort(c); return c[(#c + 1) // 2] end
local cu, cd, cc, fu, fd, fc, rss = {}, {}, {}, {}, {}, {}, {}
local floor_steps, floor_up_steps = {}, {}
local function keep(into, per, i)
  for k, p in ipairs(per) do
    into[k] = into[k] or { name = p.name, ms = {} }
    into[k].ms[i] = p.ms
  end
end
for i = 1, N do
  local up, r = cork_run(UP)
  local sl = r.stdout:match("^(%S+)\n")
  local down, r2 = cork_run({ "-q", "down", sl })
  cu[i], cd[i] = up, down
  cc[i] = r.rusage.user + r.rusage.system + r2.rusage.user + r2.rusage.system
  rss[i] = r.rusage.max_rss
  local per, per_up
  fu[i], fd[i], fc[i], per, per_up = floor_cycle()
  keep(floor_steps, per, i)
  keep(floor_up_steps, per_up, i)
end
local a, b, c = median(cu), median(cd), median(cc)
local x, y, z = median(fu), median(fd), median(fc)
print(("docker recipe, %d interleaved cycles, medians; floor: cork's own %d + %d Docker calls, replayed back to back")
  :format(N, #rec_up.calls, #rec_down.calls))
print(("  launch to ready  cork %6.0f ms   floor %6.0f ms   ratio %.3f   (+%.0f ms)"):format(a * 1e3, x * 1e3, a / x,
  (a - x) * 1e3))
print(("  teardown         cork %6.0f ms   floor %6.0f ms   ratio %.3f   (+%.0f ms)"):format(b * 1e3, y * 1e3, b / y,
  (b - y) * 1e3))
print(("  CPU              cork %6.0f ms   floor %6.0f ms   (cork: both processes, rusage; floor: this process)")
  :format(c * 1e3, z * 1e3))
table.sort(rss)
print(("  peak RSS of `cork run docker --detach`: median %.1f MiB, max %.1f MiB"):format(
  rss[(#rss + 1) // 2] / 1024, rss[#rss] / 1024))
summary.ratio("docker recipe: launch to ready", "its Docker calls", a, x, 1.05)
summary.ratio("docker recipe: teardown", "its Docker calls", b, y, 1.05)
summary.value("peak RSS, cork run docker --detach", rss[#rss] * 1024, 10 * 2 ^ 20)

-- ---- where the peak RSS is ---------------------------------------------------
-- One more launch through bench/lib/smaps.lua: /proc/self/smaps at the end
-- of the command (where its VmHWM is reached: it says so when not), by
-- mapping, in groups.
do
  local out = home .. "/smaps.json"
  local a = { "-q", "script", root .. "/bench/lib/smaps.lua", out }
  for _, x in ipairs(UP) do if x ~= "-q" then a[#a + 1] = x end end
  local _, r = cork_run(a)
  local m = json.decode(fs.read(out))
  cork_run({ "-q", "down", r.stdout:match("^(%S+)\n") })
  local groups = {
    { "libcrypto, libssl (OpenSSL)", "^libcrypto%.so", "^libssl%.so" },
    { "libc, libm, the loader", "^libc%.so", "^libm%.so", "^ld%-linux" },
    { "cork, liblua, libyaml, lua-cjson", "^cork$", "^liblua5", "^libyaml" },
    { "heap (Lua and malloc), stack, anonymous", "^%[" },
  }
  local sums, other = {}, { n = 0, kib = 0 }
  for i = 1, #groups do sums[i] = 0 end
  for _, e in ipairs(m.maps) do
    local g
    for i, grp in ipairs(groups) do
      for k = 2, #grp do if e.name:find(grp[k]) then g = i; break end end
      if g then break end
    end
    if g then sums[g] = sums[g] + e.rss else other.n, other.kib = other.n + 1, other.kib + e.rss end
  end
  print(("peak RSS of one `cork run docker --detach`, by mapping (VmHWM %d KiB, VmRSS at the end %d KiB, "
    .. "Lua heap %d KiB)"):format(m.hwm_kib, m.rss_kib, m.lua_kib))
  local curl_what = other.n > 1 and ("libcurl and the %d libraries only it brings in"):format(other.n - 1)
    or "libcurl (no library of its own besides)"
  print(("  %-52s %6d KiB"):format(curl_what, other.kib))
  for i, grp in ipairs(groups) do print(("  %-52s %6d KiB"):format(grp[1], sums[i])) end
  print("  the largest mappings (KiB resident, of which private):")
  for i = 1, math.min(12, #m.maps) do
    print(("    %6d %6d  %s"):format(m.maps[i].rss, m.maps[i].private, m.maps[i].name))
  end
end

-- ---- where launch's and teardown's time goes ---------------------------------
-- P traced launch + down cycles (not the timed ones above): each command's
-- steps (medians), beside its floor's calls (per name: the sum in each timed
-- cycle, medians over the cycles).
local function profile() return { list = {} } end
local function add(prof, name, ms)
  for _, p in ipairs(prof.list) do if p.name == name then p.ms[#p.ms + 1] = ms; return end end
  prof.list[#prof.list + 1] = { name = name, ms = { ms } }
end
local function account(prof, t, what)
  add(prof, "process start (exec, loader, runtime)", t.start * 1e3)
  local timed_ms = 0
  for _, st in ipairs(t.steps) do
    add(prof, ("%s (x%d)"):format(st.name, st.n), st.ms)
    timed_ms = timed_ms + st.ms
  end
  add(prof, "Lua (" .. what .. ")", (t.t_end - t.t_start) * 1e3 - timed_ms)
  add(prof, "process exit", t.exit * 1e3)
  add(prof, "total (traced)", t.wall * 1e3)
  -- what is cork's own: the wall time less the engine's (its Docker calls),
  -- which at a high load varies more from run to run than all the rest
  local engine_ms = 0
  for _, st in ipairs(t.steps) do
    if st.name:find("^docker ") then engine_ms = engine_ms + st.ms end
  end
  add(prof, "cork's own (total less its Docker calls)", t.wall * 1e3 - engine_ms)
end
local prof_up, prof_down = profile(), profile()
for _ = 1, P do
  local t = traced(UP)
  local sl = t.stdout:match("^(%S+)\n")
  local dn = traced({ "down", sl })
  account(prof_up, t, "modules, manifests, plan, journal, logic")
  account(prof_down, dn, "modules, journal, logic")
end
local function show(title, prof, fsteps)
  print(title)
  for _, p in ipairs(prof.list) do print(("  cork   %-44s %8.1f ms"):format(p.name, median(p.ms))) end
  local names, by = {}, {}
  for _, p in ipairs(fsteps) do
    if not by[p.name] then names[#names + 1] = p.name; by[p.name] = { n = 0, ms = {} } end
    local b = by[p.name]
    b.n = b.n + 1
    for i = 1, N do b.ms[i] = (b.ms[i] or 0) + (p.ms[i] or 0) end
  end
  local ftotal = 0
  for _, name in ipairs(names) do
    local m = median(by[name].ms)
    ftotal = ftotal + m
    print(("  floor  %-44s %8.1f ms"):format(("docker %s (x%d)"):format(name, by[name].n), m))
  end
  print(("  floor  %-44s %8.1f ms"):format("total", ftotal))
  local own
  for _, p in ipairs(prof.list) do if p.name:find("^cork's own") then own = median(p.ms) end end
  return own, ftotal
end
local own_up, f_up = show(("launch, step by step: `cork run docker --detach` (%d traced runs, medians) and its floor (%d timed cycles)")
  :format(P, N), prof_up, floor_up_steps)
local own_dn, f_dn = show(("teardown, step by step: `cork down` (%d traced runs, medians) and its floor (%d timed cycles)"):format(P, N),
  prof_down, floor_steps)
-- the same targets through what is cork's own (the traced runs' wall time
-- less their Docker calls) over the floor: the engine's time for the same
-- calls varies from run to run by more than all of cork's (docs/performance.md)
summary.ratio("docker recipe: launch, floor + cork's own", "its Docker calls", (f_up + own_up) / 1e3, f_up / 1e3, 1.05)
summary.ratio("docker recipe: teardown, floor + cork's own", "its Docker calls", (f_dn + own_dn) / 1e3, f_dn / 1e3, 1.05)
return 0
