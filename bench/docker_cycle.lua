-- docker_cycle: one bundle-shaped cycle on the same engine, three ways:
-- through cork.docker (in this process), as `curl --unix-socket` calls, and
-- as `docker` CLI calls. The cycle: network create, container create with
-- two ports published on 127.0.0.17 with an empty HostPort, start, inspect,
-- remove -f, network remove. Interleaved runs; wall time per cycle (median)
-- and CPU per cycle (totals / N): cork's own process (os.clock), the curl or
-- docker processes (bash `times`, children), and the engine's (dockerd and
-- its containerd, from /proc). Ratios are cork / the other.
--   cork script bench/docker_cycle.lua [N=10]
local N = tonumber(arg and arg[1]) or 10
local fs, proc, json = cork.fs, cork.proc, require "cork.json"
local root = os.getenv("CORK_ROOT") or "."
local summary = dofile(root .. "/bench/lib/summary.lua")
local host = os.getenv("DOCKER_HOST") or ""
local sock = host:match("^unix://(.+)$")
if not sock then print("SKIP: docker_cycle needs DOCKER_HOST=unix://... (bench/run-all starts a private engine)"); return 0 end
local ok_d, d = pcall(function() return cork.docker.connect() end)
if not ok_d then print("SKIP: no Docker engine: " .. tostring(d)); return 0 end
local DOCKER = fs.exists("/usr/bin/docker") and "/usr/bin/docker" or "docker"   -- Debian's docker.io CLI
local have_cli = proc.run({ "sh", "-c", 'command -v "$0" >/dev/null', DOCKER }).status == 0
local have_curl = proc.run({ "sh", "-c", "command -v curl >/dev/null" }).status == 0
local r = proc.run({ root .. "/tests/lib/mkimage.sh", "cork-test-busybox:latest" })
assert(r.status == 0, "mkimage.sh: " .. r.stderr)
local IMG = "cork-test-busybox:latest"
local IP = "127.0.0.17"
local TAG = "cork-bench-" .. cork.core.pid()
local LABEL = "cork.bench=" .. cork.core.pid()
local api = d:api_version()

-- ---- the engine's CPU (dockerd + its children, e.g. containerd) ----------------
local dockerd_pid
do
  local dir = os.getenv("CORK_DOCKERD_DIR")
  if dir and fs.exists(dir .. "/dockerd.pid") then dockerd_pid = tonumber(fs.read(dir .. "/dockerd.pid")) end
end
local TICK = 0.01
local function stat_cpu(pid)
  local ok, st = pcall(fs.read, "/proc/" .. pid .. "/stat")
  if not ok then return 0 end
  local f = {}
  for x in st:match("%) (.*)"):gmatch("%S+") do f[#f + 1] = x end
  return (tonumber(f[12]) + tonumber(f[13])) * TICK       -- utime + stime
end
local function engine_cpu()
  if not dockerd_pid then return 0 end
  local t = stat_cpu(dockerd_pid)
  local ok, kids = pcall(fs.read, "/proc/" .. dockerd_pid .. "/task/" .. dockerd_pid .. "/children")
  if ok then for k in kids:gmatch("%d+") do t = t + stat_cpu(k) end end
  return t
end

-- ---- the cycle, three ways ------------------------------------------------------------
local function names(way, i)
  return TAG .. "-" .. way .. "-" .. i .. "-net", TAG .. "-" .. way .. "-" .. i, "10.239." .. (i % 250) .. ".0/24"
end

local function cork_cycle(i)
  local net, ctr, subnet = names("cork", i)
  local n = d:network_create { name = net, subnet = subnet, labels = { ["cork.bench"] = tostring(cork.core.pid()) } }
  local c = d:container_create { name = ctr, image = IMG, cmd = { "sleep", "3600" }, networks = { net },
    labels = { ["cork.bench"] = tostring(cork.core.pid()) },
    ports = { { container_port = 8888, host_ip = IP, host_port = "" }, { container_port = 9099, host_ip = IP, host_port = "" } } }
  d:container_start(c.id)
  local ins = d:container_inspect(c.id)
  assert(ins.NetworkSettings.Ports["8888/tcp"][1].HostPort ~= "", "no host port")
  d:container_remove(c.id, { force = true })
  d:network_remove(n.id)
end

-- bash, so that `times` reports its children's CPU with fine resolution
local function shell_cycle(script, args)
  local argv = { "bash", "-c", script .. "\ntimes", "cycle" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local res = proc.run(argv, { timeout = 120 })
  assert(res.status == 0, "cycle failed: " .. res.stderr .. res.stdout:sub(-300))
  local u, us, s, ss = res.stdout:match("\n(%d+)m([%d.]+)s (%d+)m([%d.]+)s%s*$")
  return (tonumber(u) * 60 + tonumber(us)) + (tonumber(s) * 60 + tonumber(ss))
end

local CURL = [[
set -e
S=$1 V=$2 NET=$3 CTR=$4 SUB=$5 IMG=$6 IP=$7 LBL=$8
c() { curl -sS -f --unix-socket "$S" -H 'Content-Type: application/json' "$@"; }
c -X POST "http://docker/v$V/networks/create" -d "{\"Name\":\"$NET\",\"CheckDuplicate\":true,\"Driver\":\"bridge\",\"IPAM\":{\"Config\":[{\"Subnet\":\"$SUB\"}]},\"Labels\":{\"cork.bench\":\"${LBL#*=}\"}}" >/dev/null
c -X POST "http://docker/v$V/containers/create?name=$CTR" -d "{\"Image\":\"$IMG\",\"Cmd\":[\"sleep\",\"3600\"],\"Labels\":{\"cork.bench\":\"${LBL#*=}\"},\"ExposedPorts\":{\"8888/tcp\":{},\"9099/tcp\":{}},\"HostConfig\":{\"NetworkMode\":\"$NET\",\"PortBindings\":{\"8888/tcp\":[{\"HostIp\":\"$IP\",\"HostPort\":\"\"}],\"9099/tcp\":[{\"HostIp\":\"$IP\",\"HostPort\":\"\"}]}},\"NetworkingConfig\":{\"EndpointsConfig\":{\"$NET\":{}}}}" >/dev/null
c -X POST "http://docker/v$V/containers/$CTR/start" >/dev/null
c "http://docker/v$V/containers/$CTR/json" | grep -q '"HostPort":"[0-9]'
c -X DELETE "http://docker/v$V/containers/$CTR?force=1" >/dev/null
c -X DELETE "http://docker/v$V/networks/$NET" >/dev/null]]

local function curl_cycle(i)
  local net, ctr, subnet = names("curl", i)
  return shell_cycle(CURL, { sock, api, net, ctr, subnet, IMG, IP, LABEL })
end

local CLI = [[
set -e
D=$1 NET=$2 CTR=$3 SUB=$4 IMG=$5 IP=$6 LBL=$7
"$D" network create --subnet "$SUB" --label "$LBL" "$NET" >/dev/null
"$D" create --name "$CTR" --network "$NET" --label "$LBL" -p "$IP::8888" -p "$IP::9099" "$IMG" sleep 3600 >/dev/null
"$D" start "$CTR" >/dev/null
"$D" inspect "$CTR" | grep -q '"HostPort": "[0-9]'
"$D" rm -f "$CTR" >/dev/null
"$D" network rm "$NET" >/dev/null]]

local function cli_cycle(i)
  local net, ctr, subnet = names("cli", i)
  return shell_cycle(CLI, { DOCKER, net, ctr, subnet, IMG, IP, LABEL })
end

-- ---- run ----------------------------------------------------------------------------------
local ways = { { name = "cork.docker", run = function(i) local c0 = os.clock(); cork_cycle(i); return os.clock() - c0 end } }
if have_curl then ways[#ways + 1] = { name = "curl --unix-socket", run = curl_cycle } end
if have_cli then ways[#ways + 1] = { name = "docker CLI", run = cli_cycle } end
for _, w in ipairs(ways) do w.wall, w.cpu, w.engine = {}, 0, 0 end

local function sweep()
  for _, c in ipairs(d:containers { all = true, filters = { label = { LABEL } } }) do
    pcall(d.container_remove, d, c.Id, { force = true })
  end
  for _, n in ipairs(d:networks { filters = { label = { LABEL } } }) do pcall(d.network_remove, d, n.Id) end
end
local s <close> = cork.scope("bench docker_cycle")
s:defer(sweep)

for _, w in ipairs(ways) do w.run(0) end       -- warm up (image layers, CLI page cache)
for i = 1, N do
  for _, w in ipairs(ways) do
    local e0, t0 = engine_cpu(), cork.time()
    local cpu = w.run(i)
    w.wall[i] = cork.time() - t0
    w.cpu = w.cpu + cpu
    w.engine = w.engine + engine_cpu() - e0
  end
end

local function median(t) local c = { table.unpack(t) }; table.sort(c); return c[(#c + 1) // 2] end
print(("docker cycle (network create, container create with 2 ports on %s, start, inspect, remove -f, " ..
  "network rm), API %s, %d interleaved cycles"):format(IP, api, N))
print("                       wall/cycle (median)   client CPU/cycle   engine CPU/cycle")
for _, w in ipairs(ways) do
  w.m, w.c = median(w.wall), w.cpu / N
  print(("  %-20s %10.1f ms %16.2f ms %15.1f ms"):format(w.name, w.m * 1e3, w.c * 1e3, w.engine / N * 1e3))
end
local cork_w = ways[1]
for k = 2, #ways do
  local w = ways[k]
  print(("  cork / %-18s wall %.2f   client CPU %.3f"):format(w.name, cork_w.m / w.m, cork_w.c / w.c))
  if w.name == "docker CLI" then
    summary.ratio("docker cycle: client CPU", "the docker CLI's", cork_w.c, w.c, nil)
  end
end
print("  (client CPU: cork's own process; the curl or docker processes of a cycle (bash `times`), not bash itself)")
return 0
