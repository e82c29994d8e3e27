-- Nothing left behind, ever (issue 20), against the private engine:
--   1. SIGINT at random moments inside the network, bundle and agent steps
--      (the creates themselves included), and the same through `cork serve`'s
--      cancel; after each round the engine's own listing (not cork's) has
--      nothing labelled with the slug, and no journal is left;
--   2. the engine away (its socket gone) during a launch's cleanup and during
--      `cork down`: the journal stays, the exit is non-zero, the message says
--      `cork down SLUG`; with the engine back, down leaves nothing;
--   3. a frozen engine (SIGSTOP): the cleanup keeps to CORK_CLEANUP_TIMEOUT,
--      says what it does, keeps the journal; after SIGCONT down finishes;
--   4. sixteen concurrent launches, five rounds, no failure (the subnet lock);
--   5. leftovers no journal knows (a labelled network, a volume): ls, gc and
--      down --all find them.
-- CORK_CANCEL_ROUNDS (default 9) sets the rounds of 1; tests/soak/cancel.sh
-- runs many more. CORK_CONCURRENT_ROUNDS (default 5) the rounds of 4.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local C = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/serve_client.lua")
local json = require "cork.json"

local d = H.connect(T)
R.images(d)
local t0 = cork.time()
local before = H.snapshot(d)
local s <close> = cork.scope("test_cancel")
s:defer(function() H.sweep(d) end)

local ROUNDS = tonumber(os.getenv("CORK_CANCEL_ROUNDS") or "") or 9
local CROUNDS = tonumber(os.getenv("CORK_CONCURRENT_ROUNDS") or "") or 5
local seed = tonumber(os.getenv("CORK_CANCEL_SEED") or "") or os.time()
math.randomseed(seed)
T.diag(("seed %d (CORK_CANCEL_SEED to replay)"):format(seed))

-- What the engine itself lists for a slug: containers, networks, volumes.
local function engine_has(slug)
  local f = { label = { "cork.slug=" .. slug } }
  local c = d:containers({ all = true, filters = f })
  local n = d:networks({ filters = f })
  local v = d:request("GET", "/volumes", { query = { filters = f } }).body.Volumes or {}
  local names = {}
  for _, x in ipairs(c) do names[#names + 1] = "container " .. tostring((x.Names or {})[1]) end
  for _, x in ipairs(n) do names[#names + 1] = "network " .. tostring(x.Name) end
  for _, x in ipairs(v) do names[#names + 1] = "volume " .. tostring(x.Name) end
  return table.concat(names, ", ")
end

local function spawn(h, argv, extra)
  local a = { R.bin, "--json" }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local err = h.dir .. "/err." .. tostring(cork.time()):gsub("%.", "_")
  local p = cork.proc.spawn(a, { env = R.merge(h.env, extra), stdout = "pipe", stderr = err })
  return p, err
end

-- Read events from p until pred(ev); returns that event and all seen.
local function until_event(p, pred, timeout)
  local out = p:stdout()
  local deadline = cork.time() + (timeout or 60)
  local all = {}
  while cork.time() < deadline do
    local line = out:read_line(0.5)
    if line then
      local ok, ev = pcall(json.decode, line)
      if ok and type(ev) == "table" then
        all[#all + 1] = ev
        if pred(ev) then return ev, all end
      end
    elseif not p:running() then
      -- drain what is left
      while true do
        local l = out:read_line(0)
        if not l then break end
        local ok, ev = pcall(json.decode, l)
        if ok and type(ev) == "table" then all[#all + 1] = ev; if pred(ev) then return ev, all end end
      end
      return nil, all
    end
  end
  return nil, all
end

local function slug_in(all)
  for _, e in ipairs(all) do if e.event == "bottle" and e.slug then return e.slug end end
end

-- Every msg of a list of events, one per line.
local function msgs(evs)
  local out = {}
  for _, e in ipairs(evs or {}) do if e.msg then out[#out + 1] = e.msg end end
  return table.concat(out, "\n")
end

local function drain(p)
  local out = p:stdout()
  local all = {}
  while true do
    local line, why = out:read_line(5)
    if not line then if why == "eof" or not p:running() then break end
    else
      local ok, ev = pcall(json.decode, line)
      if ok and type(ev) == "table" then all[#all + 1] = ev end
    end
  end
  return all
end

-- 1. SIGINT at random sub-step moments ------------------------------------
local STEPS = { "network", "bundle", "agent" }
do
  local h = R.home("cancel")
  s:defer(cork.fs.remove, h.dir, { recursive = true, missing_ok = true })
  local interrupted, finished, leaks = 0, 0, {}
  for i = 1, ROUNDS do
    local step = STEPS[(i - 1) % #STEPS + 1]
    local delay = math.random(0, 15) / 1000
    local p = spawn(h, { "run", "docker", "--bottle", "w6", "--detach" })
    local ev, all = until_event(p, function(e) return e.event == "step" and e.step == step end)
    local slug = slug_in(all) or "none"
    if ev then
      if delay > 0 then cork.sleep(delay) end
      p:kill("INT")
    end
    drain(p)
    local r = p:wait(120)
    local st = r and r.status
    if st == 130 then interrupted = interrupted + 1
    elseif st == 0 then
      finished = finished + 1
      R.cork(h, { "down", slug })
    end
    local left = engine_has(slug)
    local files = R.files(h.env.XDG_STATE_HOME)
    if ev == nil or (st ~= 130 and st ~= 0) or left ~= "" or files ~= "" then
      leaks[#leaks + 1] = ("round %d (SIGINT %.0f ms into %s, slug %s): exit %s, left [%s], files [%s]")
        :format(i, delay * 1000, step, slug, tostring(st), left, files)
      -- clean for the next round, whatever happened
      R.cork(h, { "down", "--all" })
    end
  end
  T.is(table.concat(leaks, "\n"), "", ("SIGINT during network/bundle/agent, %d rounds: exit 130 (or 0), "
    .. "the engine lists nothing of the slug, no journal"):format(ROUNDS))
  T.diag(("SIGINT rounds: %d interrupted, %d had finished first"):format(interrupted, finished))
end

-- ...and a serve `cancel` at the same moments
do
  local h = R.home("serve-cancel")
  s:defer(cork.fs.remove, h.dir, { recursive = true, missing_ok = true })
  local srv = C.start({ dir = h.dir, env = h.env })
  local leaks = {}
  local n = math.max(3, ROUNDS // 3)
  for i = 1, n do
    local step = STEPS[(i - 1) % #STEPS + 1]
    local delay = math.random(0, 15) / 1000
    local id = "run" .. i
    srv:send({ id = id, method = "run", params = { recipe = "docker", args = { "--bottle", "w6" } } })
    local slug
    local ev = srv:until_(function(m)
      if m.id == id and m.event == "bottle" then slug = m.slug end
      return m.id == id and ((m.event == "step" and m.step == step) or m.event == "finished")
    end, 60)
    if ev and ev.event == "step" then
      if delay > 0 then cork.sleep(delay) end
      srv:send({ id = "c" .. i, method = "cancel", params = { id = id } })
    end
    local fin = ev and ev.event == "finished" and ev
      or srv:until_(function(m) return m.id == id and m.event == "finished" end, 120)
    if fin and fin.exit_code == 0 then R.cork(h, { "down", slug or "none" }) end
    local left = slug and engine_has(slug) or "no slug"
    local files = R.files(h.env.XDG_STATE_HOME)
    if not fin or (fin.exit_code ~= 130 and fin.exit_code ~= 0) or left ~= "" or files ~= "" then
      leaks[#leaks + 1] = ("serve round %d (cancel %.0f ms into %s, slug %s): exit %s, left [%s], files [%s]")
        :format(i, delay * 1000, step, tostring(slug), tostring(fin and fin.exit_code), left, files)
      R.cork(h, { "down", "--all" })
    end
  end
  T.is(srv:exit_status(), 0, "serve: EOF ends it")
  T.is(table.concat(leaks, "\n"), "", ("serve cancel during network/bundle/agent, %d rounds: nothing left"):format(n))
end

-- 1b. `cork down SLUG` beside a live launch (issue 19.1): ls shows it as
--     starting (19.13), down signals it (an integer pid), waits for its own
--     unwind, and does not race it
do
  local h = R.home("live")
  s:defer(cork.fs.remove, h.dir, { recursive = true, missing_ok = true })
  local p = spawn(h, { "run", "docker", "--bottle", "w6" }, { CORK_FAULT = "pause@agent" })
  local ev, all = until_event(p, function(e) return e.event == "fault_pause" end)
  local slug = slug_in(all) or "none"
  T.ok(ev ~= nil, "live: the launch paused at the agent step (its bundle runs)")
  local ls = R.cork(h, { "ls" })
  local row = R.find(ls.events, { event = "bottle", slug = slug })[1]
  T.is(row and row.status, "starting", "live: ls says starting, not partial, while its cork process works")
  local t = cork.time()
  local dn = R.cork(h, { "down", slug })
  local r = p:wait(30)
  T.is(dn.status, 0, "live: down exits 0", dn.stderr .. dn.stdout)
  T.like(msgs(dn.events), "asking cork process %d+ to stop bottle", "live: down asks the launch to stop (integer pid)")
  T.like(msgs(dn.events), "cork process %d+ stopped it", "live: and says it did")
  T.unlike(dn.stdout .. dn.stderr, "HTTP 409", "live: no race (no 409)")
  T.is(r and r.status, 130, "live: the launch unwound itself: exit 130")
  T.ok(cork.time() - t < 20, ("live: down took %.1f s"):format(cork.time() - t))
  T.is(engine_has(slug), "", "live: the engine lists nothing of it")
  T.is(R.files(h.env.XDG_STATE_HOME), "", "live: no journal left")
end

-- 2. the engine away: cork talks to it through a socat proxy the test stops
--    (every connection dropped) and starts again ------------------------------
local real_sock = (os.getenv("DOCKER_HOST") or ""):match("^unix://(.+)$")
local has_socat = cork.proc.run({ "sh", "-c", "command -v socat" }).status == 0
if not real_sock or not has_socat then
  T.skip("the engine-away cases need a unix DOCKER_HOST and socat")
else
  local h = R.home("away")
  s:defer(cork.fs.remove, h.dir, { recursive = true, missing_ok = true })
  local link = h.dir .. "/engine.sock"
  local proxy
  local function away()
    if not proxy then return end
    local pid = proxy:pid()
    -- the forks serving open connections first (by their parent's pid), then it
    cork.proc.run({ "pkill", "-KILL", "-P", tostring(pid) })
    proxy:kill("KILL"); proxy:wait(5); proxy = nil
    cork.fs.remove(link, { missing_ok = true })
  end
  local function back()
    away()
    proxy = cork.proc.spawn({ "socat", "UNIX-LISTEN:" .. link .. ",fork", "UNIX-CONNECT:" .. real_sock },
      { stdout = "null", stderr = "null" })
    for _ = 1, 100 do if cork.fs.exists(link) then break end; cork.sleep(0.05) end
  end
  back()
  s:defer(away)
  local env = { DOCKER_HOST = "unix://" .. link, CORK_CLEANUP_TIMEOUT = "10" }

  -- during a launch: Ctrl-C after the bundle exists, with the engine away
  local p, errf = spawn(h, { "run", "docker", "--bottle", "w6" }, R.merge(env, { CORK_FAULT = "pause@agent" }))
  local ev, all = until_event(p, function(e) return e.event == "fault_pause" end)
  local slug = slug_in(all) or "none"
  T.ok(ev ~= nil, "away: the launch paused at the agent step")
  away()
  p:kill("INT")
  drain(p)
  local r = p:wait(60)
  T.is(r and r.status, 130, "away: the interrupted launch exits 130")
  local err = cork.fs.read(errf)
  T.like(err, "run `cork down " .. H.pat(slug) .. "` once the engine is back", "away: the message says how to finish")
  T.ok(cork.fs.exists(h.env.XDG_STATE_HOME .. "/cork/" .. slug .. "/journal"), "away: the journal is kept")
  back()
  T.ok(engine_has(slug) ~= "", "away: the engine still has the bottle's network and bundle")
  local ls = R.cork(h, { "ls" }, env)
  local row = R.find(ls.events, { event = "bottle", slug = slug })[1]
  T.ok(row and row.status == "partial" or row and row.status == "stale", "away: ls shows it, to be ended",
    ls.stdout)
  local dn = R.cork(h, { "down", "--all" }, env)
  T.is(dn.status, 0, "away: with the engine back, down --all: exit 0")
  T.is(engine_has(slug), "", "away: the engine lists nothing of it")
  T.is(R.files(h.env.XDG_STATE_HOME), "", "away: no journal left")

  -- during `cork down`
  local up = R.cork(h, { "run", "docker", "--bottle", "w6", "--detach" }, env)
  T.is(up.status, 0, "away: a detached launch", up.stderr)
  slug = (R.find(up.events, { event = "bottle_ready" })[1] or {}).slug or "none"
  away()
  dn = R.cork(h, { "down", slug }, env)
  T.is(dn.status, 1, "away: down with the engine away: exit 1")
  T.like(dn.stderr, "left in place: container cork%-" .. H.pat(slug) .. "%-agent %(Docker is not reachable%)",
    "away: down says what is left and why")
  T.like(dn.stderr, "the journal is kept: run `cork down " .. H.pat(slug) .. "` once the engine is back",
    "away: and how to finish")
  T.ok(cork.fs.exists(h.env.XDG_STATE_HOME .. "/cork/" .. slug .. "/journal"), "away: the journal is kept")
  back()
  dn = R.cork(h, { "down", slug }, env)
  T.is(dn.status, 0, "away: engine back: down exits 0")
  T.like(msgs(dn.events), "removed container cork%-" .. H.pat(slug) .. "%-agent", "away: says what it removed")
  T.is(engine_has(slug), "", "away: nothing of it in the engine")
  T.is(R.files(h.env.XDG_STATE_HOME), "", "away: no journal left")

  -- down of a slug that never existed (issue 19.12)
  dn = R.cork(h, { "down", "no-such-abc123" }, env)
  T.is(dn.status, 1, "down no-such-slug: exit 1")
  T.like(dn.stderr, "no bottle no%-such%-abc123: no journal, and nothing labelled", "down no-such-slug: says so")
end

-- 3. a frozen engine: SIGSTOP on dockerd ------------------------------------
local dir = os.getenv("CORK_DOCKERD_DIR")
local pidf = dir and (dir .. "/dockerd.pid")
if not pidf or not cork.fs.exists(pidf) then
  T.skip("the frozen-engine case needs CORK_DOCKERD_DIR (tests/run-all sets it)")
else
  local dpid = cork.fs.read(pidf):match("%d+")
  local h = R.home("frozen")
  s:defer(cork.fs.remove, h.dir, { recursive = true, missing_ok = true })
  local function thaw() cork.proc.run({ "kill", "-CONT", dpid }) end
  s:defer(thaw)
  local p, errf = spawn(h, { "run", "docker", "--bottle", "w6" }, { CORK_FAULT = "pause@agent", CORK_CLEANUP_TIMEOUT = "3" })
  local ev, all = until_event(p, function(e) return e.event == "fault_pause" end)
  local slug = slug_in(all) or "none"
  T.ok(ev ~= nil, "frozen: the launch paused at the agent step")
  cork.proc.run({ "kill", "-STOP", dpid })
  local t = cork.time()
  p:kill("INT")
  local evs = drain(p)
  local r = p:wait(60)
  local took = cork.time() - t
  thaw()
  T.is(r and r.status, 130, "frozen: exit 130")
  T.ok(took < 12, ("frozen: the cleanup kept to its limit (3 s; took %.1f s)"):format(took))
  local err = cork.fs.read(errf)
  T.like(msgs(evs), "cleanup: removing container cork%-" .. H.pat(slug) .. "%-bundle", "frozen: the cleanup says what it does")
  T.like(err, "CORK_CLEANUP_TIMEOUT", "frozen: a removal cut short names the limit")
  T.like(err, "run `cork down " .. H.pat(slug) .. "` once the engine is back", "frozen: says how to finish")
  T.ok(cork.fs.exists(h.env.XDG_STATE_HOME .. "/cork/" .. slug .. "/journal"), "frozen: the journal is kept")
  local fails = 0
  for _, e in ipairs(evs) do if e.event == "cleanup_failed" then fails = fails + 1 end end
  T.ok(fails >= 1, "frozen: cleanup_failed events (" .. fails .. ")")
  local dn = R.cork(h, { "down", slug })
  T.is(dn.status, 0, "frozen: thawed, down exits 0", dn.stderr .. dn.stdout)
  T.is(engine_has(slug), "", "frozen: nothing of it in the engine")
  T.is(R.files(h.env.XDG_STATE_HOME), "", "frozen: no journal left")
end

-- 4. sixteen concurrent launches, five rounds -------------------------------
do
  local h = R.home("sixteen")
  s:defer(cork.fs.remove, h.dir, { recursive = true, missing_ok = true })
  local fails = {}
  local t = cork.time()
  for round = 1, CROUNDS do
    local ps = {}
    for i = 1, 16 do
      -- sixteen different bottles: sixteen slugs, sixteen subnets to choose
      local name = ("c%d"):format(i)
      cork.fs.write(h.dir .. "/config/cork/bottles/" .. name .. ".yaml", R.BOTTLE)
      ps[i] = cork.proc.spawn({ R.bin, "--json", "run", "docker", "--bottle", name, "--detach" },
        { env = h.env, stdout = h.dir .. "/o" .. i, stderr = h.dir .. "/e" .. i })
    end
    for i = 1, 16 do
      local r = ps[i]:wait(300)
      if not r or r.status ~= 0 then
        fails[#fails + 1] = ("round %d launch %d: exit %s: %s"):format(round, i, tostring(r and r.status),
          (cork.fs.read(h.dir .. "/e" .. i):match("[^\n]*error[^\n]*") or cork.fs.read(h.dir .. "/e" .. i):sub(-300)))
      end
    end
    local dn = R.cork(h, { "down", "--all" })
    if dn.status ~= 0 then fails[#fails + 1] = ("round %d: down --all exit %d: %s"):format(round, dn.status, dn.stderr) end
  end
  T.is(table.concat(fails, "\n"), "", ("16 concurrent launches x %d rounds: no failure"):format(CROUNDS))
  T.diag(("16 concurrent x %d: %.1f s"):format(CROUNDS, cork.time() - t))
  local left = d:networks({ filters = { label = { "cork.slug" } } })
  T.is(#left, 0, "and down --all left no cork network")
end

-- 5. leftovers no journal knows ----------------------------------------------
do
  local h = R.home("orphans")
  s:defer(cork.fs.remove, h.dir, { recursive = true, missing_ok = true })
  local slug = "orphan-zz9zz9"
  local labels = { ["cork.slug"] = slug, ["cork.test"] = H.id }
  d:network_create({ name = "cork-" .. slug .. "-internal", labels = labels })
  local vr = d:request("POST", "/volumes/create", { body = { Name = "cork-" .. slug .. "-vol", Labels = labels } })
  T.is(vr.status, 201, "a labelled volume")
  local ls = R.cork(h, { "ls" })
  local row = R.find(ls.events, { event = "bottle", slug = slug })[1]
  T.ok(row ~= nil, "ls lists a slug that only has a network and a volume", ls.stdout)
  T.is(row and row.status, "stale", "as stale")
  T.like(row and row.hint or "", "cork down " .. H.pat(slug), "with a hint what to do")
  local gc = R.cork(h, { "gc" })
  T.like(msgs(gc.events), "orphaned: " .. H.pat(slug) .. " %(labelled resources, no journal%)", "gc finds it without a journal")
  local dn = R.cork(h, { "down", "--all" })
  T.is(dn.status, 0, "down --all: exit 0", dn.stderr)
  T.like(msgs(dn.events), "removed network cork%-" .. H.pat(slug) .. "%-internal", "down --all removes the network")
  T.like(msgs(dn.events), "volume cork%-" .. H.pat(slug) .. "%-vol", "and the volume")
  T.is(engine_has(slug), "", "the engine lists nothing of it")
end

T.diag(("cancel tests: %.1f s"):format(cork.time() - t0))
s:close()
H.no_leaks(T, d, before)
T.done()
