-- docs/getting-started.md, followed as written against the private engine:
-- `cork run standin --bottle first`, plan, an attached launch whose agent
-- exits 3 (cork exits 3), a detached one with attach --print and down; and
-- the missing-image errors pointing at that page (issue 19.15, 19.7).
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local fs = cork.fs

local d = H.connect(T)
R.images(d)
local before = H.snapshot(d)
local dir = fs.tempdir("cork-getting-started")
local s <close> = cork.scope("test_getting_started")
s:defer(function() H.sweep(d) end)
s:defer(fs.remove, dir, { recursive = true })
local env = { XDG_CONFIG_HOME = dir .. "/config", XDG_STATE_HOME = dir .. "/state", HOME = dir .. "/home" }
fs.mkdir(dir .. "/home", "0700")

-- 1. images and a bottle
local r = R.cork({ env = env }, { "run", "standin", "--bottle", "first" })
T.is(r.status, 0, "cork run standin --bottle first: exit 0", r.stderr)
local bf = dir .. "/config/cork/bottles/first.yaml"
T.ok(fs.exists(bf), "it wrote the bottle " .. bf)
T.is(#R.find(r.events, { event = "standin_image" }), 2, "and built (or found) both stand-in images")
r = R.cork({ env = env }, { "run", "standin", "--bottle", "first" })
T.is(r.status, 1, "a second time: exit 1")
T.like((R.find(r.events, { event = "failed" })[1] or {}).msg, "first%.yaml exists: pick another %-%-bottle name",
  "it never overwrites a bottle")

-- 2. the bottle loads
r = cork.proc.run({ R.bin, "plan", "--bottle", "first" }, { env = R.merge(env, {}) })
T.is(r.status, 0, "cork plan --bottle first: exit 0", r.stderr)

-- 3. an attached launch: the agent's status is cork's (script(1) is the terminal)
local have_script = cork.proc.run({ "sh", "-c", "command -v script" }).status == 0
if not have_script then T.skip("script(1) not installed", 2) else
  r = cork.proc.run({ "script", "-qec", R.bin .. " run docker --bottle first", "/dev/null" },
    { env = env, stdin = "echo in=$(pwd)\nexit 3\n", timeout = 120 })
  T.is(r.status, 3, "an attached launch exits with the agent's status (3)", r.stdout)
  T.like(r.stdout, "in=/home/agent", "the agent's shell starts in its home")
end

-- detached: attach --print is a shell line, down ends it
r = R.cork({ env = env }, { "run", "docker", "--bottle", "first", "--detach" })
T.is(r.status, 0, "--detach: exit 0", r.stderr)
local slug = (R.find(r.events, { event = "bottle" })[1] or {}).slug or "none"
local p = cork.proc.run({ R.bin, "attach", slug, "--print" }, { env = env })
T.like(p.stdout, "^docker %-H [^\n]* exec %-it %-u agent %-w /home/agent cork%-" .. H.pat(slug) .. "%-agent sh\n$",
  "attach --print: the command to run")
p = cork.proc.run({ R.bin, "attach", slug }, { env = env })
T.is(p.status, 1, "attach without a terminal: exit 1")
T.like(p.stderr, "cork attach needs a terminal, and stdin is not one", "with a message saying so")
r = R.cork({ env = env }, { "down", slug })
T.is(r.status, 0, "cork down: exit 0")
T.is(R.engine_left(d, slug), 0, "nothing of the bottle is left")

-- the missing-image errors point at the way to get one
fs.write(dir .. "/config/cork/bottles/nobundle.yaml", "agent: { provider: custom, image: " .. R.AGENT
  .. ", command: [sh] }\nbundle: { image: cork-no-such-bundle:latest }\n")
fs.write(dir .. "/config/cork/bottles/noagent.yaml", "agent: { provider: custom, image: cork-no-such-agent:latest"
  .. ", command: [sh] }\nbundle: { image: " .. R.BUNDLE .. " }\n")
r = R.cork({ env = env }, { "run", "docker", "--bottle", "nobundle", "--detach" })
local f = R.find(r.events, { event = "failed" })[1] or {}
T.like(f.msg or "", "^bundle image cork%-no%-such%-bundle:latest not found in the Docker engine %(set bundle%.image "
  .. "in the bottle, CORK_BUNDLE_IMAGE, or %-%-bundle%-image%): `cork run bundle` builds cork's bundle image "
  .. "%(`cork run standin`: stand%-ins that filter nothing, to try cork quickly%); see docs/getting%-started%.md$",
  "a missing bundle image: where to get one (the real bundle, and the stand-ins)")
r = R.cork({ env = env }, { "run", "docker", "--bottle", "noagent", "--detach" })
f = R.find(r.events, { event = "failed" })[1] or {}
T.like(f.msg or "", "^agent image cork%-no%-such%-agent:latest not found in the Docker engine %(set agent%.image in "
  .. "the bottle, or %-%-image%): build or load your agent's image .*`cork run standin`.*getting%-started%.md$",
  "a missing agent image: where to get one")

s:close()
H.no_leaks(T, d, before)
T.done()
