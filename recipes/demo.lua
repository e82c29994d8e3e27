-- demo: a bottle on the docker recipe (stand-in images) and what its agent can and cannot reach
--
-- usage: cork run demo
--
-- README's first command (`make demo` runs it against a private engine when
-- no Docker engine answers). It builds the stand-in images (cork.standin:
-- busybox-static, no registry), launches the stock docker recipe with a
-- bottle embedded below, and lets a scripted agent try, one by one:
--   its bundle's proxy                        it should reach it
--   a canary container on another network     it should not
--   a canary on the host's loopback           it should not (directly, nor
--                                             through its network's gateway)
-- Then it tears everything down and checks that nothing is left.
-- Traffic goes only to loopback and to the containers this demo creates.
-- Exit status: 0 the isolation held; 1 a probe that should fail succeeded
-- (or the agent could not reach its own proxy); the usual codes otherwise.
local cork = require "cork"
local log = require "cork.log"
local args = require "cork.args"
local plan = require "cork.plan"
local journal = require "cork.journal"
local bottle = require "cork.bottle"
local provision = require "cork.provision"
local recipes = require "cork.recipes"
local standin = require "cork.standin"

local USAGE = "cork run demo"
local opts = args.parse({ ... }, { help = "boolean" }, { usage = USAGE })
if opts.help then print("usage: " .. USAGE); return 0 end

-- The demo's bottle lives here, not in your config dir: the stand-in images,
-- no egress routes (so the agent's first hop is pipelock), no secrets.
local BOTTLE = ([[
description: cork's demo bottle (stand-in images; nothing real is filtered)
agent:
  provider: custom
  image: %s
  command: [sh]
  user: agent
  home: /home/agent
bundle:
  image: %s
]]):format(standin.AGENT, standin.BUNDLE)

-- The scripted agent: tries one address and says what happened. It runs in
-- the agent container as the agent user; nc because busybox-static's wget
-- crashes in containers.
local AGENT_SCRIPT = [[#!/bin/sh
# cork demo agent: try to talk to one address; say what happened
what=$1; host=$2; port=$3
if [ "$host" = proxy ]; then
  hp=${HTTPS_PROXY#http://}; hp=${hp%/}; host=${hp%:*}; port=${hp##*:}
  echo "agent: my HTTPS_PROXY is $HTTPS_PROXY"
fi
echo "agent: connecting to $what at $host:$port"
out=$(printf 'GET / HTTP/1.0\r\n\r\n' | timeout 3 nc "$host" "$port" 2>/tmp/nc.err | tail -n 1)
if [ -n "$out" ]; then
  echo "agent: it answered: $out"; echo "RESULT reached"
else
  err=$(head -n 1 /tmp/nc.err); echo "agent: no answer${err:+ ($err)}"; echo "RESULT blocked"
fi
]]
local AGENT_PATH = "/home/agent/demo-agent"

local d = require("cork.docker").connect()
local ok_ping, perr = pcall(d.ping, d)
if not ok_ping then
  cork.error("docker", ("no Docker engine answers at %s: %s (`make demo` starts a private one)")
    :format(os.getenv("DOCKER_HOST") or "unix:///var/run/docker.sock", tostring(perr)))
end
local run_id = plan.random_suffix(6)
local results, slug = {}, nil

local function http_get_host(host, port)
  local bb = standin.busybox()
  local r = cork.proc.run({ bb, "sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 "$2" nc "$0" "$1" | tail -n 1',
    host, tostring(port), bb })
  return (r.stdout:gsub("%s+$", ""))
end

do
  local s <close> = cork.scope("demo")

  -- 1. Images, built here from busybox-static (kept afterwards: rebuilding
  --    is skipped while their content label matches).
  bottle.step("demo-images", "stand-in bundle and agent images")
  local bundle_image, agent_image = standin.images(d)
  log.info(("stand-in images ready: %s, %s"):format(bundle_image, agent_image))

  -- 2. The bottle, by the stock docker recipe, detached so the demo can
  --    drive its agent. A provisioning step of the demo's own installs the
  --    agent's script, and tells the demo the bottle's slug while the
  --    launch still owns it: the demo's `cork down` is registered before
  --    the launch hands the bottle over.
  bottle.step("demo-launch", "the docker recipe with the demo bottle")
  s:defer(function()
    if not slug then return end
    log.info(("tearing down bottle %s (cork down)"):format(slug))
    local gone = bottle.down(slug, { docker = d })
    for _, what in ipairs(gone) do log.info("removed " .. what) end
  end)
  provision.steps:append({ name = "demo-agent", run = function(ctx)
    slug = ctx.slug
    ctx:write(AGENT_PATH, AGENT_SCRIPT, { mode = "0755", owner = ctx.provider.user })
  end })
  local rc = recipes.run("docker", { "--detach", { bottle = bottle.inline(BOTTLE, "demo", "<cork demo bottle>.yaml") } })
  if rc ~= 0 or not slug then cork.error("demo", ("the docker recipe did not leave a bottle (status %s)"):format(rc)) end
  local agent = plan.names(slug).agent
  local j = journal.attach(slug)
  local internal = d:network_inspect(plan.names(slug).internal_network)
  local gateway = internal.IPAM and internal.IPAM.Config and internal.IPAM.Config[1]
    and internal.IPAM.Config[1].Gateway

  -- 3. Canaries: servers the agent must not reach. One container on a
  --    network of its own; one on this host's loopback. Both are
  --    journalled in the bottle's journal, so `cork down SLUG` ends the
  --    canary container even after a kill -9 of this demo.
  bottle.step("demo-canaries", "a container on another network, a server on the host's loopback")
  local cname, cnet = "cork-" .. slug .. "-canary", "cork-" .. slug .. "-canary-net"
  local labels = { ["cork.slug"] = slug, ["cork.role"] = "canary", ["cork.demo"] = run_id }
  local sub = plan.pick_subnet(cnet, plan.docker_subnets(d))
  j:add("network", cnet, { role = "canary" })
  s:defer(function() bottle.remove.network(d, cnet, j); log.info("removed canary network " .. cnet) end)
  d:network_create({ name = cnet, labels = labels, subnet = sub.subnet, gateway = sub.gateway })
  j:add("container", cname, { role = "canary" })
  s:defer(function() bottle.remove.container(d, cname, j); log.info("removed canary container " .. cname) end)
  d:container_create({ name = cname, image = bundle_image, labels = labels, init = true,
    entrypoint = { "/bin/sh", "-c", 'mkdir -p /tmp/www && echo canary-container > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www' },
    networks = { { name = cnet, ip = sub.bundle_ip } } })
  d:container_start(cname)
  local canary_up
  for _ = 1, 50 do
    canary_up = d:exec(cname, { "sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 2 nc 127.0.0.1 8080 | tail -n 1' }).stdout
    if canary_up:find("canary", 1, true) then break end
    cork.sleep(0.1)
  end
  if not canary_up:find("canary", 1, true) then cork.error("demo", "the canary container does not serve") end
  log.info(("canary container %s serves on %s:8080 (network %s, %s)"):format(cname, sub.bundle_ip, cnet, sub.subnet))

  -- the host canary: busybox httpd on 127.0.0.1, bounded by timeout(1) so
  -- that even a killed demo does not leave it running for long
  local www = cork.fs.tempdir("cork-demo-www")
  s:defer(cork.fs.remove, www, { recursive = true, missing_ok = true })
  cork.fs.write(www .. "/index.html", "canary-host-loopback\n")
  local hport
  for i = 0, 19 do
    local port = 47000 + (cork.core.pid() * 7 + i * 131) % 9000
    local p = cork.proc.spawn({ "timeout", "900", standin.busybox(), "httpd", "-f", "-p", "127.0.0.1:" .. port, "-h", www },
      { stdout = "null", stderr = "null" })
    s:defer(function()
      if p:running() and port == hport then log.info(("stopped the host canary on 127.0.0.1:%d"):format(port)) end
      p:close(1)
    end)
    for _ = 1, 20 do
      if http_get_host("127.0.0.1", port):find("canary", 1, true) then hport = port; break end
      if not p:running() then break end
      cork.sleep(0.05)
    end
    if hport then break end
    p:close(1)
  end
  if not hport then cork.error("demo", "could not start the host loopback canary (busybox httpd)") end
  log.info(("host canary serves on 127.0.0.1:%d (checked from the host)"):format(hport))

  -- 4. The scripted agent, probe by probe; the verdict is the demo's.
  bottle.step("demo-probes", "what the agent can reach, and what it cannot")
  local probes = {
    { what = "its bundle's proxy", host = "proxy", port = 0, want = "reached" },
    { what = "the canary container on another network", host = sub.bundle_ip, port = 8080, want = "blocked" },
    { what = "the host loopback canary (127.0.0.1)", host = "127.0.0.1", port = hport, want = "blocked" },
  }
  if gateway and gateway ~= "" then
    probes[#probes + 1] = { what = "the host loopback canary through its network's gateway", host = gateway,
      port = hport, want = "blocked" }
  end
  for i, pr in ipairs(probes) do
    local r = d:exec(agent, { "sh", AGENT_PATH, pr.what, pr.host, tostring(pr.port) }, { user = "agent" })
    local got = r.stdout:match("RESULT (%a+)") or "error"
    for line in r.stdout:gmatch("[^\n]+") do
      if not line:match("^RESULT ") then log.info(line) end
    end
    local good = got == pr.want
    local verdict
    if good then
      verdict = pr.want == "reached" and "ok: reachable, as it should be" or "ok: blocked, as it should be"
    elseif pr.want == "reached" then
      verdict = "FAIL: the agent cannot reach its own proxy"
    else
      verdict = "LEAK: the agent reached what it must not"
    end
    results[i] = { what = pr.what, host = pr.host, port = pr.port, want = pr.want, got = got, ok = good }
    log.event("demo_probe", { index = i, what = pr.what, want = pr.want, got = got, ok = good })
    if good then log.info(("probe %d (%s): %s"):format(i, pr.what, verdict))
    else log.warn(("probe %d (%s): %s"):format(i, pr.what, verdict)) end
  end
  bottle.step("demo-teardown", "cork down, canaries")
  -- the scope's cleanups now run, in reverse: the host canary, the canary
  -- container and network, the bottle (cork down)
end

-- 5. Nothing may be left: no container or network of the bottle or of the
--    canaries, no state dir.
local left = {}
if slug then
  for _, f in ipairs({ "cork.slug=" .. slug, "cork.demo=" .. run_id }) do
    for _, c in ipairs(d:containers({ all = true, filters = { label = { f } } })) do
      left[#left + 1] = "container " .. ((c.Names or {})[1] or c.Id)
    end
    for _, n in ipairs(d:networks({ filters = { label = { f } } })) do left[#left + 1] = "network " .. n.Name end
  end
  if cork.fs.exists(journal.dir(slug)) then left[#left + 1] = "state dir " .. journal.dir(slug) end
end
local leaks, broken = 0, 0
for _, r in ipairs(results) do
  if not r.ok then
    if r.want == "blocked" then leaks = leaks + 1 else broken = broken + 1 end
  end
end
log.event("demo_result", { slug = slug, probes = #results, leaks = leaks, broken = broken, left = left })
if #left > 0 then
  log.warn("left behind: " .. table.concat(left, ", "))
else
  log.info(("left behind: nothing (the images %s and %s stay; remove them with "
    .. "`docker image rm %s %s`)"):format(standin.BUNDLE, standin.AGENT, standin.BUNDLE, standin.AGENT))
end
if leaks == 0 and broken == 0 and #left == 0 then
  log.info(("isolation held: %d of %d probes as expected; everything torn down"):format(#results, #results))
  return 0
end
if leaks > 0 then
  log.warn(("isolation did NOT hold: %d probe(s) reached what the agent must not reach"):format(leaks))
end
if broken > 0 then log.warn("the agent could not reach its own bundle's proxy") end
return 1
