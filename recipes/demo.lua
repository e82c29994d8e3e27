-- demo: a bottle on the docker recipe, what its bundle filters, and what its agent can and cannot reach
--
-- usage: cork run demo [--standin]
--
-- README's first command (`make demo` runs it against a private engine when
-- no Docker engine answers). It builds the real bundle (cork-bundle:latest,
-- `cork run bundle --from-apt`: minutes the first time, then cached) and the
-- stand-in agent image (busybox-static), launches the stock docker recipe
-- with a bottle embedded below, and lets a scripted agent try, one by one:
--   its bundle's proxy                        it should reach it
--   an egress route (api.demo)                the real credential is injected
--                                             on the wire; the agent holds a
--                                             placeholder
--   a host off the allowlist (other.demo)     refused by the filter
--   a secret sent to an allowed host          blocked by the filter's DLP
--   a canary container on another network     it should not reach it
--   a canary on the host's loopback           it should not (directly, nor
--                                             through its network's gateway)
-- The demo's upstream (api.demo, open.demo, other.demo) is a container of
-- its own. When the real bundle cannot be built (not root, no debootstrap,
-- no Debian archive) or with --standin, the demo says so and why, and runs
-- with the stand-in bundle, which filters nothing: the filtering probes are
-- then skipped. Then it tears everything down and checks nothing is left.
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

local USAGE = "cork run demo [--standin]"
local opts = args.parse({ ... }, { help = "boolean", standin = "boolean" }, { usage = USAGE })
if opts.help then print("usage: " .. USAGE); return 0 end
local bundle = require "cork.bundle"

-- The demo's bottle lives here, not in your config dir. With the real
-- bundle: one egress route (api.demo, bearer credential from the demo's own
-- token, only /v1), one more allowed host (open.demo); the names map to the
-- demo's upstream container, whose network the filter may dial.
local function bottle_text(bundle_image, up)
  if not up then
    return ([[
description: cork's demo bottle (the stand-in bundle; nothing is filtered)
agent:
  provider: custom
  image: %s
  command: [sh]
  user: agent
  home: /home/agent
bundle:
  image: %s
]]):format(standin.AGENT, bundle_image)
  end
  return ([[
description: cork's demo bottle (the real bundle)
agent:
  provider: custom
  image: %s
  command: [sh]
  user: agent
  home: /home/agent
egress:
  routes:
    - { host: api.demo, auth: bearer, token_ref: CORK_DEMO_TOKEN, paths: [/v1] }
allowlist: [open.demo]
bundle:
  image: %s
  extra_hosts: ["api.demo:%s", "open.demo:%s", "other.demo:%s"]
  ip_allowlist: ["%s"]
]]):format(standin.AGENT, bundle_image, up.ip, up.ip, up.ip, up.subnet)
end

-- The demo's upstream (python3 in the real bundle image): answers each
-- request with its method, path, and a fingerprint of the Authorization it
-- got (never the value: the agent reads this answer).
local UPSTREAM = [[
import hashlib, http.server
class H(http.server.BaseHTTPRequestHandler):
    def go(self):
        n = int(self.headers.get("content-length") or 0)
        if n: self.rfile.read(n)
        a = self.headers.get("authorization")
        fp = hashlib.sha256(a.encode()).hexdigest()[:12] if a else "none"
        out = ("upstream %s got %s %s authorization=%s\n" % (self.headers.get("host"), self.command, self.path, fp)).encode()
        self.send_response(200); self.send_header("content-length", str(len(out))); self.end_headers(); self.wfile.write(out)
    do_GET = do_POST = go
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("0.0.0.0", 80), H).serve_forever()
]]

-- The HTTP agent: one request through its proxy (HTTP_PROXY), the answer's
-- status line and last line.
local HTTP_AGENT_SCRIPT = [[#!/bin/sh
# cork demo agent: METHOD URL [HEADER] [BODY], through $HTTP_PROXY
method=$1; url=$2; header=$3; body=$4
hp=${HTTP_PROXY#http://}; hp=${hp%/}; host=${hp%:*}; port=${hp##*:}
hosthdr=${url#http://}; hosthdr=${hosthdr%%/*}
echo "agent: $method $url${header:+ with $header}${body:+ and a body}"
req="$method $url HTTP/1.0\r\nHost: $hosthdr\r\n"
[ -n "$header" ] && req="$req$header\r\n"
[ -n "$body" ] && req="${req}Content-Length: ${#body}\r\n"
# stdin stays open a while: busybox nc ends its sending side at EOF, which
# mitmproxy takes for the client going away before the answer
out=$( (printf "$req\r\n%s" "$body"; sleep 4) | timeout 10 nc "$host" "$port" 2>/dev/null)
status=$(printf '%s\n' "$out" | head -n 1 | tr -d '\r')
last=$(printf '%s\n' "$out" | tail -n 1 | tr -d '\r')
echo "agent: answer: $status"
echo "agent: body: $last"
echo "STATUS ${status#* }"
echo "BODY $last"
]]
local HTTP_AGENT_PATH = "/home/agent/demo-http"

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
local demo_bundle, demo_real

local function http_get_host(host, port)
  local bb = standin.busybox()
  local r = cork.proc.run({ bb, "sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 "$2" nc "$0" "$1" | tail -n 1',
    host, tostring(port), bb })
  return (r.stdout:gsub("%s+$", ""))
end

do
  local s <close> = cork.scope("demo")

  -- 1. Images: the real bundle (built from Debian packages the first time,
  --    then reused while its content label matches) and the stand-in agent
  --    (busybox-static). Without the real bundle, the stand-in, said loudly.
  bottle.step("demo-images", "the real bundle (cork run bundle --from-apt) and the stand-in agent")
  local agent_image = standin.agent_image(d)
  local bundle_image, why
  if opts.standin then
    why = "--standin was given"
  else
    local ok, r = pcall(bundle.from_apt, d, {})
    if ok then bundle_image = r.image
    else why = cork.is_error(r) and r.message or tostring(r) end
  end
  if not bundle_image then
    bundle_image = standin.bundle_image(d)
    log.warn(("demo: using the STAND-IN bundle %s, which filters nothing, because %s; the filtering "
      .. "probes are skipped (`cork run bundle --from-apt` as root builds the real one)"):format(bundle_image, why))
  end
  local real = bundle_image ~= standin.BUNDLE
  demo_bundle, demo_real = bundle_image, real
  log.info(("images ready: bundle %s%s, agent %s"):format(bundle_image, real and "" or " (stand-in)", agent_image))

  -- The demo's upstream for the filtering probes, before the launch (the
  -- bottle names its address); journalled as demo-<id>, so `cork down`
  -- finds it even after a kill -9.
  local up
  if real then
    local dslug = "demo-" .. run_id
    local dj = journal.open(dslug, { backend = "docker", bottle = "demo" })
    s:defer(journal.finish, dslug)
    local ulabels = { ["cork.slug"] = dslug, ["cork.role"] = "upstream", ["cork.demo"] = run_id }
    local unet, uname = "cork-" .. dslug .. "-upstream", "cork-" .. dslug .. "-upstream"
    dj:add("network", unet, { role = "upstream" })
    s:defer(function() bottle.remove.network(d, unet, dj) end)
    d:network_create({ name = unet, labels = ulabels })
    local www = cork.fs.tempdir("cork-demo-upstream")
    s:defer(cork.fs.remove, www, { recursive = true, missing_ok = true })
    cork.fs.write(www .. "/upstream.py", UPSTREAM, { mode = tonumber("0644", 8) })
    cork.proc.run({ "chmod", "0755", www })
    dj:add("container", uname, { role = "upstream" })
    s:defer(function() bottle.remove.container(d, uname, dj) end)
    d:container_create({ name = uname, image = bundle_image, labels = ulabels, networks = { unet },
      cmd = { "python3", "/srv/upstream.py" }, mounts = { { source = www .. "/upstream.py", target = "/srv/upstream.py" } } })
    d:container_start(uname)
    up = { net = unet, ip = d:container_inspect(uname).NetworkSettings.Networks[unet].IPAddress,
      subnet = d:network_inspect(unet).IPAM.Config[1].Subnet }
    log.info(("the demo's upstream serves api.demo, open.demo and other.demo at %s (network %s)"):format(up.ip, unet))
  end
  local TOKEN = real and ("demo-credential-" .. plan.random_suffix(12)) or nil
  if TOKEN then log.secret(TOKEN) end

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
    ctx:write(HTTP_AGENT_PATH, HTTP_AGENT_SCRIPT, { mode = "0755", owner = ctx.provider.user })
  end })
  local rc = recipes.run("docker", { "--detach", { bottle = bottle.inline(bottle_text(bundle_image, up), "demo",
    "<cork demo bottle>.yaml"), env = { CORK_DEMO_TOKEN = TOKEN } } })
  if rc ~= 0 or not slug then cork.error("demo", ("the docker recipe did not leave a bottle (status %s)"):format(rc)) end
  local agent = plan.names(slug).agent
  local j = journal.attach(slug)
  -- the bundle's way to the demo's upstream
  if up then d:network_connect(up.net, plan.names(slug).bundle) end
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
  d:container_create({ name = cname, image = standin.bundle_image(d), labels = labels, init = true,
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

  -- The real bundle's daemons take seconds to listen (the launch does not
  -- wait for them): the agent's first probe waits until its proxy answers.
  if real then
    local deadline = cork.time() + 90
    repeat
      local r = d:exec(agent, { "sh", AGENT_PATH, "its bundle's proxy (waiting for it)", "proxy", "0" }, { user = "agent" })
      if r.stdout:find("RESULT reached", 1, true) then break end
      cork.sleep(0.5)
    until cork.time() > deadline
  end

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
  -- what the real bundle filters (HTTP through the agent's proxy, egress)
  local PLACEHOLDER = "Authorization: Bearer placeholder-the-agent-holds"
  local function fp(v)
    local r = cork.proc.run({ "sha256sum" }, { stdin = v })
    return r.stdout:sub(1, 12)
  end
  if real then
    probes[#probes + 1] = { what = "the egress route api.demo/v1 (the agent sends a placeholder)", http = true,
      args = { "GET", "http://api.demo/v1/models", PLACEHOLDER }, want = "200",
      check = function(body) return body:find("authorization=" .. fp("Bearer " .. TOKEN), 1, true) ~= nil end,
      said = "the upstream got the route's real credential (fingerprint " .. fp("Bearer " .. TOKEN)
        .. "), not the placeholder (" .. fp(PLACEHOLDER:match(": (.*)")) .. ")" }
    probes[#probes + 1] = { what = "a path the route does not allow (api.demo/admin)", http = true,
      args = { "GET", "http://api.demo/admin" }, want = "403" }
    probes[#probes + 1] = { what = "a host off the allowlist (other.demo)", http = true,
      args = { "GET", "http://other.demo/" }, want = "403" }
    probes[#probes + 1] = { what = "an allowed host (open.demo)", http = true,
      args = { "GET", "http://open.demo/hello" }, want = "200" }
    probes[#probes + 1] = { what = "a secret sent to the allowed host (an AWS key in the body)", http = true,
      args = { "POST", "http://open.demo/upload", "Content-Type: text/plain", "key=AKIA" .. string.rep("X", 16) },
      want = "403" }
  end
  for i, pr in ipairs(probes) do
    local good, got, verdict
    if pr.http then
      local argv = { "sh", HTTP_AGENT_PATH }
      for _, a in ipairs(pr.args) do argv[#argv + 1] = a end
      local r = d:exec(agent, argv, { user = "agent" })
      got = r.stdout:match("STATUS (%d+)") or "error"
      local body = r.stdout:match("BODY ([^\n]*)") or ""
      for line in r.stdout:gmatch("[^\n]+") do
        if not line:match("^STATUS ") and not line:match("^BODY ") then log.info(line) end
      end
      good = got == pr.want and (not pr.check or pr.check(body))
      if good then
        verdict = pr.want == "200" and ("ok: through" .. (pr.said and (", and " .. pr.said) or ""))
          or "ok: refused by the bundle, as it should be"
      else
        verdict = ("WRONG: wanted %s, got %s"):format(pr.want, got)
      end
      pr.host, pr.port = pr.args[2], 80
    else
      local r = d:exec(agent, { "sh", AGENT_PATH, pr.what, pr.host, tostring(pr.port) }, { user = "agent" })
      got = r.stdout:match("RESULT (%a+)") or "error"
      for line in r.stdout:gmatch("[^\n]+") do
        if not line:match("^RESULT ") then log.info(line) end
      end
      good = got == pr.want
      if good then
        verdict = pr.want == "reached" and "ok: reachable, as it should be" or "ok: blocked, as it should be"
      elseif pr.want == "reached" then
        verdict = "FAIL: the agent cannot reach its own proxy"
      else
        verdict = "LEAK: the agent reached what it must not"
      end
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
  for _, f in ipairs({ "cork.slug=" .. slug, "cork.demo=" .. run_id, "cork.slug=demo-" .. run_id }) do
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
    if r.want == "blocked" or r.want == "403" then leaks = leaks + 1 else broken = broken + 1 end
  end
end
log.event("demo_result", { slug = slug, probes = #results, leaks = leaks, broken = broken, left = left,
  bundle = demo_bundle, real_bundle = demo_real })
if #left > 0 then
  log.warn("left behind: " .. table.concat(left, ", "))
else
  log.info(("left behind: nothing (the images %s, %s and %s stay; remove them with "
    .. "`docker image rm`)"):format(bundle.IMAGE, standin.BUNDLE, standin.AGENT))
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
