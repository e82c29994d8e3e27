-- The launch flows' Lua pieces without Docker: provisioning steps as data,
-- the journal, the alias pool (with a stand-in for Docker's container list),
-- the secrets env file, fault injection.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local fs = cork.fs
local home = fs.tempdir("cork-launch-lib")
-- journal.root() reads XDG_STATE_HOME at call time: point it here
local journal = require "cork.journal"
journal.set_root(home .. "/state/cork")

-- ---- provision ---------------------------------------------------------------
local provision = require "cork.provision"
local steps = provision.defaults()
T.same(steps:names(), { "ca", "prompt", "skills", "git", "supervise", "isolation" }, "stock steps in order")
local ran = {}
local function step(name) return { name = name, run = function() ran[#ran + 1] = name end } end
steps:insert_after("ca", step("tool"))
steps:insert_before("ca", step("first"))
steps:remove("git")
steps:remove("isolation")
steps:replace("prompt", function() ran[#ran + 1] = "my-prompt" end)
T.same(steps:names(), { "first", "ca", "tool", "prompt", "skills", "supervise" }, "insert/remove/replace")
T.raises(function() steps:remove("nope") end, "usage", "no provisioning step named 'nope' %(steps: first, ca, tool",
  "unknown step names the steps there are")
T.raises(function() steps:insert_after("ca", step("tool")) end, "usage", "already exists", "no duplicate names")
T.raises(function() steps:append({ name = "x" }) end, nil, "a step is", "a step needs run")
T.ok(provision.steps ~= steps and #provision.steps:names() == 6, "defaults() is a copy; the stock list is untouched")

local only = provision.list({ step("a"), { name = "boom", run = function() error("kaboom") end }, step("c") })
ran = {}
local err = T.raises(function() only:run({}) end, "provision", "provisioning step 'boom' failed: .*kaboom",
  "a failing step stops the run with kind provision")
T.is(err and err.provision_step, "boom", "and names the step")
T.same(ran, { "a" }, "later steps did not run")
local typed = provision.list({ { name = "typed", run = function() cork.error("exec_failed", "x") end } })
err = T.raises(function() typed:run({}) end, "exec_failed", nil, "a cork error keeps its kind")
T.is(err and err.provision_step, "typed", "with the step name added")
T.is(err and err.message, "provisioning step 'typed' failed: x", "and the step named in its message (issue 19.8)")

-- ---- journal -------------------------------------------------------------------
local j = journal.open("demo-abc123", { backend = "docker", bottle = "demo" })
T.is(fs.stat(journal.dir("demo-abc123")).mode, 448, "state dir is 0700")
j:add("network", "net-1"); j:add("container", "c-1", { role = "bundle" }); j:add("vm", "vm-1")
j:removed("container", "c-1"); j:meta({ alias = "127.0.0.16" })
T.is(fs.stat(journal.path("demo-abc123")).mode, 384, "journal is 0600")
local st = journal.read("demo-abc123")
T.is(st.backend, "docker", "begin line read")
T.is(st.pid, cork.core.pid(), "owner pid")
T.ok(st.owner_alive, "owner alive")
T.same({ st.resources[1].name, st.resources[2].name }, { "net-1", "vm-1" }, "live resources in creation order")
T.is(st.meta.alias, "127.0.0.16", "meta")
j:detached()
st = journal.read("demo-abc123")
T.ok(st.detached and not st.owner_alive, "detached: no longer owned by a running process")
T.same(journal.slugs(), { "demo-abc123" }, "slugs")
fs.append(journal.path("demo-abc123"), "{not json\n")
T.lives(function() journal.read("demo-abc123") end, "a torn last line (crash mid-write) is skipped")
T.raises(function() journal.finish("demo-abc123") end, "cleanup",
  "^bottle demo%-abc123: 2 resources could not be removed %(network net%-1, vm vm%-1%); the journal is kept: "
    .. "run `cork down demo%-abc123` once the engine is back$", "finish keeps a journal that still lists resources")
T.ok(fs.exists(journal.path("demo-abc123")), "the journal stays")
journal.finish("demo-abc123", { force = true })
T.ok(not fs.exists(journal.dir("demo-abc123")), "finish{force} removes the state dir")
T.is(journal.read("demo-abc123"), nil, "no journal: nil")

-- ---- alias pool -------------------------------------------------------------------
local alias = require "cork.alias"
local fake = { list = {} }
function fake:containers() return self.list end
local slugs = {}
for i = 1, 3 do
  slugs[i] = "b" .. i .. "-aaaaaa"
  journal.open(slugs[i], {})
end
T.is(alias.reserve({ docker = fake, slug = slugs[1], first = "127.0.0.16", last = "127.0.0.18" }), "127.0.0.16", "lowest free")
fake.list = { { Ports = { { IP = "127.0.0.17", PrivatePort = 8888, PublicPort = 40000 } }, Labels = { ["cork.slug"] = "other" } } }
T.is(alias.reserve({ docker = fake, slug = slugs[2], first = "127.0.0.16", last = "127.0.0.18" }), "127.0.0.18",
  "skips reserved and published addresses")
local e = T.raises(function() alias.reserve({ docker = fake, slug = slugs[3], first = "127.0.0.16", last = "127.0.0.18" }) end,
  "pool_exhausted", "^alias pool 127%.0%.0%.16%-127%.0%.0%.18 exhausted: 3 bottles hold every address",
  "pool exhausted: clear error")
alias.release("127.0.0.16", slugs[1])
T.is(alias.reserve({ docker = fake, slug = slugs[3], first = "127.0.0.16", last = "127.0.0.18" }), "127.0.0.16", "released address is reused")
journal.finish(slugs[2])
T.is(alias.reserve({ docker = fake, slug = slugs[1], first = "127.0.0.18", last = "127.0.0.18" }), "127.0.0.18",
  "a reservation whose bottle is gone is reclaimed")

-- ---- bottle helpers ------------------------------------------------------------------
local bottle = require "cork.bottle"
T.is(bottle.env_file({ B = "it's", A = "x y" }), "export A='x y'\nexport B='it'\\''s'\n", "env file quotes values")
local r = cork.proc.run(bottle.with_env_file(home .. "/envf", { "sh", "-c", "echo ${A:-unset}" }))
T.is(r.stdout, "unset\n", "with_env_file: a missing file is fine")
fs.write(home .. "/envf", bottle.env_file({ A = "from file; $(not run)" }), { mode = 384 })
r = cork.proc.run(bottle.with_env_file(home .. "/envf", { "sh", "-c", 'echo "$A"' }))
T.is(r.stdout, "from file; $(not run)\n", "with_env_file: sourced, nothing evaluated")
local opts = bottle.parse({ "--bottle", "dev", "--detach" }, "docker")
T.ok(opts.bottle == "dev" and opts.detach, "launch options")
T.raises(function() bottle.parse({ "--detatch" }, "docker") end, "usage", "did you mean %-%-detach", "typo in an option")
T.raises(function() bottle.parse({}, "docker") end, "usage", "needs %-%-bottle", "a bottle is required")

-- fault injection reads CORK_FAULT
fs.write(home .. "/fault.lua", 'require("cork.bottle").fault("network")')
r = cork.proc.run({ os.getenv("CORK_BIN"), "script", home .. "/fault.lua" }, { env = { CORK_FAULT = "docker@network" } })
T.is(r.status, 1, "CORK_FAULT=docker@STEP fails the step")
T.like(r.stderr, "injected Docker error at step network", "with a Docker-shaped error")
r = cork.proc.run({ os.getenv("CORK_BIN"), "script", home .. "/fault.lua" }, { env = { CORK_FAULT = "docker@ca" } })
T.is(r.status, 0, "other steps are not affected")

-- a failing provisioning step is named in the message and the failed event (19.8)
fs.write(home .. "/step.lua", [[
require("cork.provision").list({ { name = "tools", run = function(ctx)
  cork.error("exec_failed", "'apt-get' in cork-x-agent exited with status 100: E: no network")
end } }):run({})]])
r = cork.proc.run({ os.getenv("CORK_BIN"), "--json", "script", home .. "/step.lua" })
local failed
for line in r.stdout:gmatch("[^\n]+") do
  local ok, ev = pcall(cork.json.decode, line)
  if ok and ev.event == "failed" then failed = ev end
end
T.is(r.status, 1, "a failing step: exit 1")
T.is(failed and failed.provision_step, "tools", "the failed event names the step")
T.is(failed and failed.msg, "provisioning step 'tools' failed: 'apt-get' in cork-x-agent exited with status 100: E: no network",
  "and so does its message")
T.is(failed and failed.kind, "exec_failed", "with the step's own kind")

-- cork.bottle is a thin re-export: each function lives in one home
local launch, dryrun, teardown = require "cork.launch", require "cork.dryrun", require "cork.teardown"
for _, k in ipairs({ "OPTIONS", "parse", "inline", "load", "fault", "step", "env_file", "with_env_file" }) do
  T.ok(launch[k] ~= nil and bottle[k] == launch[k], "cork.bottle." .. k .. " is cork.launch's")
end
for _, k in ipairs({ "recorder", "docker", "smolvm" }) do
  T.ok(dryrun[k] ~= nil and bottle[k] == dryrun[k], "cork.bottle." .. k .. " is cork.dryrun's")
end
for _, k in ipairs({ "remove", "down" }) do
  T.ok(teardown[k] ~= nil and bottle[k] == teardown[k], "cork.bottle." .. k .. " is cork.teardown's")
end

fs.remove(home, { recursive = true })
T.done()
