-- docker: the agent in a container whose only network is shared with its bundle
--
-- usage: cork run docker --bottle NAME [--agent NAME] [--detach] [--dry-run]
--                        [--image REF] [--bundle-image REF]
--
--   --bottle NAME       the bottle to launch (`cork bottles` lists them)
--   --agent NAME        an agent file; launches the bottle it names, unless
--                       --bottle is given too
--   --detach            leave the bottle running and print its slug; then
--                       `cork attach SLUG`, `cork ls`, `cork down SLUG`
--   --dry-run           check everything and print each call a launch would
--                       make (secrets redacted); create nothing
--   --image REF         the agent's image (default: agent.image in the
--                       bottle, else the provider's, cork-agent-claude:latest
--                       for claude)
--   --bundle-image REF  the bundle's image (default: bundle.image in the
--                       bottle, else $CORK_BUNDLE_IMAGE, else cork-bundle:latest)
--
-- Without --detach the agent runs in this terminal (it needs one), the
-- bottle is torn down when the agent exits, and cork exits with the agent's
-- status. Both images must be in the Docker engine: docs/getting-started.md
-- shows how to get them (or stand-ins) from nothing.
--
-- The same bottle as the smolmachines recipe, with the agent in a container
-- on an --internal network that only it and its bundle join. Every resource
-- is journalled, registered on the launch scope, then created; any failure,
-- Ctrl-C or SIGTERM unwinds them all (after SIGKILL, `cork down SLUG`).
local cork = require "cork"
local log = require "cork.log"
local plan = require "cork.plan"
local journal = require "cork.journal"
local bottle = require "cork.bottle"
local launch = require "cork.launch"
local provision = require "cork.provision"

local opts = bottle.parse({ ... }, "docker")
if not opts then return 0 end

-- Checked before anything exists: manifests, plan, secrets, both images.
local ctx <close> = launch.prepare(opts, "docker")
local p, docker = ctx.plan, ctx.docker
local agent_image = opts.image or p.provider.image
if not agent_image then
  cork.error("usage", ("no agent image for bottle %s: set agent.image, or pass --image"):format(ctx.bottle.name))
end
local ok, err = pcall(docker.image_inspect, docker, agent_image)
if not ok then
  if cork.is_error(err, "not_found") then
    cork.error("not_found", ("agent image %s not found in the Docker engine (set agent.image in the bottle, "
      .. "or --image): %s"):format(agent_image, launch.image_hint("agent")), { image = agent_image })
  end
  error(err, 0)
end

local s <close> = cork.scope("launch " .. p.slug)
local j = journal.open(p.slug, { backend = "docker", bottle = ctx.bottle.name,
  agent = ctx.agent and ctx.agent.name })
s:defer(journal.finish, p.slug)   -- first in, last out: the state dir goes last
log.event("bottle", { slug = p.slug, backend = "docker", state_dir = p.state_dir })

-- 1. The bundle's own network: the bundle's way out (Docker gives no route
--    out to a container whose only network is internal).
bottle.step("network", ("networks %s (%s) and %s (internal)"):format(p.names.network, p.network.subnet,
  p.names.internal_network))
launch.network(s, j, ctx)
-- ...and the internal network the agent shares with its bundle, and nothing
-- else, on a subnet of its own. The agent reaches the bundle by address, so
-- nothing depends on Docker's embedded DNS.
local taken = plan.docker_subnets(docker)
taken[#taken + 1] = p.network.subnet
local _, inet = launch.network(s, j, ctx, { name = p.names.internal_network, internal = true,
  subnet = plan.pick_subnet(p.slug .. "-internal", taken), seed = p.slug .. "-internal",
  avoid = { p.network.subnet } })
j:meta({ internal_subnet = inet.subnet, bundle_internal_ip = inet.bundle_ip })

-- 2. The CAs the bundle intercepts TLS with, and the daemons' configs.
bottle.step("ca", "minting CAs and writing daemon configs")
launch.cas_and_configs(ctx)

-- 3. The bundle, on both networks (known as "bundle" on the internal one).
--    Nothing is published on the host.
bottle.step("bundle", ("bundle %s (%s)"):format(p.names.bundle, table.concat(p.daemons, ", ")))
launch.bundle(s, j, ctx, { networks = {
  { name = p.names.network, ip = p.bundle.ip },
  { name = p.names.internal_network, ip = inet.bundle_ip, aliases = { "bundle" } },
} })

-- 4. The agent container: internal network only; proxies pointing at the
--    bundle's in-container ports; its secrets in its env (by name, in the
--    create request, never on an argv).
bottle.step("agent", ("agent %s from %s"):format(p.names.agent, agent_image))
local env = plan.stamp(p, { host = inet.bundle_ip, ports = p.bundle.ports })
local container_env = {}
for k, v in pairs(env) do container_env[k] = v end
for k, v in pairs(ctx.secrets.agent) do container_env[k] = v end
container_env.HOME = p.provider.home
log.event("agent_urls", { HTTPS_PROXY = env.HTTPS_PROXY, GIT_GATE_URL = env.GIT_GATE_URL,
  MCP_SUPERVISE_URL = env.MCP_SUPERVISE_URL, NO_PROXY = env.NO_PROXY })
j:add("container", p.names.agent, { role = "agent" })
s:defer(bottle.remove.container, docker, p.names.agent, j)
docker:container_create({
  name = p.names.agent, image = agent_image, env = container_env, labels = p.labels.agent,
  -- kept alive for provisioning and attach; the agent itself runs by exec
  entrypoint = { "/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done" },
  cmd = { "cork-agent-keepalive" }, networks = { { name = p.names.internal_network } },
  -- where Docker's embedded DNS (the agent's resolver) forwards the names it
  -- does not know: the engine host's resolvers, unless a launch option table
  -- names others (the escape suite: a canary of its own). The seal leaves
  -- those forwarded queries no route either.
  dns = opts.dns,
  cap_drop = { "ALL" }, cap_add = { "CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID" },
  security_opt = { "no-new-privileges" }, init = true,
})
docker:container_start(p.names.agent)

-- 5. Seal the agent's network namespace. Docker gives an --internal network's
--    members a default route through the bridge and leaves the blocking to
--    its iptables rules; an engine run without them (--iptables=false), on a
--    host that forwards, would let the agent reach any other network. So a
--    short-lived container from the bundle image joins the agent's network
--    namespace with NET_ADMIN (which the agent itself lacks, so it cannot undo
--    this), deletes the default route and makes the bridge's own address
--    (the host) unreachable. The agent keeps its on-link route to the bundle.
bottle.step("seal", ("removing the default route of %s"):format(p.names.agent))
local ainfo = docker:container_inspect(p.names.agent)
local anet = ainfo.NetworkSettings and ainfo.NetworkSettings.Networks
  and ainfo.NetworkSettings.Networks[p.names.internal_network]
local gw = anet and anet.Gateway ~= "" and anet.Gateway or inet.gateway
local sealer = p.names.agent .. "-seal"
-- IPv6 too, for an engine that gives networks IPv6 (cork does not ask for
-- it): every default route goes, and the IPv6 gateway (when one exists, $1)
-- is prohibited like the IPv4 one ($0).
local gw6 = anet and type(anet.IPv6Gateway) == "string" and anet.IPv6Gateway or ""
local seal_script = [[
while ip route del default 2>/dev/null; do :; done
ip route add prohibit "$0/32" || exit 4
if ip route | grep -q '^default'; then echo "a default route remains" >&2; exit 3; fi
while ip -6 route del default 2>/dev/null; do :; done
if [ -n "$1" ]; then ip -6 route add prohibit "$1/128" || exit 4; fi
if ip -6 route 2>/dev/null | grep -q '^default'; then echo "an IPv6 default route remains" >&2; exit 3; fi
exit 0]]
j:add("container", sealer, { role = "seal" })
s:defer(bottle.remove.container, docker, sealer, j)
docker:container_create({
  name = sealer, image = ctx.bundle_image, entrypoint = { "/bin/sh", "-c", seal_script, gw, gw6 },
  labels = plan.labels(p.slug, "seal", ctx.bottle.name), user = "0",
  network_mode = "container:" .. (ainfo.Id or p.names.agent),
  cap_drop = { "ALL" }, cap_add = { "NET_ADMIN" }, security_opt = { "no-new-privileges" },
})
docker:container_start(sealer)
local sealed = docker:container_wait(sealer) or { status = 0 }
if sealed.status ~= 0 then
  local logs = docker:container_logs(sealer, { stdout = true, stderr = true }) or {}
  local why = ((logs.stderr or "") .. (logs.stdout or "")):match("[^\n]+") or ""
  cork.error("isolation", ("could not seal the network of %s (exit %d%s): the bundle image %s must "
    .. "provide sh, ip and grep (see docs/bundle.md)"):format(p.names.agent, sealed.status,
    why ~= "" and (": " .. why) or "", ctx.bundle_image), { status = sealed.status })
end
bottle.remove.container(docker, sealer, j)

-- 6. Provisioning through exec: ownership of the agent's home, then the
--    steps (a list a user recipe can change).
bottle.step("provision", "provisioning the agent container")
local user, home = p.provider.user, p.provider.home
local function exec(argv, o)
  o = o or {}
  local r = docker:exec(p.names.agent, argv, { user = o.user, env = o.env, stdin = o.stdin })
  if o.check ~= false and r.status ~= 0 then
    cork.error("exec_failed", ("'%s' in %s exited with status %d: %s"):format(argv[1], p.names.agent,
      r.status, (r.stderr or ""):match("[^\n]*")), { status = r.status, stderr = r.stderr })
  end
  return r
end
exec({ "sh", "-c", 'mkdir -p "$1" && chown -R "$0" "$1"', user, home })
local guest = { plan = p, provider = p.provider, env = env, backend = "docker", slug = p.slug,
  exec = function(_, argv, o) return exec(argv, o) end, write = launch.write_via_exec(exec),
  dry_run = opts.dry_run }
-- what the isolation step (the last provisioning step) tries from inside the
-- agent: a canary on the host's 127.0.0.1 and on the host's side of both
-- networks (the seal prohibits the internal one's; the other is no network
-- of the agent's), and the bundle's address on its outer network
guest.isolation = {
  canary = { "127.0.0.1", gw, p.network.gateway },
  probes = {
    { host = "127.0.0.1", what = "the host's 127.0.0.1" },
    { host = gw, what = "the host through the internal network's gateway " .. gw },
    { host = p.network.gateway, what = "the host through the bundle network's gateway " .. p.network.gateway },
    { host = p.bundle.ip, port = p.bundle.ports[p.bundle.publish[1] or "pipelock"],
      what = "the bundle's address on its outer network " .. p.bundle.ip },
  },
}
provision.steps:run(guest)

-- 7. Hand the bottle over. An interactive terminal needs the docker CLI's
--    TTY handling: the one place cork runs it, to attach a human.
local attach = { "docker", "-H", os.getenv("DOCKER_HOST") or "unix:///var/run/docker.sock", "exec", "-it",
  "-u", user, "-w", home, p.names.agent }
for _, a in ipairs(p.provider.command or { "sh" }) do attach[#attach + 1] = a end
return launch.finish(s, j, ctx, attach)
