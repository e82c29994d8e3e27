-- launch: the docker recipe's launch-to-ready and teardown, against the
-- floor: the same Docker operations issued back to back through cork.docker
-- by a minimal script (networks, bundle, agent, the seal container, three
-- execs; then removals). Interleaved runs; medians; ratios. The images are
-- cork.standin's (built once per engine).
local N = tonumber(arg[1]) or 5
local BIN = os.getenv("CORK_BIN")
local fs = cork.fs

local ok_d, d = pcall(function() return cork.docker.connect() end)
if not ok_d or not pcall(d.ping, d) then print("SKIP: no Docker engine"); return 0 end
local ok_s, standin = pcall(require, "cork.standin")
if not ok_s then print("SKIP: cork.standin not available: " .. tostring(standin)); return 0 end
local bundle_image = standin.bundle_image(d)
local agent_image = standin.agent_image(d)

local home = fs.tempdir("cork-bench-launch")
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
local env = { XDG_CONFIG_HOME = home .. "/config", XDG_STATE_HOME = home .. "/state", CORK_BENCH_TOKEN = "bench-token" }

local function cpu_self()
  local st = fs.read("/proc/self/stat"):match("%) (.*)")
  local f = {}
  for x in st:gmatch("%S+") do f[#f + 1] = x end
  return (tonumber(f[12]) + tonumber(f[13])) / 100    -- utime + stime, in ticks of 10 ms
end

-- one cork launch + down, timed; CPU of the cork processes from `times`
local function cork_cycle()
  local t0 = cork.time()
  local r = cork.proc.run({ "sh", "-c", '"$0" -q run docker --bottle bench --detach && times', BIN },
    { env = env, timeout = 120 })
  local t1 = cork.time()
  assert(r.status == 0, "launch failed: " .. r.stderr)
  local slug = r.stdout:match("^(%S+)\n")   -- --detach prints the slug
  local r2 = cork.proc.run({ "sh", "-c", '"$0" -q down "$1" && times', BIN, slug }, { env = env, timeout = 120 })
  local t2 = cork.time()
  assert(r2.status == 0, "down failed: " .. r2.stderr)
  local function child_cpu(out)
    local u, us, s, ss = out:match("\n(%d+)m([%d.]+)s (%d+)m([%d.]+)s%s*$")
    return (tonumber(u) * 60 + tonumber(us)) + (tonumber(s) * 60 + tonumber(ss))
  end
  return t1 - t0, t2 - t1, child_cpu(r.stdout) + child_cpu(r2.stdout)
end

-- the floor: the same operations, back to back, no recipe
local function floor_cycle(i)
  local c0 = cpu_self()
  local t0 = cork.time()
  d:image_inspect(bundle_image); d:image_inspect(agent_image)
  d:networks(); d:networks()
  local n1, n2 = "cork-floor-" .. i .. "-net", "cork-floor-" .. i .. "-int"
  d:network_create({ name = n1, subnet = "10.231." .. i .. ".0/24", gateway = "10.231." .. i .. ".1" })
  d:network_create({ name = n2, subnet = "10.232." .. i .. ".0/24", gateway = "10.232." .. i .. ".1", internal = true })
  d:container_create({ name = "cork-floor-" .. i .. "-bundle", image = bundle_image,
    env = { CORK_DAEMONS = "pipelock,egress", EGRESS_TOKEN_1 = "x" },
    networks = { { name = n1, ip = "10.231." .. i .. ".2" }, { name = n2, ip = "10.232." .. i .. ".2" } } })
  d:container_start("cork-floor-" .. i .. "-bundle")
  d:container_create({ name = "cork-floor-" .. i .. "-agent", image = agent_image,
    entrypoint = { "/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done" },
    cmd = { "x" }, networks = { { name = n2 } } })
  d:container_start("cork-floor-" .. i .. "-agent")
  -- the seal: a short-lived container in the agent's network namespace
  -- drops its default route (as the docker recipe's seal step does)
  local ainfo = d:container_inspect("cork-floor-" .. i .. "-agent")
  local seal = "cork-floor-" .. i .. "-seal"
  d:request("POST", "/containers/create", { query = { name = seal }, body = {
    Image = bundle_image, User = "0",
    Entrypoint = { "/bin/sh", "-c", 'ip route del default 2>/dev/null; ip route add prohibit "$0/32"', "10.232." .. i .. ".1" },
    HostConfig = { NetworkMode = "container:" .. ainfo.Id, CapDrop = { "ALL" }, CapAdd = { "NET_ADMIN" },
      SecurityOpt = { "no-new-privileges" } } } })
  d:container_start(seal)
  d:container_wait(seal)
  d:container_remove(seal)
  d:exec("cork-floor-" .. i .. "-agent", { "sh", "-c", "mkdir -p /home/agent" })
  d:exec("cork-floor-" .. i .. "-agent", { "sh", "-c", "cat > /tmp/ca.crt" }, { stdin = "x" })
  d:exec("cork-floor-" .. i .. "-agent", { "sh", "-c", "exit 0" })
  local t1 = cork.time()
  d:container_remove("cork-floor-" .. i .. "-agent", { force = true })
  d:container_remove("cork-floor-" .. i .. "-bundle", { force = true })
  d:network_remove(n2); d:network_remove(n1)
  local t2 = cork.time()
  return t1 - t0, t2 - t1, cpu_self() - c0
end

local function median(t) table.sort(t); return t[(#t + 1) // 2] end
local cu, cd, cc, fu, fd, fc = {}, {}, {}, {}, {}, {}
cork_cycle()   -- warm up
for i = 1, N do
  cu[i], cd[i], cc[i] = cork_cycle()
  fu[i], fd[i], fc[i] = floor_cycle(i)
end
fs.remove(home, { recursive = true })
local a, b, c = median(cu), median(cd), median(cc)
local x, y, z = median(fu), median(fd), median(fc)
print(("docker recipe, %d interleaved cycles, medians"):format(N))
print(("  launch to ready  cork %6.0f ms   floor %6.0f ms   ratio %.2f"):format(a * 1e3, x * 1e3, a / x))
print(("  teardown         cork %6.0f ms   floor %6.0f ms   ratio %.2f"):format(b * 1e3, y * 1e3, b / y))
print(("  CPU (cork procs) cork %6.0f ms   floor %6.0f ms   (floor: one process, no CA minting, no exec of cork)"):format(c * 1e3, z * 1e3))
