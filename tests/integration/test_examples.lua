-- recipes/examples/ against the private engine with the stand-in images:
-- add-tool (a step inserted after ca, the tool usable by the agent), no-git
-- (a bottle whose git step fails in the stock recipe launches without it),
-- probe-bundle (only a bundle, every daemon's port answering, then nothing
-- left); each listed by `cork recipes` and run by its embedded name.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")

local d = H.connect(T)
R.images(d)
local before = H.snapshot(d)
local s <close> = cork.scope("test_examples")
s:defer(function() H.sweep(d) end)

local PLAIN = ("agent: { provider: custom, image: %s, command: [sh] }\nbundle: { image: %s }\n"):format(R.AGENT, R.BUNDLE)
local GITUSER = PLAIN .. "git:\n  user: { name: Ex Bot, email: ex@example.com }\n"

local function home(name)
  local h = R.home(name, PLAIN)
  cork.fs.write(h.dir .. "/config/cork/bottles/gituser.yaml", GITUSER)
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  return h
end
local function slug_of(r) return (R.find(r.events, { event = "bottle" })[1] or {}).slug or "none" end
local function provisioned(r)
  local out = {}
  for _, e in ipairs(r.events) do if e.provision then out[#out + 1] = e.provision end end
  return table.concat(out, " ")
end
local function nothing_left(h, slug, what)
  T.is(R.engine_left(d, slug), 0, what .. ": no container or network of " .. slug)
  T.is(R.files(h.env.XDG_STATE_HOME), "", what .. ": no state file left")
end

-- listed, by their embedded names
do
  local h = home("list")
  local r = cork.proc.run({ R.bin, "recipes" }, { env = h.env })
  for _, n in ipairs({ "add-tool", "no-git", "probe-bundle" }) do
    T.like(r.stdout, "\nexamples/" .. H.pat(n) .. " ", "cork recipes lists examples/" .. n)
  end
end

-- add-tool ------------------------------------------------------------------
do
  local h = home("add-tool")
  local r = R.cork(h, { "run", "examples/add-tool", "--bottle", "w6", "--detach" })
  local slug = slug_of(r)
  T.is(r.status, 0, "examples/add-tool --detach: exit 0", r.stderr)
  T.is(provisioned(r), "ca tools prompt skills git supervise isolation", "the tools step runs right after ca")
  local e = d:exec("cork-" .. slug .. "-agent", { "sh", "-c", "PATH=$PATH:/usr/local/bin; cork-hello" }, { user = "agent" })
  T.is(e.stdout, "hello from agent: installed by examples/add-tool\n", "the agent runs the installed tool")
  local dn = R.cork(h, { "down", slug })
  T.is(dn.status, 0, "cork down: exit 0")
  nothing_left(h, slug, "add-tool")
  -- the backend word is optional and chosen by the first argument
  local dry = R.cork(h, { "run", "examples/add-tool", "docker", "--bottle", "w6", "--dry-run" })
  T.is(dry.status, 0, "examples/add-tool docker --dry-run: exit 0", dry.stderr)
  local bad = R.cork(h, { "run", "examples/add-tool", "--bottel", "w6" })
  T.is(bad.status, 2, "a misspelt option: exit 2")
  T.like(bad.stderr, "did you mean %-%-bottle", "and the stock recipe's usage error")
end

-- no-git --------------------------------------------------------------------
do
  local h = home("no-git")
  -- the stand-in agent has no git: the stock git step fails on this bottle...
  local stock = R.cork(h, { "run", "docker", "--bottle", "gituser", "--detach" })
  T.is(stock.status, 1, "stock docker recipe with a git user and no git in the image: exit 1")
  local failed = R.find(stock.events, { event = "failed" })[1] or {}
  T.like(failed.msg or "", "'git' in cork%-gituser%-%w+%-agent exited", "the git step failed", stock.stdout)
  T.like(provisioned(stock), " git$", "at the git step")
  nothing_left(h, slug_of(stock), "stock launch failed at git")
  -- ...and no-git launches it without that step
  local r = R.cork(h, { "run", "examples/no-git", "--bottle", "gituser", "--detach" })
  local slug = slug_of(r)
  T.is(r.status, 0, "examples/no-git --detach: exit 0", r.stderr)
  T.is(provisioned(r), "ca prompt skills supervise isolation", "no git step")
  T.is(R.cork(h, { "down", slug }).status, 0, "cork down: exit 0")
  nothing_left(h, slug, "no-git")
end

-- probe-bundle --------------------------------------------------------------
do
  local h = home("probe")
  local r = R.cork(h, { "run", "examples/probe-bundle" })
  T.is(r.status, 0, "examples/probe-bundle: exit 0", r.stderr)
  local probes = R.find(r.events, { event = "probe" })
  local got = {}
  for _, p in ipairs(probes) do got[#got + 1] = p.daemon .. "=" .. p.answer end
  T.is(table.concat(got, " "), "pipelock=pipelock egress=egress git-gate=git-gate supervise=supervise",
    "every daemon's published port answers with its name")
  for _, p in ipairs(probes) do
    T.ok((tonumber(p.host_port) or 0) > 0, p.daemon .. ": a host port Docker picked")
  end
  local lines = {}
  for _, e in ipairs(r.events) do if e.msg then lines[#lines + 1] = e.msg end end
  local text = table.concat(lines, "\n")
  T.like(text, "bundle: env%-name: CORK_DAEMONS", "the bundle's log is shown (env names)")
  T.like(text, "bundle: contract: pipelock config /etc/cork/pipelock/pipelock.yaml mounted", "configs mounted")
  T.is(#d:containers({ all = true, filters = { label = { "cork.bottle=probe" } } }), 0, "no probe container left")
  T.is(#d:networks({ filters = { label = { "cork.bottle=probe" } } }), 0, "no probe network left")
  T.is(R.files(h.env.XDG_STATE_HOME), "", "no state file left")
end

-- the stand-in bundle logs env names, never a value, even a multi-line one
do
  local c = d:container_create({ name = H.name("names"), image = R.BUNDLE, labels = H.labels,
    env = { CORK_DAEMONS = "pipelock", EGRESS_TOKEN_1 = "line-one\nLEAKED_NAME=x-W6SECRET\nline-three" } })
  d:container_start(c)
  local logs = ""
  for _ = 1, 50 do
    local l = d:container_logs(c)
    logs = l.stdout .. l.stderr
    if logs:find("\nready\n", 1, true) then break end
    cork.sleep(0.1)
  end
  T.like(logs, "env%-name: EGRESS_TOKEN_1\n", "stand-in: the token's name is logged")
  T.ok(not logs:find("W6SECRET", 1, true) and not logs:find("LEAKED_NAME", 1, true) and not logs:find("line%-"),
    "stand-in: no part of a multi-line value is", logs)
  d:container_remove(c, { force = true })
end

s:close()   -- T.done() exits: run the defers (sweep, temp dirs) now
H.no_leaks(T, d, before)
T.done()
