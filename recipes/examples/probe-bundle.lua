-- examples/probe-bundle: a one-off experiment: start only a bundle, probe its ports, clean up
--
-- usage: cork run examples/probe-bundle [--image REF]
--
-- Starts a bundle container (default: the stand-in image, built from
-- busybox-static if needed) with every daemon of the contract (pipelock,
-- egress, git-gate, supervise), its configs and CAs mounted as a launch
-- mounts them, publishes each daemon's port on 127.0.0.1 (Docker picks the
-- host ports), asks each one for `GET /` from the host, prints what came
-- back, shows the bundle's log, and removes it all. No agent, no bottle
-- file. The same library the stock recipes use (cork.launch, cork.plan), so
-- it works with a real bundle image too (--image).
--
-- Everything is journalled and on the scope: Ctrl-C cleans up, and after a
-- kill -9 `cork down SLUG` does. Exit 1 when a daemon's port does not answer.
local cork = require "cork"
local log = require "cork.log"
local args = require "cork.args"
local bottle = require "cork.bottle"
local launch = require "cork.launch"
local journal = require "cork.journal"
local standin = require "cork.standin"

local USAGE = "cork run examples/probe-bundle [--image REF]"
local opts = args.parse({ ... }, { image = "string", help = "boolean" }, { usage = USAGE })
if opts.help then print("usage: " .. USAGE); return 0 end

-- A bottle held here: a git remote and supervise, so that every daemon runs
-- (nothing is fetched: the experiment only opens the bundle's ports).
local BOTTLE = [[
agent: { provider: custom, image: unused, command: [sh] }
git:
  remotes:
    # resolved inside the bundle to its own loopback, where nothing listens:
    # a real git-gate's first fetch fails at once, with no lookup elsewhere
    - { name: app, url: "https://git.example.invalid/acme/app.git", extra_hosts: ["git.example.invalid:127.0.0.1"] }
supervise: true
]]

local d = require("cork.docker").connect()
local image = opts.image or standin.bundle_image(d)
local ctx = launch.prepare({ inline_bottle = bottle.inline(BOTTLE, "probe"), bundle_image = image }, "docker")
local p = ctx.plan
-- The plan is a plain table: an experiment may change it. Publish every
-- daemon's port, not only the agent-facing ones a launch publishes.
p.bundle.publish = p.daemons

local s <close> = cork.scope("probe " .. p.slug)
local j = journal.open(p.slug, { backend = "docker", bottle = "probe" })
s:defer(journal.finish, p.slug)
log.step("network", { detail = ("network %s (%s)"):format(p.names.network, p.network.subnet) })
launch.network(s, j, ctx)
log.step("ca", { detail = "CAs and daemon configs" })
launch.cas_and_configs(ctx)
log.step("bundle", { detail = ("bundle %s from %s (%s)"):format(p.names.bundle, image, table.concat(p.daemons, ", ")) })
launch.bundle(s, j, ctx, { host_ip = "127.0.0.1", networks = { { name = p.names.network, ip = p.bundle.ip } } })

-- One GET per daemon from the host, retried while the bundle starts.
log.step("probe", { detail = "GET / on each daemon's published port" })
local busybox = standin.busybox()
-- A real git-gate speaks git://, not HTTP: when GET gets no answer there, it
-- gets a git upload-pack request (a git daemon advertises the mirror's refs).
local function ask(port, req)
  local r = cork.proc.run({ busybox, "sh", "-c",
    'printf "$2" | timeout 2 "$0" nc 127.0.0.1 "$1" 2>/dev/null | tr -d "\\000" | tail -n 1', busybox, tostring(port), req })
  return (r.stdout:gsub("%s+$", ""))
end
local function get(port, daemon)
  local answer = ask(port, "GET / HTTP/1.0\\r\\n\\r\\n")
  if answer == "" and daemon == "git-gate" then answer = ask(port, "002cgit-upload-pack /app.git\\0host=localhost\\0") end
  return answer
end
local failed = 0
for _, daemon in ipairs(p.daemons) do
  local cport = p.bundle.ports[daemon]
  local hport = d:host_port(p.names.bundle, cport, "127.0.0.1")
  local answer = ""
  local deadline = cork.time() + 30   -- a real bundle's mitmdump takes seconds to start
  repeat
    answer = get(hport, daemon)
    if answer == "" then cork.sleep(0.2) end
  until answer ~= "" or cork.time() > deadline
  log.event("probe", { daemon = daemon, container_port = cport, host_port = hport, answer = answer })
  if answer ~= "" then
    log.info(("%-9s port %-4d -> 127.0.0.1:%-5d answered: %s"):format(daemon, cport, hport, answer))
  else
    failed = failed + 1
    log.warn(("%-9s port %-4d -> 127.0.0.1:%-5d no answer"):format(daemon, cport, hport))
  end
end

-- What the bundle says about itself (the stand-in logs env names, never values).
local logs = d:container_logs(p.names.bundle, { tail = 40 })
for line in (logs.stdout .. logs.stderr):gmatch("[^\n]+") do log.info("bundle: " .. line) end

log.step("cleanup", { detail = "removing the bundle and its network" })
return failed == 0 and 0 or 1
