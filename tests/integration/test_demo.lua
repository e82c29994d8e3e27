-- `cork run demo` (README's first command) against the private engine: the
-- stand-in images, the docker recipe with the embedded demo bottle, the
-- scripted agent's probes and their verdicts, an exit status that matches
-- them, and nothing left afterwards (containers, networks, state, the host
-- canary); the same after SIGTERM in the middle of the probes.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")

local d = H.connect(T)
R.images(d)
local before = H.snapshot(d)
local s <close> = cork.scope("test_demo")
s:defer(function() H.sweep(d) end)

-- A private home whose TMPDIR is its own, so that the host canary a run
-- starts (under $TMPDIR/cork-demo-www.*) is told apart from other runs'.
local function demo_home(name)
  local h = R.home(name)
  h.env.TMPDIR = h.dir .. "/tmp"
  cork.fs.mkdir(h.env.TMPDIR, tonumber("0700", 8))
  return h
end

-- what a demo run left on the engine and on this host
local function leftovers(h)
  local left = {}
  for _, c in ipairs(d:containers({ all = true, filters = { label = { "cork.bottle=demo" } } })) do
    left[#left + 1] = "container " .. c.Names[1]
  end
  for _, n in ipairs(d:networks({ filters = { label = { "cork.bottle=demo" } } })) do left[#left + 1] = "network " .. n.Name end
  for _, c in ipairs(d:containers({ all = true, filters = { label = { "cork.role=canary" } } })) do
    left[#left + 1] = "canary " .. c.Names[1]
  end
  local files = R.files(h.env.XDG_STATE_HOME)
  if files ~= "" then left[#left + 1] = "files " .. files end
  -- this run's canary only (its TMPDIR is the run's own): other runs on the
  -- machine may have theirs up right now
  local ps = cork.proc.run({ "sh", "-c", "ps -eo args | grep -F -- \"$0\" | grep -v grep || true",
    h.env.TMPDIR .. "/cork-demo-www" }).stdout
  if ps ~= "" then left[#left + 1] = "process " .. ps end
  return table.concat(left, "; ")
end

-- 1. --json: events --------------------------------------------------------
do
  local h = demo_home("demo-json")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local r = R.cork(h, { "run", "demo" })
  local probes = R.find(r.events, { event = "demo_probe" })
  local result = R.find(r.events, { event = "demo_result" })[1] or {}
  T.ok(#probes >= 3, ("the agent ran %d probes"):format(#probes), r.stderr)
  local want = { [1] = "reached", [2] = "blocked", [3] = "blocked", [4] = "blocked" }
  local leaks = 0
  for i, p in ipairs(probes) do
    T.is(p.want, want[i], ("probe %d (%s) expects %s"):format(i, p.what, want[i]))
    T.is(p.ok, p.got == p.want, ("probe %d's verdict matches what happened (%s)"):format(i, p.got))
    if p.want == "blocked" and p.got ~= "blocked" then leaks = leaks + 1 end
  end
  T.like(probes[1] and probes[1].what or "", "proxy", "probe 1 is the bundle's proxy")
  T.is(probes[1] and probes[1].got, "reached", "the agent reaches its bundle's proxy")
  T.like(probes[2] and probes[2].what or "", "another network", "probe 2 is the canary on another network")
  T.like(probes[3] and probes[3].what or "", "loopback", "probe 3 is the host loopback canary")
  T.is(result.leaks, leaks, "demo_result counts the leaks the probes show")
  T.is(r.status, (leaks > 0 or (result.broken or 0) > 0) and 1 or 0,
    "the exit status says whether the isolation held (" .. r.status .. ")")
  T.is(leaks, 0, "the isolation holds: the agent reaches no canary")
  T.is(#(result.left or { "?" }), 0, "the demo found nothing left behind")
  T.ok(result.slug and result.slug:match("^demo%-") ~= nil, "the bottle's slug is demo-*: " .. tostring(result.slug))
  T.is(leftovers(h), "", "nothing left: containers, networks, state files, the host canary")
  local steps = {}
  for _, e in ipairs(R.find(r.events, { event = "step" })) do steps[#steps + 1] = e.name or e.step end
  T.like(table.concat(steps, " "), "demo%-images demo%-launch network ca bundle agent .*provision demo%-canaries demo%-probes demo%-teardown",
    "the steps, in order")
end

-- 2. for a human: the progress lines and verdicts --------------------------
do
  local h = demo_home("demo-human")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local r = cork.proc.run({ R.bin, "run", "demo" }, { env = h.env, timeout = 120 })
  local err = r.stderr
  T.is(r.status, 0, "cork run demo: exit 0", err)
  for _, pat in ipairs({ "==> demo%-images", "==> demo%-launch", "==> demo%-canaries", "==> demo%-probes",
    "==> demo%-teardown", "agent: my HTTPS_PROXY is http://", "agent: it answered: pipelock",
    "probe 1 %(its bundle's proxy%): ok: reachable, as it should be",
    "probe 2 %(the canary container on another network%): ok: blocked, as it should be",
    "probe 3 %(the host loopback canary %(127%.0%.0%.1%)%): ok: blocked, as it should be",
    "tearing down bottle demo%-", "removed canary container", "left behind: nothing %(the images",
    "isolation held: %d of %d probes as expected; everything torn down" }) do
    T.like(err, pat, "says: " .. pat:gsub("%%", ""))
  end
  T.ok(not err:find("LEAK", 1, true), "no probe reports a leak")
  T.like(r.stdout, "^[%w%-]*\n?$", "stdout: at most the bottle's slug (as --detach prints it)")
  T.is(leftovers(h), "", "nothing left")
end

-- 3. SIGTERM while the agent probes: everything still goes ------------------
do
  local h = demo_home("demo-term")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local out = h.dir .. "/out"
  local p = cork.proc.spawn({ R.bin, "--json", "run", "demo" },
    { env = R.merge(h.env, { CORK_FAULT = "pause@demo-probes" }), stdout = out, stderr = h.dir .. "/err" })
  local paused = false
  local deadline = cork.time() + 90
  while cork.time() < deadline and p:running() do
    if cork.fs.exists(out) and cork.fs.read(out):find('"fault_pause"', 1, true) then paused = true; break end
    cork.sleep(0.1)
  end
  T.ok(paused, "the demo paused at its probes step")
  T.ok(#d:containers({ filters = { label = { "cork.role=canary" } } }) == 1, "with its canary container running")
  p:kill("TERM")
  local st = p:wait(60)
  T.is(st and st.status, 130, "SIGTERM: exit 130 (interrupted)")
  T.is(leftovers(h), "", "after SIGTERM nothing is left")
end

s:close()   -- T.done() exits: run the defers (sweep, temp dirs) now
H.no_leaks(T, d, before)
T.done()
