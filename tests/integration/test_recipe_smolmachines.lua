-- The smolmachines recipe against the private engine and the stand-in
-- smolvm (tests/fakes/smolvm): --detach end to end (ports on the alias only,
-- guest env, allowlist exactly <alias>/32, token whereabouts, down), sixteen
-- concurrent launches and a seventeenth that finds the pool exhausted,
-- --dry-run, and fault injection at every step.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local json = require "cork.json"

-- Provisioning runs chown/chmod on /tmp and /home: only safe once the fake
-- runs `machine exec` in a per-machine chroot, never on this host. Without
-- it, only what stops before the first exec runs (dry run, faults, which fire
-- at the start of a step, and the pool held by launches paused there).
local fake = cork.fs.read(R.root .. "/tests/fakes/smolvm")
local HAVE_CHROOT = fake:find("chroot", 1, true) ~= nil
local NO_CHROOT = "tests/fakes/smolvm does not yet run `machine exec` in a chroot"
local d = H.connect(T)
R.images(d)
local t0 = cork.time()
local before = H.snapshot(d)
local s <close> = cork.scope("test_recipe_smolmachines")
s:defer(function() H.sweep(d) end)

local function home(name)
  local h = R.home(name)
  cork.fs.write(h.dir .. "/agent.smolmachine", "stand-in artifact\n")
  h.run = { "run", "smolmachines", "--bottle", "w6", "--from", h.dir .. "/agent.smolmachine" }
  return h
end
local function args(h, more)
  local a = {}
  for _, x in ipairs(h.run) do a[#a + 1] = x end
  for _, x in ipairs(more or {}) do a[#a + 1] = x end
  return a
end
local function vms(h)
  local r = cork.proc.run({ R.root .. "/tests/fakes/smolvm", "machine", "ls", "--json" }, { env = h.env })
  local ok, v = pcall(json.decode, r.stdout)
  return ok and type(v) == "table" and v or {}
end
local function nothing_left(h, slug, what)
  T.is(R.engine_left(d, slug), 0, what .. ": no container or network of " .. slug)
  T.is(#vms(h), 0, what .. ": no VM")
  -- the pool's and smolvm's lock files (aliases.lock, smolvm.lock) are shared by all bottles
  local left = R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")
  T.is(left, "", what .. ": no journal, state or alias reservation left")
end
local function http(host, port)
  return cork.proc.run({ "sh", "-c",
    ('printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 busybox nc %s %d'):format(host, port) }).stdout
end

-- 1. end to end with --detach ------------------------------------------------
if not HAVE_CHROOT then T.skip(NO_CHROOT .. ": end to end", 1) else
  local h = home("e2e")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local out = h.dir .. "/out.ndjson"
  local a = { R.bin, "--json" }
  for _, x in ipairs(args(h, { "--detach" })) do a[#a + 1] = x end
  local p = cork.proc.spawn(a, { env = h.env, stdout = out, stderr = h.dir .. "/err" })
  local on_argv, samples = false, 0
  while true do
    for _, pid in ipairs(cork.fs.list("/proc")) do
      if pid:match("^%d+$") then
        local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
        if f then local c = f:read("a") or ""; f:close(); if c:find(R.TOKEN, 1, true) then on_argv = true end end
      end
    end
    samples = samples + 1
    if cork.proc.run({ "sh", "-c", "kill -0 " .. p:pid() .. " 2>/dev/null && echo y" }).stdout == "" then break end
  end
  local r = p:wait()
  local text = cork.fs.read(out)
  local ev = R.decode(text)
  T.is(r.status, 0, "smolmachines --detach: exit 0", cork.fs.read(h.dir .. "/err"))
  T.ok(samples >= 2, "sampled /proc/*/cmdline during the launch (" .. samples .. " rounds)")
  T.ok(not on_argv, "the token value is on no process's argv")
  T.ok(not text:find(R.TOKEN, 1, true), "the token value is in no event line")
  local ready = R.find(ev, { event = "bottle_ready" })[1] or {}
  local slug = ready.slug or "none"
  local ip
  for _, e in ipairs(ev) do if e.alias then ip = e.alias end end
  T.like(ip, "^127%.0%.0%.%d+$", "an alias from the pool")
  local bundle = "cork-" .. slug .. "-bundle"
  local ib = d:container_inspect(bundle)
  T.ok(table.concat(ib.Config.Env, "\n"):find("=" .. R.TOKEN, 1, true), "the token value is in the bundle's env")
  -- ports: on the alias only
  local urls = R.find(ev, { event = "agent_urls" })[1] or {}
  local port = tonumber((urls.HTTPS_PROXY or ""):match("^http://" .. H.pat(ip or "x") .. ":(%d+)$"))
  T.ok(port, "HTTPS_PROXY is the alias and a published port", urls.HTTPS_PROXY)
  local bound_ok = true
  for _, binds in pairs(ib.NetworkSettings.Ports or {}) do
    for _, b in ipairs(binds ~= json.null and binds or {}) do if b.HostIp ~= ip then bound_ok = false end end
  end
  T.ok(bound_ok, "every published port is bound on the alias only")
  if port then
    T.like(http(ip, port), "egress", "connect on the alias works")
    T.is(http("127.0.0.1", port), "", "the same port on 127.0.0.1 is not served")
  end
  -- allowlist
  local v = vms(h)[1] or {}
  T.same(v.network and v.network.allowed_cidrs, { ip .. "/32" }, "the VM's allowlist is exactly <alias>/32")
  local ls = R.cork(h, { "ls" })
  T.ok(R.find(ls.events, { event = "bottle", slug = slug })[1] ~= nil, "cork ls --json lists the bottle", ls.stdout)
  -- guest env: the attach argv, with `env` as the program
  local att = {}
  for _, x in ipairs(ready.attach or {}) do
    if x == "--" then break end
    att[#att + 1] = x
  end
  att[#att + 1] = "--"; att[#att + 1] = "env"
  local ge = cork.proc.run(att, { env = h.env }).stdout
  T.like(ge, "HTTPS_PROXY=http://" .. H.pat(ip or "x") .. ":" .. tostring(port) .. "\n", "guest env: HTTPS_PROXY")
  T.like(ge, "NO_PROXY=[^\n]*", "guest env: NO_PROXY")
  T.ok(not ge:find(R.TOKEN, 1, true), "guest env: no bundle token")
  local dn = R.cork(h, { "down", slug })
  T.is(dn.status, 0, "cork down: exit 0")
  nothing_left(h, slug, "after down")
end

-- 2. sixteen concurrent launches, then a seventeenth --------------------------
if not HAVE_CHROOT then T.skip(NO_CHROOT .. ": sixteen --detach launches", 1) else
  local h = home("pool")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local t = cork.time()
  local procs = {}
  for i = 1, 16 do
    local a = { R.bin, "--json" }
    for _, x in ipairs(args(h, { "--detach" })) do a[#a + 1] = x end
    procs[i] = { p = cork.proc.spawn(a, { env = h.env, stdout = h.dir .. "/pool" .. i, stderr = "null" }) }
  end
  local aliases, distinct, okc = {}, 0, 0
  for i, x in ipairs(procs) do
    local r = x.p:wait()
    if r.status == 0 then okc = okc + 1 end
    for _, e in ipairs(R.decode(cork.fs.read(h.dir .. "/pool" .. i))) do
      if e.alias and not aliases[e.alias] then aliases[e.alias] = true; distinct = distinct + 1 end
    end
  end
  T.is(okc, 16, "sixteen concurrent launches succeed")
  T.is(distinct, 16, "with sixteen distinct aliases")
  T.diag(("16 concurrent launches: %.1f s"):format(cork.time() - t))
  local snap = H.snapshot(d)
  local r = R.cork(h, args(h, { "--detach" }))
  T.is(r.status, 1, "the seventeenth: exit 1")
  local f = R.find(r.events, { event = "failed" })[1] or {}
  T.is(f.kind, "pool_exhausted", "kind pool_exhausted")
  T.like(f.msg, "pool 127%.0%.0%.16%-127%.0%.0%.31 exhausted", "a clear message")
  H.no_leaks(T, d, snap)
  local dn = R.cork(h, { "down", "--all" })
  T.is(dn.status, 0, "down --all: exit 0")
  T.is(#vms(h), 0, "no VM after down --all")
  T.is((R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")), "", "no state after down --all")
end

-- 2b. the pool held by sixteen launches paused at provisioning (no exec) ----
do
  local h = R.home("pool-paused")
  cork.fs.write(h.dir .. "/a.smolmachine", "x")
  local run = {R.bin,"--json","run","smolmachines","--bottle","w6","--from",h.dir.."/a.smolmachine"}
  local t = cork.time()
  local ps = {}
  for i = 1, 16 do ps[i] = cork.proc.spawn(run, {env = R.merge(h.env, {CORK_FAULT="pause@provision"}), stdout = h.dir.."/o"..i, stderr="null"}) end
  local deadline = cork.time() + 60
  local n = 0
  while cork.time() < deadline and n < 16 do
    n = 0
    for i = 1, 16 do local ok, tx = pcall(cork.fs.read, h.dir.."/o"..i); if ok and tx:find('"fault_pause"',1,true) then n = n + 1 end end
    cork.sleep(0.1)
  end
  T.is(n, 16, "paused: sixteen concurrent launches reach provisioning")
  local aliases, distinct = {}, 0
  for i = 1, 16 do for _, e in ipairs(R.decode(cork.fs.read(h.dir.."/o"..i))) do if e.alias and not aliases[e.alias] then aliases[e.alias]=true; distinct=distinct+1 end end end
  T.is(distinct, 16, "paused: sixteen distinct aliases")
  T.diag(("16 launches to provision: %.1f s"):format(cork.time()-t))
  -- (should the pool wrongly have room, the seventeenth fails at provisioning, before any exec)
  local r = R.cork(h, {"run","smolmachines","--bottle","w6","--from",h.dir.."/a.smolmachine"}, { CORK_FAULT = "user@provision" })
  T.is(r.status, 1, "paused: the seventeenth exits 1")
  local f = R.find(r.events, {event="failed"})[1] or {}
  T.is(f.kind, "pool_exhausted", "paused: kind pool_exhausted"); T.like(f.msg, "pool 127%.0%.0%.16%-127%.0%.0%.31 exhausted", "paused: a clear message")
  local slug17 = (R.find(r.events, {event="bottle"})[1] or {}).slug or "none"
  T.is(R.engine_left(d, slug17), 0, "paused: the seventeenth left nothing on the engine")
  for i = 1, 16 do ps[i]:kill("TERM") end
  local codes = {}
  for i = 1, 16 do codes[#codes+1] = ps[i]:wait().status end
  T.is(table.concat(codes, ","), string.rep("130,", 15).."130", "paused: SIGTERM ends all sixteen with 130")
  T.is((R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")), "", "paused: no state left")
  T.diag(("total %.1f s"):format(cork.time()-t))
  for i = 1, 16 do T.is(R.engine_left(d, (R.find(R.decode(cork.fs.read(h.dir .. "/o" .. i)), { event = "bottle" })[1] or {}).slug or "none"), 0, "paused: launch " .. i .. " left nothing") end
  cork.fs.remove(h.dir, { recursive = true })
end

-- 3. --dry-run ---------------------------------------------------------------
do
  local h = home("dry")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local snap = H.snapshot(d)
  local r = R.cork(h, args(h, { "--dry-run" }))
  T.is(r.status, 0, "--dry-run: exit 0")
  local names = {}
  for _, c in ipairs(R.find(r.events, { event = "dry_run" })) do names[c.call] = true end
  T.ok(names["docker.container_create"], "--dry-run shows the would-be bundle", r.stdout)
  T.ok(not (r.stdout .. r.stderr):find(R.TOKEN, 1, true), "--dry-run prints no secret value")
  H.no_leaks(T, d, snap)
  T.is(#vms(h), 0, "--dry-run: no VM")
  T.is((R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")), "", "--dry-run leaves no state")
end

-- 4. fault injection at every step ------------------------------------------
local STEPS = { "alias", "network", "ca", "bundle", "ports", "vm", "provision" }
-- where the recipe calls smolvm, the stand-in fails that call; elsewhere
-- the hook raises a smolvm error (an always-failing exec would only make the
-- readiness poll wait out its timeout)
local SMOLVM_CALL = { vm = "create" }
local function slug_in(events) return (R.find(events, { event = "bottle" })[1] or {}).slug or "none" end
local function case(label, fn)
  local h = home("f")
  local ok, err = pcall(fn, h)
  T.ok(ok, label .. ": ran", tostring(err))
  cork.fs.remove(h.dir, { recursive = true, missing_ok = true })
end
local function paused(h, step, sig)
  local out = h.dir .. "/out"
  local a = { R.bin, "--json" }
  for _, x in ipairs(h.run) do a[#a + 1] = x end
  local p = cork.proc.spawn(a, { env = R.merge(h.env, { CORK_FAULT = "pause@" .. step }), stdout = out, stderr = "null" })
  local deadline, seen = cork.time() + 30, false
  while cork.time() < deadline and not seen do
    local ok, text = pcall(cork.fs.read, out)
    if ok and text:find('"fault_pause"', 1, true) then seen = true else cork.sleep(0.05) end
  end
  T.ok(seen, sig .. "@" .. step .. ": paused at the step")
  p:kill(sig)
  local r = p:wait()
  return slug_in(R.decode(cork.fs.read(out))), r
end
for _, step in ipairs(STEPS) do
  for _, sig in ipairs({ "INT", "TERM" }) do
    case("SIG" .. sig .. "@" .. step, function(h)
      local slug, r = paused(h, step, sig)
      T.is(r.status, 130, "SIG" .. sig .. "@" .. step .. ": exit 130")
      nothing_left(h, slug, "SIG" .. sig .. "@" .. step)
    end)
  end
  case("docker@" .. step, function(h)
    local r = R.cork(h, h.run, { CORK_FAULT = "docker@" .. step })
    T.is(r.status, 1, "docker@" .. step .. ": exit 1")
    T.is((R.find(r.events, { event = "failed" })[1] or {}).kind, "daemon", "docker@" .. step .. ": kind daemon")
    nothing_left(h, slug_in(r.events), "docker@" .. step)
  end)
  case("smolvm@" .. step, function(h)
    local extra = SMOLVM_CALL[step] and { FAKE_SMOLVM_FAIL = SMOLVM_CALL[step] } or { CORK_FAULT = "smolvm@" .. step }
    local r = R.cork(h, h.run, extra)
    T.is(r.status, 1, "smolvm failure @" .. step .. ": exit 1")
    T.is((R.find(r.events, { event = "failed" })[1] or {}).kind, "smolvm",
      "smolvm failure @" .. step .. ": kind smolvm")
    nothing_left(h, slug_in(r.events), "smolvm@" .. step)
  end)
  case("user@" .. step, function(h)
    local r = R.cork(h, h.run, { CORK_FAULT = "user@" .. step })
    T.is(r.status, 1, "user@" .. step .. ": exit 1")
    nothing_left(h, slug_in(r.events), "user@" .. step)
  end)
  case("KILL@" .. step, function(h)
    local slug = paused(h, step, "KILL")
    local dn = R.cork(h, { "down", slug })
    T.is(dn.status, 0, "down after KILL@" .. step .. ": exit 0")
    nothing_left(h, slug, "KILL@" .. step .. " + down")
  end)
end

T.diag(("smolmachines recipe tests: %.1f s"):format(cork.time() - t0))
s:close()   -- T.done() exits: run the defers (sweep, temp dirs) now
H.no_leaks(T, d, before)
T.done()
