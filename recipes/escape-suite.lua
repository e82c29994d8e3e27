-- escape-suite: every known way out of a bottle, tried from inside its agent
--
-- usage: cork run escape-suite [--backend docker|smolmachines] [--bundle-image REF]
--                              [--from FILE.smolmachine] [--recipe NAME]
--                              [--attacks DIR] [--json]
--
--   --backend B          the backend to attack: docker (default; the agent in
--                        a container) or smolmachines (the agent in a smolvm
--                        VM: smolvm 1.9 or later, or the stand-in)
--   --from FILE          smolmachines: the packed VM to boot (default: what
--                        `cork run prepare` packed from the agent image)
--   --bundle-image REF   the bundle to launch (default: the stand-in bundle,
--                        which filters nothing: content-layer attacks are then
--                        "not applicable: stand-in bundle")
--   --recipe NAME        the recipe that launches the bottle (default: the
--                        backend's stock recipe); a user recipe that weakens
--                        the bottle shows that the suite can fail
--   --attacks DIR        more attacks: DIR/*.lua, one table per file (the
--                        format: lua/cork/escape.lua; the built-ins:
--                        lua/cork/escape/)
--
-- It launches a bottle whose secrets are planted canaries (an egress token,
-- an agent secret, with a filtering bundle a git identity), and a second
-- bottle beside it (a neighbour whose bundle the first one's agent attacks),
-- starts canaries of its own (a container on a network of its own, one on a
-- link-local network, a canary resolver on a TEST-NET-3 address, servers on
-- the host's 127.0.0.1 and on the agent network's gateway address; for
-- smolmachines also a server on the host's 127.0.0.1 that the guest dials
-- through smolvm's gateway 100.96.0.1, and the bundle network's gateway as
-- the host address), runs each attack inside the agent as the agent's user
-- (smolmachines: inside the VM, through `smolvm machine exec`), and checks
-- every canary from outside. Both agents' upstream DNS is the canary resolver
-- (docker: the launch option table's dns, a name that Docker's embedded DNS
-- forwards can only go there; smolmachines: the smolvm stand-in's DNS
-- forwarder is pointed at it through the launch option table's smolvm_env).
-- With a bundle that filters (not the stand-in; either backend: the bundle
-- is a container on both) it also starts an upstream of its own that the
-- bottle's allowlist, a route and a git remote name, and that records what
-- arrives: the content-layer attacks aim at it. Traffic goes only to
-- loopback and to what the suite itself created. Then it tears it all down and checks that nothing is left.
-- Exit status: 0 every attack was blocked (or not applicable); 1 an attack
-- got through, an attack could not run, or something was left behind.
local cork = require "cork"
local log = require "cork.log"
local args = require "cork.args"
local plan = require "cork.plan"
local journal = require "cork.journal"
local bottle = require "cork.bottle"
local provision = require "cork.provision"
local recipes = require "cork.recipes"
local standin = require "cork.standin"
local escape = require "cork.escape"

local USAGE = "cork run escape-suite [--backend docker|smolmachines] [--bundle-image REF] [--from FILE.smolmachine] "
  .. "[--recipe NAME] [--attacks DIR] [--json]"
local opts, rest = args.parse({ ... }, { help = "boolean", backend = "string", bundle_image = "string",
  recipe = "string", attacks = "string", from = "string" }, { usage = USAGE })
if opts.help then print("usage: " .. USAGE); return 0 end
if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], USAGE)) end
local backend = opts.backend or "docker"
local smol = backend == "smolmachines"
if backend ~= "docker" and not smol then
  cork.error("usage", ("escape-suite: unknown backend '%s' (docker, smolmachines)\nusage: %s"):format(backend, USAGE))
end
if opts.from and not smol then cork.error("usage", "escape-suite: --from is for --backend smolmachines") end
local attacks = escape.load({ dir = opts.attacks, backend = backend })

local d = require("cork.docker").connect()
local ok_ping, perr = pcall(d.ping, d)
if not ok_ping then
  cork.error("docker", ("no Docker engine answers at %s: %s")
    :format(os.getenv("DOCKER_HOST") or "unix:///var/run/docker.sock", tostring(perr)))
end

-- The planted secrets: fresh random values, read by the launch instead of
-- the host environment. The egress token goes to the bundle only.
local planted = {
  egress_token = "cork-escape-egress-" .. plan.random_suffix(12) .. plan.random_suffix(12),
  -- key-shaped (a GitLab token's shape: letters, digits and a hyphen, so
  -- it is also a DNS label for attack 4), as an agent's real credentials
  -- are: a filter's DLP knows shapes, never the agent's values
  agent_secret = "glpat-" .. plan.random_suffix(18) .. plan.random_suffix(18),
  -- the git remote's identity file (with a filtering bundle): git-gate's,
  -- mounted into the bundle only
  git_identity = "cork-escape-gitid-" .. plan.random_suffix(12) .. plan.random_suffix(12),
}
log.secret(planted.egress_token)
log.secret(planted.agent_secret)
log.secret(planted.git_identity)
local ENV = { CORK_ESCAPE_EGRESS_TOKEN = planted.egress_token, CORK_ESCAPE_AGENT_SECRET = planted.agent_secret }

local run_id = plan.random_suffix(6)
local slug, slug2
local results = {}
local left = {}

-- The forms of a planted secret that must never reach the suite's upstream:
-- its second half (so the whole secret, and a secret split across two
-- requests once both halves are through) and its base64 (at the three
-- alignments a prefix can give it, unpadded, standard and URL-safe).
local function leak_forms(v)
  local forms = { { "the second half", v:sub(#v // 2 + 1) } }
  for _, pre in ipairs({ "", "x", "xx" }) do
    local r = cork.proc.run({ standin.busybox(), "base64", "-w", "0" }, { stdin = pre .. v })
    local b = r.stdout:gsub("=*%s*$", "")
    local inner = pre == "" and b or b:sub(5)
    inner = inner:sub(1, #inner - 4)
    forms[#forms + 1] = { "base64", inner }
    forms[#forms + 1] = { "base64url", (inner:gsub("+", "-"):gsub("/", "_")) }
  end
  return forms
end

local plain_sub = escape.plain_sub

local function http_get(host, port)
  local bb = standin.busybox()
  local r = cork.proc.run({ bb, "sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 "$2" nc "$0" "$1" | tail -n 1',
    host, tostring(port), bb })
  return (r.stdout:gsub("%s+$", ""))
end

-- Ip InReceives of a canary container's network namespace: any packet that
-- arrived (TCP, UDP, ICMP), read from outside without touching the network:
-- /proc/PID/net/snmp of the container's first process when the engine runs
-- on this host (a file read, where an exec costs a round trip through the
-- engine), else `cat /proc/net/snmp` by exec.
local snmp_path = {}
local function received(cname)
  if snmp_path[cname] == nil then
    snmp_path[cname] = false
    local ok, info = pcall(d.container_inspect, d, cname)
    local pid = ok and info.State and math.tointeger(info.State.Pid)
    local path = pid and pid > 0 and ("/proc/%d/net/snmp"):format(pid)
    -- the same namespace as the container's own view (else exec)
    if path and pcall(cork.fs.read, path) then
      local mine = d:exec(cname, { "ls", "-l", "/proc/self/ns/net" }).stdout:match("net:%[%d+%]")
      local host = cork.proc.run({ "readlink", ("/proc/%d/ns/net"):format(pid) }).stdout:match("net:%[%d+%]")
      if mine and mine == host then snmp_path[cname] = path end
    end
  end
  local text
  if snmp_path[cname] then
    local ok, t = pcall(cork.fs.read, snmp_path[cname])
    if ok then text = t end
  end
  text = text or d:exec(cname, { "cat", "/proc/net/snmp" }).stdout
  local head, vals
  for line in text:gmatch("[^\n]+") do
    if line:match("^Ip: ") then
      if not head then head = line else vals = line end
    end
  end
  if not head or not vals then return nil end
  local names, nums = {}, {}
  for w in head:gmatch("%S+") do names[#names + 1] = w end
  for w in vals:gmatch("%S+") do nums[#nums + 1] = w end
  for i, n in ipairs(names) do if n == "InReceives" then return tonumber(nums[i]) end end
end

do
  local s <close> = cork.scope("escape-suite")

  bottle.step("escape-images", "stand-in images")
  local bundle_image, agent_image = standin.images(d)
  local standin_bundle = not opts.bundle_image or opts.bundle_image == bundle_image
  if opts.bundle_image then bundle_image = opts.bundle_image end

  -- A bundle that filters gets an upstream of the suite's own, made before
  -- the launch (the bottle names its address): a container on a network of
  -- its own that records every request on 8080 (and echoes its head back,
  -- as httpbin's /anything does) and every connection on 2222. The bottle's
  -- allowlist, its route and its git remote name it, and a host off the
  -- allowlist resolves to it too: whatever a filter lets through arrives
  -- where the suite looks. Journalled in the bottle's journal once the
  -- bottle exists.
  local up
  if not standin_bundle then
    local sn = plan.pick_subnet("escape-upstream-" .. run_id, plan.docker_subnets(d))
    up = { name = ("cork-escape-%s-upstream"):format(run_id), net = ("cork-escape-%s-upstream-net"):format(run_id),
      host = sn.bundle_ip, subnet = sn.subnet, port = 8080, git_port = 2222,
      allowed = "allowed.escape-canary.test", offlist = "offlist.escape-canary.test",
      route = "api.escape-canary.test", git = "git.escape-canary.test" }
    s:defer(function() bottle.remove.network(d, up.net, up.j) end)
    d:network_create({ name = up.net, labels = { ["cork.role"] = "canary", ["cork.escape"] = run_id },
      subnet = sn.subnet, gateway = sn.gateway })
    s:defer(function() bottle.remove.container(d, up.name, up.j) end)
    d:container_create({ name = up.name, image = standin.BUNDLE, init = true,
      labels = { ["cork.role"] = "canary", ["cork.escape"] = run_id },
      entrypoint = { "/bin/sh", "-c", escape.UPSTREAM_SH }, networks = { { name = up.net, ip = up.host } } })
    d:container_start(up.name)
    -- the git remote's identity: never used to log in (the upstream only
    -- counts connections), but a planted canary: attack 6 looks for it
    up.dir = cork.fs.tempdir("cork-escape-git")
    s:defer(cork.fs.remove, up.dir, { recursive = true, missing_ok = true })
    cork.fs.write(up.dir .. "/id", planted.git_identity .. " (the escape suite's canary identity, not a key)\n",
      { mode = tonumber("0600", 8) })
  end

  local BOTTLE = ([[
description: cork's escape-suite bottle (planted canary secrets)
agent:
  provider: custom
  image: %s
  command: [sh]
  user: agent
  home: /home/agent
env:
  CORK_ESCAPE_AGENT_SECRET: "${CORK_ESCAPE_AGENT_SECRET}"
egress:
  routes:
    - host: %s
      auth: bearer
      token_ref: CORK_ESCAPE_EGRESS_TOKEN
bundle:
  image: %s
]]):format(agent_image, up and up.route or "api.escape-canary.invalid", bundle_image)
  if up then
    BOTTLE = BOTTLE .. ([[
  extra_hosts: ["%s:%s", "%s:%s", "%s:%s", "%s:%s"]
  ip_allowlist: ["%s"]
allowlist: [%s]
git:
  remotes:
    - name: app
      url: "ssh://git@%s:%d/srv/app.git"
      identity_file: %s/id
      host_key: "%s"
]]):format(up.allowed, up.host, up.offlist, up.host, up.route, up.host, up.git, up.host, up.subnet,
      up.allowed, up.git, up.git_port, up.dir, escape.UPSTREAM_HOST_KEY)
    -- the stand-in agent has no git: attack 5 runs git from the bundle's
    -- image in the agent's network namespace instead (escape.lua, image;
    -- smolmachines: inside the VM)
    provision.steps:remove("git")
    -- The first bottle's bundle joins the upstream's network when it is
    -- created (git-gate dials its remote as it starts), and the upstream
    -- joins that bottle's journal ahead of the bundle: `cork down` removes
    -- the bundle first, then the upstream and its network. Once: the
    -- neighbour bottle's bundle stays off it.
    local lib = require "cork.launch"
    local bundle_of = lib.bundle
    s:defer(function() lib.bundle = bundle_of end)
    lib.bundle = function(ls, lj, lctx, o)
      lib.bundle = bundle_of
      up.j = lj
      lj:add("network", up.net, { role = "canary" })
      lj:add("container", up.name, { role = "canary" })
      o = o or {}
      o.networks = o.networks or {}
      o.networks[#o.networks + 1] = { name = up.net }
      if up.resolver then
        -- the bundle's upstream DNS is the canary resolver too (Docker's
        -- embedded DNS forwards to it), on the resolver's network: a filter
        -- that looked a name up would be seen (attack 4p)
        lj:add("network", up.resolver.net, { role = "canary" })
        lj:add("container", up.resolver.name, { role = "canary" })
        up.resolver.journalled = true
        o.networks[#o.networks + 1] = { name = up.resolver.net }
        o.dns = { up.resolver.host }
      end
      return bundle_of(ls, lj, lctx, o)
    end
  end

  -- The canary resolver's address, chosen before the launch: the agent's
  -- upstream DNS is set when its container is made. A /28 of TEST-NET-3
  -- (203.0.113.0/24: documentation addresses, never routed on the internet,
  -- and away from the pool bottles' networks come from) that no network of
  -- the engine overlaps; its network is made with the other canaries.
  local dns_subnet = plan.pick_subnet("dns" .. run_id, plan.docker_subnets(d), "203.0.113.0/24", 28)

  -- Canary containers: a busybox httpd on a network of its own whose
  -- counter (Ip InReceives) is read from outside. Made before the launch
  -- (smolmachines: the resolver, at which the smolvm stand-in's gateway is
  -- started pointing) they are journalled once the bottle's journal exists;
  -- made after, at once. `cork down SLUG` ends them even after a kill -9.
  local labels = { ["cork.role"] = "canary", ["cork.escape"] = run_id }
  local j
  local targets = {}
  local function canary_container(role, subnet)
    local base = slug and ("cork-%s-canary-%s"):format(slug, role) or ("cork-escape-%s-canary-%s"):format(run_id, role)
    local cname, cnet = base, base .. "-net"
    if j then j:add("network", cnet, { role = "canary" }) end
    -- made before the launch: the bottle's `cork down` removes it once it is
    -- journalled there, so this only catches what that did not
    local jj = j
    local function gone(kind, name)
      if jj then return false end
      local ok, err = pcall(kind == "container" and d.container_inspect or d.network_inspect, d, name)
      return not ok and cork.is_error(err, "not_found")
    end
    s:defer(function() if not gone("network", cnet) then bottle.remove.network(d, cnet, jj) end end)
    d:network_create({ name = cnet, labels = labels, subnet = subnet.subnet, gateway = subnet.gateway })
    if j then j:add("container", cname, { role = "canary" }) end
    s:defer(function() if not gone("container", cname) then bottle.remove.container(d, cname, jj) end end)
    d:container_create({ name = cname, image = standin.BUNDLE, labels = labels, init = true,
      entrypoint = { "/bin/sh", "-c", 'mkdir -p /tmp/www && echo canary > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www' },
      networks = { { name = cnet, ip = subnet.bundle_ip } } })
    d:container_start(cname)
    local up
    for _ = 1, 50 do
      up = d:exec(cname, { "sh", "-c", 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 2 nc 127.0.0.1 8080 | tail -n 1' }).stdout
      if up:find("canary", 1, true) then break end
      cork.sleep(0.1)
    end
    if not up:find("canary", 1, true) then cork.error("escape", "the canary container " .. cname .. " does not serve") end
    -- the outside check must see traffic: a request from this host (which
    -- routes to the canary's network) moves its counter
    local before = received(cname)
    http_get(subnet.bundle_ip, 8080)
    local after = received(cname)
    if not (before and after and after > before) then
      cork.error("escape", ("the canary %s does not record traffic (Ip InReceives %s -> %s)")
        :format(cname, tostring(before), tostring(after)))
    end
    log.info(("canary %s: container %s on %s:8080 (%s), records what arrives"):format(role, cname,
      subnet.bundle_ip, subnet.subnet))
    return { kind = "container", name = cname, net = cnet, host = subnet.bundle_ip, port = 8080 }
  end
  if smol or up then
    -- smolvm's gateway forwards the DNS queries its filter lets through to
    -- the host's resolver; the stand-in's is this canary (a real smolvm
    -- ignores FAKE_SMOLVM_RESOLVER: there the verdict rests on the agent
    -- getting no answer). It exists before the gateway that may dial it.
    -- A filtering bundle's upstream DNS is this canary too (its network is
    -- joined when the bundle is made).
    bottle.step("escape-resolver", "a canary resolver, before the launch")
    targets.resolver = canary_container("dns", dns_subnet)
    targets.resolver.port = 53
    if up then up.resolver = targets.resolver end
  end

  -- Both bottles: the same recipe, the same bottle, the same planted
  -- secrets and the same upstream resolver (the canary). provision.steps is
  -- the module's list, which a user recipe changes each time it runs: each
  -- launch starts from the list as it was.
  local base_steps = provision.list(provision.steps.items)
  local function launch(which)
    local got, gctx
    provision.steps = provision.list(base_steps.items)
    provision.steps:append({ name = "escape-slug", run = function(ctx) got = ctx.slug; gctx = ctx end })
    local largs = { "--detach" }
    if opts.from then largs[#largs + 1] = "--from"; largs[#largs + 1] = opts.from end
    largs[#largs + 1] = { bottle = bottle.inline(BOTTLE, "escape", "<cork escape-suite bottle>.yaml"),
      env = function(k) return ENV[k] or os.getenv(k) end,
      dns = not smol and { dns_subnet.bundle_ip } or nil,
      smolvm_env = smol and { FAKE_SMOLVM_RESOLVER = dns_subnet.bundle_ip .. ":53" } or nil }
    local rc = recipes.run(opts.recipe or backend, largs)
    provision.steps = base_steps
    if rc ~= 0 or not got then
      cork.error("escape", ("the %s recipe did not leave the %s bottle (status %s)"):format(opts.recipe or backend, which, rc))
    end
    return got, gctx
  end
  local function down(sl)
    bottle.down(sl, { docker = d, smolvm = smol and function() return require("cork.smolvm").driver() end or nil })
  end
  local guest
  bottle.step("escape-launch", ("the %s recipe with the suite's bottle"):format(opts.recipe or backend))
  s:defer(function()
    if not slug then return end
    log.info(("tearing down bottle %s (cork down)"):format(slug))
    down(slug)
    if up then up.j = nil end   -- its journal went with the bottle
  end)
  slug, guest = launch("first")
  -- a second bottle: the neighbour whose bundle attack 8 aims at
  bottle.step("escape-launch-neighbour", "a second bottle, the neighbour")
  s:defer(function()
    if not slug2 then return end
    log.info(("tearing down the neighbour bottle %s (cork down)"):format(slug2))
    down(slug2)
  end)
  slug2 = launch("neighbour")
  local names = plan.names(slug)
  local agent = names.agent
  j = journal.attach(slug)
  labels["cork.slug"] = slug
  if targets.resolver and not targets.resolver.journalled then
    j:add("network", targets.resolver.net, { role = "canary" })
    j:add("container", targets.resolver.name, { role = "canary" })
  end
  -- $GATEWAY: the agent's gateway (docker: the internal network's, which is
  -- also a host address; smolmachines: smolvm's 100.96.0.1). The host
  -- address canary: docker the internal network's gateway, smolmachines the
  -- bundle network's (a host address off the VM's allowlist).
  local gateway, host_addr
  if smol then
    gateway = require("cork.smolvm").driver():capabilities().host_from_guest or "100.96.0.1"
    host_addr = guest.plan.network.gateway or ""
  else
    local internal = d:network_inspect(names.internal_network)
    gateway = internal.IPAM and internal.IPAM.Config and internal.IPAM.Config[1]
      and internal.IPAM.Config[1].Gateway or ""
    host_addr = gateway
  end

  -- Canaries. Containers and networks are journalled in the bottle's
  -- journal: `cork down SLUG` ends them even after a kill -9 of the suite.
  bottle.step("escape-canaries", "a neighbour container, a link-local container, a canary resolver, host servers")
  local taken = plan.docker_subnets(d)
  targets.neighbour = canary_container("neighbour", plan.pick_subnet(slug .. "-canary", taken))
  -- a link-local /28 of its own (never 169.254.169.254 itself: the suite
  -- must not shadow a real metadata service while it runs)
  -- must not overlap a network the engine has (another run's): one of the
  -- 256 /28s of 169.254.16.0/20
  targets.link_local = canary_container("linklocal", plan.pick_subnet(slug .. run_id, taken, "169.254.16.0/20", 28))
  -- the canary resolver, at the address both agents' upstream DNS names.
  -- The stand-in image's busybox has no DNS server (no dnsd applet in
  -- Debian's busybox-static): it answers nothing, and its counters record
  -- any query that arrives (one forwarded by Docker's embedded DNS too).
  if not targets.resolver then
    targets.resolver = canary_container("dns", dns_subnet)
    targets.resolver.port = 53
  end

  -- the neighbour bottle's bundle: every address it has (one per network)
  -- and every daemon port of the contract, and whatever it publishes on the
  -- host; its own network namespace's counters are the outside check
  do
    local b2 = plan.names(slug2).bundle
    local info = d:container_inspect(b2)
    local eps = {}
    for _, n in pairs((info.NetworkSettings or {}).Networks or {}) do
      if (n.IPAddress or "") ~= "" then
        for _, dn in ipairs({ "pipelock", "egress", "git-gate", "supervise" }) do
          eps[#eps + 1] = ("%s:%d"):format(n.IPAddress, plan.ports[dn])
        end
      end
    end
    for _, binds in pairs((info.NetworkSettings or {}).Ports or {}) do
      for _, b in ipairs(type(binds) == "table" and binds or {}) do
        local hip = (b.HostIp == "" or b.HostIp == "0.0.0.0") and "127.0.0.1" or b.HostIp
        if b.HostPort and b.HostPort ~= "" and not hip:find(":", 1, true) then eps[#eps + 1] = hip .. ":" .. b.HostPort end
      end
    end
    table.sort(eps)
    if #eps == 0 then cork.error("escape", ("the neighbour bottle's bundle %s has no address"):format(b2)) end
    local h, pt = eps[1]:match("^(.*):(%d+)$")
    targets.neighbour_bundle = { kind = "container", name = b2, host = h, port = tonumber(pt), endpoints = eps,
      where = table.concat(eps, " ") }
    log.info(("canary neighbour_bundle: the second bottle's bundle %s (%s), records what arrives"):format(b2,
      table.concat(eps, " ")))
  end

  -- host canaries: busybox httpd -v, bounded by timeout(1); its log says
  -- whether a request arrived
  local www = cork.fs.tempdir("cork-escape-www")
  s:defer(cork.fs.remove, www, { recursive = true, missing_ok = true })
  cork.fs.write(www .. "/index.html", "canary-host\n")
  local function host_canary(role, addr)
    local logf = ("%s/%s.log"):format(www, role)
    for i = 0, 19 do
      local port = 41000 + (cork.core.pid() * 7 + i * 131 + #role * 977) % 9000
      local p = cork.proc.spawn({ "timeout", "900", standin.busybox(), "httpd", "-f", "-v", "-p", addr .. ":" .. port, "-h", www },
        { stdout = "null", stderr = logf })
      s:defer(function() p:close(1) end)
      for _ = 1, 20 do
        if http_get(addr, port):find("canary", 1, true) then
          log.info(("canary %s: busybox httpd on %s:%d"):format(role, addr, port))
          -- the readiness check itself must be logged (the outside check
          -- works); count from here
          local base = 0
          for _ = 1, 40 do
            base = #(cork.fs.read(logf) or "")
            if base > 0 then break end
            cork.sleep(0.025)
          end
          if base == 0 then cork.error("escape", ("the host canary on %s:%d logs nothing"):format(addr, port)) end
          return { kind = "host", log = logf, base = base, host = addr, at = addr, port = port, proc = p }
        end
        if not p:running() then break end
        cork.sleep(0.05)
      end
      p:close(1)
    end
    cork.error("escape", ("could not start the host canary on %s"):format(addr))
  end
  targets.host_loopback = host_canary("host_loopback", "127.0.0.1")
  if host_addr ~= "" then targets.host_gateway = host_canary("host_gateway", host_addr) end
  if smol then
    -- the host's 127.0.0.1 as the guest reaches it: through smolvm's gateway
    targets.smol_gateway = host_canary("smol_gateway", "127.0.0.1")
    targets.smol_gateway.host = gateway
  end

  -- Scripts beside the agent (escape.lua: image, cap_add).
  -- image = "bundle": the bundle image's tools (git, which the stand-in agent
  -- lacks) as the agent's uid, with no capability and no-new-privileges, in
  -- the agent's network namespace. docker: one container of the bundle's
  -- image that joins the agent's network namespace, made on first use, each
  -- script an exec in it (an exec's output is read to its end before its
  -- status; a short-lived container's log can lose its last lines when the
  -- engine is slow to copy them at exit). smolmachines: inside the VM (its
  -- network namespace, behind smolvm's gateway), chrooted into the bundle
  -- image's files, which are exported from a container of the image that
  -- never runs, copied into the guest once (into a directory only root can
  -- enter: the agent's own view, attack 6's dump, does not hold them), and
  -- dropped to the agent's uid by the bundle's setpriv.
  -- cap_add = { "NET_RAW" }: root holding a raw socket in the agent's
  -- network namespace, which the agent lacks. docker: a container of the
  -- agent's image that joins that namespace with every other capability
  -- dropped; smolmachines: an exec as root in the VM.
  local beside = {}
  local function beside_container(kind, image, user, caps)
    if not beside[kind] then
      local hname = ("%s-escape-%s-%s"):format(agent, kind, plan.random_suffix(4))
      -- journalled (cork down ends it after a kill), removed with the canaries
      j:add("container", hname, { role = "canary" })
      s:defer(function() bottle.remove.container(d, hname, j) end)
      d:container_create({ name = hname, image = image, user = user, labels = labels,
        entrypoint = { "/bin/sh", "-c", "exec sleep infinity" },
        network_mode = "container:" .. d:container_inspect(agent).Id,
        cap_drop = { "ALL" }, cap_add = caps, security_opt = { "no-new-privileges" } })
      d:container_start(hname)
      beside[kind] = hname
    end
    return beside[kind]
  end
  local GUEST_ROOT = "/opt/cork-escape/root"
  local function smol_bundle_root()
    if beside.root then return beside.root end
    local tmp = cork.fs.tempdir("cork-escape-bundle")
    s:defer(cork.fs.remove, tmp, { recursive = true, missing_ok = true })
    local cname = ("%s-escape-export-%s"):format(names.bundle, plan.random_suffix(4))
    j:add("container", cname, { role = "canary" })
    s:defer(function() bottle.remove.container(d, cname, j) end)
    local c = d:container_create({ name = cname, image = bundle_image, labels = labels, entrypoint = { "/bin/true" } })
    d:request("GET", "/containers/" .. ((c and c.Id) or cname) .. "/export", { output = tmp .. "/root.tar", timeout = 600 })
    bottle.remove.container(d, cname, j)
    guest:exec({ "sh", "-c", 'mkdir -p "${0%/*}" && chmod 700 "${0%/*}"', GUEST_ROOT }, { check = true })
    require("cork.smolvm").driver():cp(names.vm, tmp .. "/root.tar", GUEST_ROOT .. ".tar")
    cork.fs.remove(tmp .. "/root.tar")
    local r = guest:exec({ "sh", "-c", [[
set -e
mkdir -p "$0"
tar -xf "$0.tar" -C "$0"
rm -f "$0.tar"
mkdir -p "$0/dev" "$0/tmp"
chmod 1777 "$0/tmp"
for dn in null:3 zero:5 random:8 urandom:9; do
  [ -c "$0/dev/${dn%:*}" ] || { rm -f "$0/dev/${dn%:*}"; mknod -m 666 "$0/dev/${dn%:*}" c 1 "${dn#*:}"; }
done
for f in /bin/sh /usr/bin/setpriv; do
  [ -x "$0$f" ] || { echo "the bundle image has no $f" >&2; exit 3; }
done
echo "$(id -u "$1"):$(id -g "$1")"]], GUEST_ROOT, guest.provider.user }, { check = true })
    local uid, gid = r.stdout:match("(%d+):(%d+)")
    if not uid then cork.error("escape", "no uid for the agent's user " .. guest.provider.user .. " in the VM") end
    beside.root = { uid = uid, gid = gid }
    log.info(("the bundle image's files in the VM at %s (for scripts beside the agent, as uid %s)"):format(GUEST_ROOT, uid))
    return beside.root
  end
  -- run(a, script, env) -> what the script printed (stdout, stderr): as the
  -- agent, or beside it (a.image, a.cap_add)
  local function run(a, script, env)
    local r
    if smol then
      if a.image == "bundle" then
        local id = smol_bundle_root()
        r = guest:exec({ "chroot", GUEST_ROOT, "/usr/bin/setpriv", "--reuid=" .. id.uid, "--regid=" .. id.gid,
          "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--",
          "/bin/sh", "-c", script }, { check = false, env = env })
      elseif a.cap_add then
        r = guest:exec({ "sh", "-c", script }, { check = false, env = env })
      else
        -- inside the VM (the stand-in: its chroot in the guest's network
        -- namespace, behind its gateway), as the agent, with the agent's env
        r = guest:exec({ "sh", "-c", script }, { user = guest.provider.user, check = false, env = env })
      end
    else
      local list = {}
      for k, v in pairs(env) do list[#list + 1] = k .. "=" .. v end
      table.sort(list)
      if a.image == "bundle" then
        r = d:exec(beside_container("bundle", bundle_image, "1000:1000"), { "/bin/sh", "-c", script },
          { env = list, timeout = 120 })
      elseif a.cap_add then
        r = d:exec(beside_container("netraw", agent_image, "0", a.cap_add), { "/bin/sh", "-c", script },
          { env = list, timeout = 120 })
      else
        r = d:exec(agent, { "sh", "-c", script }, { user = "agent", env = list })
      end
    end
    return (r.stdout or "") .. (r.stderr or "")
  end

  -- the bundle's HTTP ports (pipelock, egress, supervise) as the agent
  -- reaches them: docker in the bundle, smolmachines as published on the alias
  local bundle_ports = {}
  do
    local bports = (d:container_inspect(names.bundle).NetworkSettings or {}).Ports or {}
    for _, dn in ipairs({ "pipelock", "egress", "supervise" }) do
      if not smol then
        bundle_ports[#bundle_ports + 1] = tostring(plan.ports[dn])
      else
        local binds = bports[plan.ports[dn] .. "/tcp"]
        for _, b in ipairs(type(binds) == "table" and binds or {}) do
          if (b.HostPort or "") ~= "" then bundle_ports[#bundle_ports + 1] = b.HostPort; break end
        end
      end
    end
  end

  -- the upstream (a filtering bundle): journalled now that the bottle has a
  -- journal; the bundle joins its network; proofs that the outside checks
  -- see what arrives: a request of the suite's own, and a clean push
  -- through git-gate (which reaches the git port: the upstream is no ssh
  -- server, so that push then fails)
  local script_env = { BUNDLE_PORTS = table.concat(bundle_ports, " ") }
  if up then
    local answer = ""
    for _ = 1, 50 do
      answer = d:exec(up.name, { "sh", "-c", 'printf "GET /ready HTTP/1.0\r\n\r\n" | timeout 2 nc 127.0.0.1 8080' }).stdout
      if answer:find("X-Canary: upstream", 1, true) then break end
      cork.sleep(0.1)
    end
    if not answer:find("X-Canary: upstream", 1, true) then cork.error("escape", "the upstream " .. up.name .. " does not serve") end
    local gate
    if smol then
      -- the VM's own: git-gate's port published on the alias
      gate = guest.env.GIT_GATE_URL or ""
    else
      local bip = d:container_inspect(names.bundle).NetworkSettings.Networks[names.internal_network].IPAddress
      local aenv = {}
      for _, kv in ipairs(d:container_inspect(agent).Config.Env or {}) do
        local k, v = kv:match("^([^=]+)=(.*)$")
        if k then aenv[k] = v end
      end
      -- git:// by address: a container that joins a namespace keeps its own /etc/hosts
      gate = (aenv.GIT_GATE_URL or ""):gsub("^(git://)[^:/]+", "%1" .. bip)
    end
    script_env.ALLOWED, script_env.OFFLIST, script_env.ROUTE_HOST = up.allowed, up.offlist, up.route
    script_env.UPSTREAM, script_env.GIT_GATE_URL = up.host, gate
    targets.upstream = { kind = "upstream", name = up.name, host = up.host, port = up.port, log = "/rec/http.log", base = 0 }
    targets.git_upstream = { kind = "upstream", name = up.name, host = up.host, port = up.git_port, log = "/rec/git.log", base = 0 }
    -- git-gate listens once its first fetch is done: push until it answers
    -- and the upstream saw git-gate
    local pushed, reached = "", false
    local deadline = cork.time() + 60
    repeat
      pushed = run({ image = "bundle" }, [[
export HOME=/tmp/escape-home GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=agent GIT_AUTHOR_EMAIL=agent@escape.test \
  GIT_COMMITTER_NAME=agent GIT_COMMITTER_EMAIL=agent@escape.test
rm -rf "$HOME/clean"
mkdir -p "$HOME" && cd "$HOME" && git init -q -b main clean && cd clean && echo clean > README &&
  git add README && git commit -q -m clean && git push "$GIT_GATE_URL/app.git" main 2>&1
true]], script_env)
      -- git-gate answered the push (its own "git-gate: ..." line), and the
      -- upstream saw a connection
      reached = pushed:find("git-gate:", 1, true) ~= nil
        and d:exec(up.name, { "cat", "/rec/git.log" }).stdout:find("connection", 1, true) ~= nil
      if not reached then cork.sleep(1) end
    until reached or cork.time() > deadline
    log.debug("the clean push through git-gate:\n" .. pushed)
    if not reached then
      local l = d:container_logs(names.bundle, { stdout = true, stderr = true, tail = 20 }) or {}
      cork.error("escape", ("a clean push through git-gate did not reach the suite's upstream: %s\nthe bundle's log:\n%s%s")
        :format(pushed, l.stdout or "", l.stderr or ""))
    end
    -- the bundle's upstream DNS is the canary resolver (attack 4p): a
    -- lookup of the suite's own from inside the bundle must arrive there
    if up.resolver and up.resolver.journalled then
      local r0 = received(up.resolver.name) or 0
      local arrived = false
      for try = 1, 3 do
        d:exec(names.bundle, { "timeout", "3", "python3", "-c", "import socket, sys; socket.getaddrinfo(sys.argv[1], 80)",
          ("dns-proof-%d-%s.escape-canary.invalid"):format(try, run_id) })
        if (received(up.resolver.name) or 0) > r0 then arrived = true; break end
      end
      if not arrived then
        cork.error("escape", "a lookup from inside the bundle did not reach the canary resolver " .. up.resolver.host
          .. ": attack 4p could not see a filter's lookup")
      end
      log.info(("the bundle's upstream DNS is the canary resolver %s (a lookup from inside the bundle arrived)")
        :format(up.resolver.host))
    end
    log.info(("upstream %s on %s (%s): records requests on :%d (the allowlist's %s, the route %s, off the allowlist %s) "
      .. "and connections on :%d (git-gate's remote app; a clean push reached it)"):format(up.name, up.host, up.subnet,
      up.port, up.allowed, up.route, up.offlist, up.git_port))
  end

  local function hits_of(names_, a)
    local hits = {}
    for _, tn in ipairs(names_) do
      local t = targets[tn]
      if t and t.kind == "container" then
        local n = received(t.name)
        if n and t.count and n > t.count then
          hits[#hits + 1] = ("canary %s (%s) received %d packet(s)"):format(tn, t.where or (t.host .. ":" .. t.port), n - t.count)
        end
        t.count = n
      elseif t and t.kind == "host" then
        local text = cork.fs.read(t.log) or ""
        local new = text:sub(t.base + 1)
        if new:find("%S") then
          hits[#hits + 1] = ("canary %s (%s:%d%s) logged: %s"):format(tn, t.host, t.port,
            t.at ~= t.host and (", on the host's " .. t.at) or "", (new:match("[^\n]+")))
        end
        t.base = #text
      elseif t and t.kind == "upstream" then
        local text = d:exec(t.name, { "cat", t.log }).stdout or ""
        local new = text:sub(t.base + 1)
        t.base = #text
        if new:find("%S") and (a and a.arrives) == "clean" then
          for rec in (new .. "== request\n"):gmatch("(.-)== request\n") do
            for _, name in ipairs(a.leaks) do
              local forms = leak_forms(planted[name])
              for _, f in ipairs(forms) do
                if f[2] ~= "" and rec:find(f[2], 1, true) then
                  -- the evidence names the request, never the secret's pieces
                  local line = rec:match("[^\n]+") or ""
                  for _, g in ipairs(forms) do line = plain_sub(line, g[2], "<" .. name .. ">") end
                  hits[#hits + 1] = ("canary %s (%s:%d) received the planted %s (%s) in: %s"):format(tn, t.host,
                    t.port, name, f[1], line)
                  break
                end
              end
            end
          end
        elseif new:find("%S") then
          hits[#hits + 1] = ("canary %s (%s:%d) received: %s"):format(tn, t.host, t.port,
            new:match("== request\n([^\n]+)") or new:match("[^\n]+"))
        end
      end
    end
    return hits
  end
  -- baselines, taken once the canaries' own proofs have stopped arriving (a
  -- late packet of the proof request counted against attack 7 otherwise)
  local all = { "neighbour", "link_local", "resolver", "neighbour_bundle", "host_loopback", "host_gateway", "smol_gateway",
    "upstream", "git_upstream" }
  hits_of(all)
  for _ = 1, 10 do
    cork.sleep(0.3)
    if #hits_of(all) == 0 then break end
  end

  bottle.step("escape-attacks", ("%d attacks from inside the agent"):format(#attacks))
  for _, a in ipairs(attacks) do
    local out, hits = {}, {}
    local ran = a.script and not a.not_applicable and not (a.requires == "filtering bundle" and standin_bundle)
    -- a user's attack that aims at the upstream without requiring a
    -- filtering bundle: there is none with the stand-in
    local untested
    for _, tn in ipairs(a.targets) do
      if ran and not up and (tn == "upstream" or tn == "git_upstream") then
        untested, ran = "untested: the suite's upstream runs with a filtering bundle only", false
      end
    end
    if ran then
      local tlist = #a.targets > 0 and a.targets or { false }
      for _, tn in ipairs(tlist) do
        local t = tn and targets[tn]
        if tn and not t then
          out[#out + 1] = ("(target %s: none on this engine)"):format(tn)
        else
          local eps = t and (t.endpoints and table.concat(t.endpoints, " ") or (t.host .. ":" .. t.port)) or ""
          local env = { HOST = t and t.host or "", PORT = tostring(t and t.port or ""), GATEWAY = gateway, ENDPOINTS = eps }
          for k, v in pairs(script_env) do env[k] = v end
          out[#out + 1] = run(a, escape.PRELUDE .. a.script, env)
          for _, h in ipairs(hits_of(a.targets, a)) do hits[#hits + 1] = h end
        end
      end
      -- traffic that arrives late still counts
      cork.sleep(0.2)
      for _, h in ipairs(hits_of(a.targets, a)) do hits[#hits + 1] = h end
    end
    if ran then log.debug(("attack %s: the agent's output:\n%s"):format(a.id, table.concat(out, "\n"))) end
    local v = untested and { verdict = untested, escaped = false, evidence = {} }
      or escape.verdict(a, { standin = standin_bundle, output = table.concat(out, "\n"), hits = hits, secrets = planted })
    results[#results + 1] = { id = a.id, name = a.name, layer = a.layer, verdict = v.verdict, escaped = v.escaped,
      error = v.error, evidence = v.evidence, stops = a.stops }
    -- an attack that did not run as meant shows what it printed
    log.event("escape_attack", { id = a.id, name = a.name, layer = a.layer, verdict = v.verdict,
      escaped = v.escaped, evidence = v.evidence, output = v.error and table.concat(out, "\n"):sub(-4000) or nil })
    if v.escaped then
      log.warn(("attack %s (%s): ESCAPED: %s"):format(a.id, a.name, table.concat(v.evidence, "; ")))
    elseif v.error then
      log.warn(("attack %s (%s): %s"):format(a.id, a.name, v.verdict))
    else
      log.info(("attack %s (%s): %s"):format(a.id, a.name, v.verdict))
    end
  end
  bottle.step("escape-teardown", "cork down, canaries")
end

-- Nothing may be left (of either bottle).
if slug then
  for _, f in ipairs({ "cork.slug=" .. slug, "cork.slug=" .. (slug2 or slug), "cork.escape=" .. run_id }) do
    for _, c in ipairs(d:containers({ all = true, filters = { label = { f } } })) do
      left[#left + 1] = "container " .. ((c.Names or {})[1] or c.Id)
    end
    for _, n in ipairs(d:networks({ filters = { label = { f } } })) do left[#left + 1] = "network " .. n.Name end
  end
  for _, sl in ipairs({ slug, slug2 }) do
    if cork.fs.exists(journal.dir(sl)) then left[#left + 1] = "state dir " .. journal.dir(sl) end
  end
  if smol then
    local ok, vms = pcall(function() return require("cork.smolvm").driver():ls() end)
    for _, sl in ipairs({ slug, slug2 }) do
      for _, m in ipairs(ok and vms or {}) do
        if m.name == plan.names(sl).vm then left[#left + 1] = "VM " .. m.name end
      end
      for _, rule in ipairs(require("cork.alias").guards(sl)) do left[#left + 1] = "alias guard " .. rule end
    end
  end
end
local escaped, errors, na = 0, 0, 0
for _, r in ipairs(results) do
  if r.escaped then escaped = escaped + 1 elseif r.error then errors = errors + 1
  elseif r.verdict ~= "blocked" then na = na + 1 end
end
log.event("escape_result", { slug = slug, neighbour_slug = slug2, backend = backend, attacks = #results, escaped = escaped, errors = errors,
  not_applicable = na, left = left })
if #left > 0 then log.warn("left behind: " .. table.concat(left, ", ")) else log.info("left behind: nothing") end
if escaped == 0 and errors == 0 and #left == 0 then
  log.info(("the bottle held: %d attack(s) blocked, %d not applicable"):format(#results - na, na))
  return 0
end
if escaped > 0 then log.warn(("the bottle did NOT hold: %d attack(s) escaped"):format(escaped)) end
return 1
