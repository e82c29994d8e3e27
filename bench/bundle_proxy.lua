-- bundle_proxy: what the real bundle (cork-bundle:latest) costs per request.
-- The same request to an upstream container of this benchmark's own, made
-- in one run three ways, interleaved: directly, through the filter
-- (pipelock's place: allowlist, DLP, TLS interception) and through egress
-- (a route: TLS interception, credential injection, then the filter, which
-- splices it). Each request is a fresh curl (a new connection, as an agent's
-- CLI call); latency is curl's own time_total (median and p90), and the
-- bundle's CPU per request comes from the container's cgroup (Engine API
-- stats) before and after each way's batch. HTTPS and plain HTTP.
--   cork script bench/bundle_proxy.lua [N=30]
-- Needs root and debootstrap (the bundle is built --from-apt, cached under
-- build/bundle-cache) and curl; says SKIP otherwise.
local N = tonumber(arg and arg[1]) or 30
local fs, proc = cork.fs, cork.proc
local root = os.getenv("CORK_ROOT") or "."
local ok_d, d = pcall(function() return cork.docker.connect() end)
if not ok_d then print("SKIP: no Docker engine: " .. tostring(d)); return 0 end
if cork.core.uid() ~= 0 or not fs.exists("/usr/sbin/debootstrap") or not fs.exists("/usr/bin/curl") then
  print("SKIP: bundle_proxy needs root, debootstrap and curl (the bundle is built --from-apt)"); return 0
end
local bundle = require "cork.bundle"
local bottle = require "cork.bottle"
local launch = require "cork.launch"
local journal = require "cork.journal"
local built = bundle.from_apt(d, { cache = os.getenv("CORK_BUNDLE_CACHE") or (root .. "/build/bundle-cache") })

local s <close> = cork.scope("bench bundle_proxy")
local dir = fs.tempdir("cork-bench-bundle")
s:defer(fs.remove, dir, { recursive = true, missing_ok = true })
local labels = { ["cork.bench"] = tostring(cork.core.pid()) }
local ca = require "cork.ca"
local upca = ca.mint({ dir = dir .. "/ca", name = "ca" })
local leaf = ca.issue({ ca = upca, dir = dir .. "/ca", name = "leaf", dns = { "api.bench", "open.bench" } })
proc.run({ "chmod", "-R", "a+rX", dir })
fs.write(dir .. "/upstream.py", fs.read(root .. "/tests/fixtures/bundle/upstream.py"))
local net = "cork-bench-up-" .. cork.core.pid()
s:defer(function() pcall(d.network_remove, d, net) end)
d:network_create({ name = net, labels = labels })
local up = "cork-bench-upstream-" .. cork.core.pid()
s:defer(function() pcall(d.container_remove, d, up, { force = true }) end)
d:container_create({ name = up, image = built.image, labels = labels, networks = { net },
  cmd = { "python3", "/srv/upstream.py", "/srv/leaf.pem", "/srv/leaf-key.pem" },
  mounts = { { source = dir .. "/upstream.py", target = "/srv/upstream.py" },
    { source = leaf.cert, target = "/srv/leaf.pem" }, { source = leaf.key, target = "/srv/leaf-key.pem" } } })
d:container_start(up)
local ip = d:container_inspect(up).NetworkSettings.Networks[net].IPAddress
local subnet = d:network_inspect(net).IPAM.Config[1].Subnet

local BOTTLE = ([[
agent: { provider: custom, image: unused, command: [sh] }
egress:
  routes:
    - { host: api.bench, auth: bearer, token_ref: BENCH_TOKEN }
allowlist: [open.bench]
bundle:
  extra_hosts: ["api.bench:%s", "open.bench:%s"]
  extra_ca: %s
  ip_allowlist: ["%s"]
]]):format(ip, ip, upca.cert, subnet)
local ctx = launch.prepare({ inline_bottle = bottle.inline(BOTTLE, "bench"), bundle_image = built.image,
  env = { BENCH_TOKEN = "bench-token-value-0123456789" } }, "docker")
local p = ctx.plan
p.bundle.publish = { "pipelock", "egress" }
local j = journal.open(p.slug, { backend = "docker", bottle = "bench" })
s:defer(journal.finish, p.slug)
launch.network(s, j, ctx)
launch.cas_and_configs(ctx)
launch.bundle(s, j, ctx, { host_ip = "127.0.0.1", networks = { { name = p.names.network, ip = p.bundle.ip }, { name = net } } })
local B = p.names.bundle
local pport = d:host_port(B, 8888, "127.0.0.1")
local eport = d:host_port(B, 9099, "127.0.0.1")

local function curl(args)
  local argv = { "curl", "-s", "-o", "/dev/null", "--noproxy", "", "-w", "%{http_code} %{time_total}", "-m", "30" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = proc.run(argv, { timeout = 40 })
  local code, t = r.stdout:match("(%d+) ([%d.]+)")
  return tonumber(code), tonumber(t)
end
local WAYS = {
  { name = "https direct", args = { "--cacert", upca.cert, "--resolve", "open.bench:443:" .. ip, "https://open.bench/x" } },
  { name = "https via the filter", args = { "--cacert", p.proxy_plan.ca.cert, "-x", "http://127.0.0.1:" .. pport, "https://open.bench/x" } },
  { name = "https via egress (route)", args = { "--cacert", p.egress_plan.ca.cert, "-x", "http://127.0.0.1:" .. eport, "https://api.bench/x" } },
  { name = "http direct", args = { "http://" .. ip .. "/x" } },
  { name = "http via the filter", args = { "-x", "http://127.0.0.1:" .. pport, "http://open.bench/x" } },
  { name = "http via egress (route)", args = { "-x", "http://127.0.0.1:" .. eport, "http://api.bench/x" } },
}
-- warm up (the daemons start in seconds)
local deadline = cork.time() + 120
for _, w in ipairs(WAYS) do
  repeat local code = curl(w.args) until code == 200 or cork.time() > deadline
  if cork.time() > deadline then print("FAIL: " .. w.name .. " does not answer 200"); return 1 end
end
local function bundle_cpu()
  local st = d:request("GET", "/containers/" .. B .. "/stats", { query = { stream = "false" } }).body
  return (st.cpu_stats and st.cpu_stats.cpu_usage and st.cpu_stats.cpu_usage.total_usage or 0) / 1e9
end
local times, cpu = {}, {}
for _, w in ipairs(WAYS) do times[w.name], cpu[w.name] = {}, 0 end
local BATCH = 5
for round = 1, math.ceil(N / BATCH) do
  for _, w in ipairs(WAYS) do
    local c0 = bundle_cpu()
    for _ = 1, BATCH do
      local code, t = curl(w.args)
      if code ~= 200 then print(("FAIL: %s answered %s"):format(w.name, tostring(code))); return 1 end
      local list = times[w.name]
      list[#list + 1] = t
    end
    cpu[w.name] = cpu[w.name] + (bundle_cpu() - c0)
  end
  _ = round
end
local function q(list, f)
  local c = {}
  for i, v in ipairs(list) do c[i] = v end
  table.sort(c)
  return c[math.max(1, math.ceil(#c * f))]
end
print(("bundle_proxy: %d requests each way, each a new curl connection; bundle %s"):format(N, built.version))
print(("%-26s %10s %10s %14s %10s"):format("way", "median ms", "p90 ms", "bundle CPU ms", "x direct"))
local base = {}
for _, w in ipairs(WAYS) do
  local med = q(times[w.name], 0.5) * 1000
  local kind = w.name:match("^(%a+)")
  if w.name:find("direct") then base[kind] = med end
  print(("%-26s %10.1f %10.1f %14.1f %10.2f"):format(w.name, med, q(times[w.name], 0.9) * 1000,
    cpu[w.name] * 1000 / #times[w.name], med / base[kind]))
end
return 0
