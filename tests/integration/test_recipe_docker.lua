-- The docker recipe end to end against the private engine: --detach, the
-- guest env, the token's whereabouts, isolation (own bundle reachable; a
-- canary on another network and one on the host's loopback not), down;
-- --dry-run; fault injection at every step; ls/gc after SIGKILL.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local json = require "cork.json"

local d = H.connect(T)
R.images(d)
local t0 = cork.time()
local before = H.snapshot(d)
local s <close> = cork.scope("test_recipe_docker")
s:defer(function() H.sweep(d) end)

local function nothing_left(h, slug, what)
  T.is(R.engine_left(d, slug), 0, what .. ": no container or network of " .. slug)
  T.is(R.files(h.env.XDG_STATE_HOME), "", what .. ": no journal or state file left")
end

-- 1. end to end with --detach, sampling /proc/*/cmdline while it runs --------
do
  local h = R.home("e2e")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local out = h.dir .. "/out.ndjson"
  local p = cork.proc.spawn({ R.bin, "--json", "run", "docker", "--bottle", "w6", "--detach" },
    { env = h.env, stdout = out, stderr = h.dir .. "/err" })
  local on_argv, samples = false, 0
  local deadline = cork.time() + 60
  while cork.time() < deadline do
    for _, pid in ipairs(cork.fs.list("/proc")) do
      if pid:match("^%d+$") then
        local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
        if f then
          local c = f:read("a") or ""; f:close()
          if c:find(R.TOKEN, 1, true) then on_argv = true end
        end
      end
    end
    samples = samples + 1
    local st = cork.proc.run({ "sh", "-c", "kill -0 " .. p:pid() .. " 2>/dev/null && echo alive" }).stdout
    if st == "" then break end
  end
  local r = p:wait()
  local text = cork.fs.read(out)
  local ev = R.decode(text)
  T.is(r.status, 0, "docker --detach: exit 0")
  T.ok(samples >= 2, "sampled /proc/*/cmdline during the launch (" .. samples .. " rounds)")
  T.ok(not on_argv, "the token value is on no process's argv")
  T.ok(not text:find(R.TOKEN, 1, true), "the token value is in no event line")
  T.ok(not cork.fs.read(h.dir .. "/err"):find(R.TOKEN, 1, true), "nor on stderr")
  local ready = R.find(ev, { event = "bottle_ready" })[1]
  T.ok(ready ~= nil, "a bottle_ready event")
  local iso = R.find(ev, { event = "isolation_check" })[1] or {}
  T.ok(type(iso.elapsed) == "number" and iso.unreachable == 4,
    "the isolation check passed before the bottle was handed over (4 targets unreachable)", text)
  T.diag(("docker isolation check: %.2f s (canary on %s)"):format(iso.elapsed or -1,
    table.concat(iso.canary or {}, ", ")))
  local slug = ready and ready.slug or "none"
  local bundle, agent = "cork-" .. slug .. "-bundle", "cork-" .. slug .. "-agent"

  -- token in the bundle's env (by value), never in the agent's
  local ib = d:container_inspect(bundle)
  local benv = table.concat(ib.Config.Env, "\n")
  T.ok(benv:find("=" .. R.TOKEN, 1, true) ~= nil, "the token value is in the bundle's env")
  T.like(benv, "EGRESS_TOKEN_%d+=", "as an EGRESS_TOKEN_<n> variable")
  local logs = cork.proc.run({ "docker", "logs", bundle }, { env = { DOCKER_HOST = os.getenv("DOCKER_HOST") } })
  if logs.status == 0 then T.ok(not (logs.stdout .. logs.stderr):find(R.TOKEN, 1, true), "the stand-in logs names only") end
  T.is(#(ib.HostConfig.PortBindings and next(ib.HostConfig.PortBindings) and { 1 } or {}), 0,
    "docker recipe: nothing published on the host")

  -- guest env
  local e = d:exec(agent, { "env" }).stdout
  local ipam = ib.NetworkSettings.Networks["cork-" .. slug .. "-internal"].IPAddress
  T.like(e, "HTTPS_PROXY=http://" .. H.pat(ipam) .. ":9099\n", "agent HTTPS_PROXY: the bundle's egress on the internal net")
  T.like(e, "HTTP_PROXY=http://" .. H.pat(ipam) .. ":9099\n", "agent HTTP_PROXY")
  T.like(e, "NO_PROXY=[^\n]*" .. H.pat(ipam), "agent NO_PROXY holds the bundle")
  T.ok(not e:find(R.TOKEN, 1, true), "the token is not in the agent's env")

  -- isolation: own bundle reachable; canaries not
  local function probe(host, port)
    local r2 = d:exec(agent, { "sh", "-c",
      ('printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 nc %s %d'):format(host, port) })
    return r2.stdout
  end
  T.like(probe(ipam, 9099), "egress", "the agent reaches its bundle's proxy port (egress)")
  T.like(probe(ipam, 8888), "pipelock", "and pipelock")
  -- a canary container on a network of the test's own
  local cnet = H.name("canary-net")
  d:network_create({ name = cnet, labels = H.labels, subnet = "10.231.77.0/24", gateway = "10.231.77.1" })
  local canary = d:container_create({ name = H.name("canary"), image = R.BUNDLE, labels = H.labels,
    env = { "CORK_DAEMONS=pipelock" }, networks = { { name = cnet, ip = "10.231.77.5" } }, init = true })
  d:container_start(canary)
  T.like(d:exec(canary, { "sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 nc 127.0.0.1 8888' }).stdout,
    "pipelock", "the canary container serves (checked from inside it)")
  -- The recipe's seal: no default route in the agent's namespace, and the
  -- bridge's own address (the host) prohibited; the on-link route to the
  -- bundle stays.
  local routes = d:exec(agent, { "cat", "/proc/net/route" }).stdout
  T.ok(not routes:find("\n%S+%s+00000000%s"), "the agent has no default route", routes)
  local gwi = ib.NetworkSettings.Networks["cork-" .. slug .. "-internal"].Gateway
  local cg = d:exec(agent, { "sh", "-c", "nc " .. gwi .. " 80 </dev/null 2>&1" })
  T.like(cg.stdout, "Permission denied", "the internal bridge's address (the host) is prohibited")
  T.is(#d:containers({ all = true, filters = { label = { "cork.slug=" .. slug, "cork.role=seal" } } }), 0,
    "the seal container is gone")
  T.is(probe("10.231.77.5", 8888), "", "the agent cannot reach a canary on another network")
  -- The same with the host forwarding IPv4 (an engine without iptables on a
  -- router-like host, where Docker's --internal alone would leak): only the
  -- canary on the test's own network is probed, and forwarding is put back.
  local fwd = cork.fs.read("/proc/sys/net/ipv4/ip_forward"):match("%d")
  if cork.core.uid() == 0 and fwd == "0" then
    local function forward(v) local f = assert(io.open("/proc/sys/net/ipv4/ip_forward", "w")); f:write(v); f:close() end
    forward("1\n")
    local okp, leak = pcall(probe, "10.231.77.5", 8888)
    forward("0\n")
    T.is(okp and leak, "", "with the host forwarding, the agent still cannot reach the canary")
  else
    T.skip("forwarding case: needs root and a host that does not forward already")
  end
  -- a canary on the host's loopback
  local lport = 40000 + (tonumber(H.id) % 20000)
  local www = cork.fs.tempdir("cork-w6-www")
  s:defer(cork.fs.remove, www, { recursive = true })
  cork.fs.write(www .. "/index.html", "host-canary\n")
  local lp = cork.proc.spawn({ "busybox", "httpd", "-f", "-p", "127.0.0.1:" .. lport, "-h", www },
    { stdout = "null", stderr = "null" })
  cork.sleep(0.2)
  local hc = cork.proc.run({ "sh", "-c", ('printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 busybox nc 127.0.0.1 %d'):format(lport) }).stdout
  T.like(hc, "host%-canary", "the host loopback canary serves (checked from the host)")
  T.is(probe("127.0.0.1", lport), "", "the agent cannot reach the host's loopback canary")
  local gw = ib.NetworkSettings.Networks["cork-" .. slug .. "-internal"].Gateway
  if gw and gw ~= "" then T.is(probe(gw, lport), "", "nor through the internal network's gateway") end
  lp:close(1)
  d:container_remove(canary, { force = true }); d:network_remove(cnet)

  -- ls --json
  local ls = R.cork(h, { "ls" })
  T.is(ls.status, 0, "cork ls: exit 0")
  local row = R.find(ls.events, { event = "bottle", slug = slug })[1]
  T.ok(row ~= nil, "cork ls --json lists the bottle", ls.stdout)

  -- down
  local dn = R.cork(h, { "down", slug })
  T.is(dn.status, 0, "cork down: exit 0")
  nothing_left(h, slug, "after down")
  T.ok(not (dn.stdout .. dn.stderr):find(R.TOKEN, 1, true), "down prints no token")
end

-- 2. --dry-run --------------------------------------------------------------
do
  local h = R.home("dry")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local snap = H.snapshot(d)
  local r = R.cork(h, { "run", "docker", "--bottle", "w6", "--dry-run" })
  T.is(r.status, 0, "--dry-run: exit 0")
  local calls = R.find(r.events, { event = "dry_run" })
  local names = {}
  for _, c in ipairs(calls) do names[c.call] = true end
  T.ok(names["docker.network_create"] and names["docker.container_create"],
    "--dry-run shows the would-be network and container creates", r.stdout)
  T.ok(not (r.stdout .. r.stderr):find(R.TOKEN, 1, true), "--dry-run prints no secret value")
  H.no_leaks(T, d, snap)
  T.is(R.files(h.env.XDG_STATE_HOME), "", "--dry-run leaves no state")
end

-- 3. fault injection at every step ------------------------------------------
local STEPS = { "network", "ca", "bundle", "agent", "seal", "provision" }
local USER_RECIPE_DIR = cork.fs.tempdir("cork-w6-user")
s:defer(cork.fs.remove, USER_RECIPE_DIR, { recursive = true })
cork.fs.mkdir(USER_RECIPE_DIR .. "/recipes")
-- a user recipe: one failing provisioning step, then the stock recipe
cork.fs.write(USER_RECIPE_DIR .. "/recipes/w6user.lua", [[
local cork = require "cork"
local provision = require "cork.provision"
provision.steps:insert_after("ca", { name = "w6-fail",
  run = function() cork.error("provision", "user step w6-fail failed") end })
return require("cork.recipes").run(os.getenv("W6_STOCK") or "docker", { ... })
]])

local function run_bg(h, argv, extra)
  local out = h.dir .. "/out." .. tostring(cork.time()):gsub("%.", "_")
  local a = { R.bin, "--json" }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local p = cork.proc.spawn(a, { env = R.merge(h.env, extra), stdout = out, stderr = out .. ".err" })
  return p, out
end

local function wait_event(out, name, timeout)
  local deadline = cork.time() + (timeout or 30)
  while cork.time() < deadline do
    local ok, text = pcall(cork.fs.read, out)
    if ok then
      for _, e in ipairs(R.decode(text)) do if e.event == name then return e end end
    end
    cork.sleep(0.05)
  end
end

local function slug_of(out)
  for _, e in ipairs(R.decode(cork.fs.read(out))) do if e.event == "bottle" then return e.slug end end
end

local function case(label, step, fn)
  local h = R.home("f")
  local ok, err = pcall(fn, h)
  T.ok(ok, label .. " @" .. step .. ": ran", tostring(err))
  cork.fs.remove(h.dir, { recursive = true, missing_ok = true })
end

local function pause_signal(sig, code)
  return function(h, step)
    local p, out = run_bg(h, { "run", "docker", "--bottle", "w6" }, { CORK_FAULT = "pause@" .. step })
    local e = wait_event(out, "fault_pause")
    T.ok(e ~= nil, sig .. "@" .. step .. ": paused at the step")
    local slug = slug_of(out) or "none"
    p:kill(sig)
    local r = p:wait()
    if code then T.is(r.status, code, sig .. "@" .. step .. ": exit " .. code) end
    return slug, r
  end
end

local function check_clean(h, slug, label)
  nothing_left(h, slug, label)
end

for _, step in ipairs(STEPS) do
  for _, sig in ipairs({ "INT", "TERM" }) do
    case("SIG" .. sig, step, function(h)
      local slug = pause_signal(sig, 130)(h, step)
      check_clean(h, slug, "SIG" .. sig .. "@" .. step)
    end)
  end
  case("docker error", step, function(h)
    local r = R.cork(h, { "run", "docker", "--bottle", "w6" }, { CORK_FAULT = "docker@" .. step })
    T.is(r.status, 1, "docker@" .. step .. ": exit 1")
    local err = R.find(r.events, { event = "failed" })[1]
    T.ok(err and err.kind == "daemon", "docker@" .. step .. ": error kind daemon", r.stdout)
    check_clean(h, (R.find(r.events, { event = "bottle" })[1] or {}).slug or "none",
      "docker@" .. step)
  end)
  case("smolvm failure", step, function(h)
    -- the docker recipe calls no smolvm: the injected kind still unwinds
    local r = R.cork(h, { "run", "docker", "--bottle", "w6" }, { CORK_FAULT = "smolvm@" .. step })
    T.is(r.status, 1, "smolvm@" .. step .. ": exit 1")
    check_clean(h, (R.find(r.events, { event = "bottle" })[1] or {}).slug or "none", "smolvm@" .. step)
  end)
  case("user step error", step, function(h)
    local r = R.cork(h, { "run", "docker", "--bottle", "w6" }, { CORK_FAULT = "user@" .. step })
    T.is(r.status, 1, "user@" .. step .. ": exit 1")
    check_clean(h, (R.find(r.events, { event = "bottle" })[1] or {}).slug or "none", "user@" .. step)
  end)
  case("SIGKILL + down", step, function(h)
    local slug = pause_signal("KILL")(h, step)
    if step == "provision" then
      -- ls and gc after a SIGKILL
      local ls = R.cork(h, { "ls" })
      T.ok(R.find(ls.events, { event = "bottle", slug = slug })[1] ~= nil, "ls lists the killed bottle", ls.stdout)
      local gc = R.cork(h, { "gc", "--yes" })
      T.is(gc.status, 0, "gc --yes: exit 0")
      check_clean(h, slug, "gc after KILL@" .. step)
    end
    local dn = R.cork(h, { "down", slug })
    if step == "provision" then
      -- gc ended it already: down says there is nothing of it (issue 19.12)
      T.is(dn.status, 1, "down after gc: exit 1")
      T.like(dn.stderr, "no bottle " .. slug:gsub("%-", "%%-") .. ": no journal, and nothing labelled",
        "down after gc: nothing of it exists, said so")
    else
      T.is(dn.status, 0, "down after KILL@" .. step .. ": exit 0")
    end
    check_clean(h, slug, "KILL@" .. step .. " + down")
  end)
end

-- a real user provisioning step raising, through CORK_PATH
case("user recipe", "provision", function(h)
  local r = R.cork(h, { "run", "w6user", "--bottle", "w6" }, { CORK_PATH = USER_RECIPE_DIR })
  T.is(r.status, 1, "a failing user provisioning step: exit 1")
  local err = R.find(r.events, { event = "failed" })[1]
  T.ok(err and (err.msg or ""):find("w6-fail", 1, true), "the error names the user step", r.stdout .. r.stderr)
  check_clean(h, (R.find(r.events, { event = "bottle" })[1] or {}).slug or "none", "user recipe")
end)

T.diag(("docker recipe tests: %.1f s"):format(cork.time() - t0))
s:close()   -- T.done() exits: run the defers (sweep, temp dirs) now
H.no_leaks(T, d, before)
T.done()
