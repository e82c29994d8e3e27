-- smolmachines: the agent in a smolvm micro-VM whose only way out is its bundle
--
-- usage: cork run smolmachines --bottle NAME [--agent NAME] [--detach] [--dry-run]
--                              [--from FILE.smolmachine] [--bundle-image REF]
--
--   --bottle NAME       the bottle to launch (`cork bottles` lists them)
--   --agent NAME        an agent file; launches the bottle it names, unless
--                       --bottle is given too
--   --detach            leave the bottle running and print its slug; then
--                       `cork attach SLUG`, `cork ls`, `cork down SLUG`
--   --dry-run           check everything and print each call a launch would
--                       make (secrets redacted); create nothing
--   --from FILE         the packed VM to boot (default: agent.from in the
--                       bottle, else what `cork run prepare --bottle NAME`
--                       packed from the agent's image)
--   --bundle-image REF  the bundle's image (default: bundle.image in the
--                       bottle, else $CORK_BUNDLE_IMAGE, else cork-bundle:latest)
--
-- Needs smolvm 1.9 or later (CORK_SMOLVM names the binary; older versions do
-- not enforce the VM's egress allowlist, and the launch refuses them), a
-- Docker engine holding the bundle image, and the packed agent (see
-- docs/getting-started.md). Without --detach the agent runs in this terminal
-- (it needs one), the bottle is torn down when the agent exits, and cork
-- exits with the agent's status.
--
-- Read this file top to bottom: it is the launch flow. Every resource is
-- written to the bottle's journal, registered on the launch scope, and only
-- then created, so an error, Ctrl-C, SIGTERM (or SIGKILL plus `cork down`)
-- never leaves anything behind. To change a provisioning step without
-- copying this file, see docs/recipes.md (cork.provision).
local cork = require "cork"
local log = require "cork.log"
local plan = require "cork.plan"
local journal = require "cork.journal"
local alias = require "cork.alias"
local bottle = require "cork.bottle"
local launch = require "cork.launch"
local provision = require "cork.provision"

local opts = bottle.parse({ ... }, "smolmachines")
if not opts then return 0 end

-- Everything that can be checked is checked before anything is created:
-- manifests, plan, secrets, the bundle image, the VM artifact, and whether
-- this smolvm would really enforce the VM's egress allowlist.
local ctx <close> = launch.prepare(opts, "smolmachines")
local p, docker = ctx.plan, ctx.docker
local smol = bottle.smolvm(opts)
-- the artifact: --from, else agent.from, else what `cork run prepare` packed
-- from the agent's image (cached by image ID, so a rebuilt image is not
-- silently booted from a stale artifact)
local artifact = opts.from or p.provider.from
if not artifact then
  artifact = require("cork.artifacts").for_image(docker, p.provider.image)
end
if not artifact then
  cork.error("usage", ("no .smolmachine artifact for bottle %s: set agent.from, pass --from, "
    .. "or run `cork run prepare --bottle %s` (packs its agent image %s)")
    :format(ctx.bottle.name, ctx.bottle.name, tostring(p.provider.image)))
end
artifact = cork.fs.expand_tilde(artifact)
if not cork.fs.exists(artifact) then
  -- `cork run prepare` writes its own cache, never a path a bottle names
  local named = opts.from and "--from" or "the bottle's agent.from"
  cork.error("not_found", ("VM artifact %s does not exist: it is %s; give the path of a .smolmachine there, "
    .. "or leave agent.from out and run `cork run prepare --bottle %s`, which packs the agent's image "
    .. "into cork's cache, where this launch then finds it"):format(artifact, named, ctx.bottle.name),
    { path = artifact })
end
local caps = smol:capabilities()
if not caps.allowlist_enforced then
  cork.error("unprotected", ("refusing to launch: smolvm %s would not enforce the VM's egress allowlist (%s)")
    :format(caps.version or "?", caps.allowlist_reason or "unknown version"), { version = caps.version })
end

local s <close> = cork.scope("launch " .. p.slug)
local j = journal.open(p.slug, { backend = "smolmachines", bottle = ctx.bottle.name,
  agent = ctx.agent and ctx.agent.name })
-- registered first, so it runs last: the state dir goes once all else is gone
s:defer(journal.finish, p.slug)
log.event("bottle", { slug = p.slug, backend = "smolmachines", state_dir = p.state_dir })

-- 1. An address of the bottle's own (its alias): its bundle's ports are
--    published there and nowhere else, and the VM may reach exactly that
--    address. Under virtio-net the guest's 127/8 is its own loopback, so the
--    alias is a non-loopback address (198.18.0.0/15 by default) put on the
--    host's lo, behind a guard that drops packets for it from any other
--    interface (the LAN must not reach the bundle either).
bottle.step("alias", "reserving the bottle's address")
local ip = alias.reserve({ docker = docker, slug = p.slug })
j:add("alias", ip)
s:defer(bottle.remove.alias, ip, p.slug, j)
if opts.dry_run then log.info(("would add %s to %s behind its guard"):format(ip, alias.IFACE))
else alias.up(ip, p.slug) end
j:meta({ alias = ip })
log.info(("alias %s"):format(ip), { alias = ip })

-- 2. The bundle's own bridge network, on a subnet no other network uses.
bottle.step("network", ("network %s (%s)"):format(p.names.network, p.network.subnet))
launch.network(s, j, ctx)

-- 3. The CAs the bundle intercepts TLS with, and the daemons' configs.
bottle.step("ca", "minting CAs and writing daemon configs")
launch.cas_and_configs(ctx)

-- 4. The bundle: only the daemons this bottle needs; only the agent-facing
--    ports published, on the alias, on host ports Docker picks.
bottle.step("bundle", ("bundle %s (%s)"):format(p.names.bundle, table.concat(p.daemons, ", ")))
launch.bundle(s, j, ctx, { host_ip = ip, networks = { { name = p.names.network, ip = p.bundle.ip } } })

-- 5. Where the agent finds its way out: the first hop (egress when routes
--    exist, else pipelock), git-gate and supervise, as the alias sees them.
bottle.step("ports", "discovering the bundle's published ports")
local ports = {}
for _, daemon in ipairs(p.bundle.publish) do
  ports[daemon] = docker:host_port(p.names.bundle, p.bundle.ports[daemon], ip)
end
local env = plan.stamp(p, { host = ip, ports = ports })
j:meta({ ports = ports })
log.event("agent_urls", { HTTPS_PROXY = env.HTTPS_PROXY, GIT_GATE_URL = env.GIT_GATE_URL,
  MCP_SUPERVISE_URL = env.MCP_SUPERVISE_URL, NO_PROXY = env.NO_PROXY })

-- 6. The VM, allowed to reach <alias>/32 and nothing else; the driver checks
--    that the allowlist took effect and fails closed when it did not.
bottle.step("vm", ("VM %s from %s"):format(p.names.vm, artifact))
j:add("vm", p.names.vm)
s:defer(bottle.remove.vm, smol, p.names.vm, j)
-- `allow_hosts = { ip }` turns the gateway's DNS filter on without allowing
-- any name (an IP literal is taken as it is): the agent resolves nothing
-- itself, its proxy resolves for it, so DNS is no channel out.
smol:create(p.names.vm, { from = artifact, allow_cidrs = { ip .. "/32" }, allow_hosts = { ip }, env = env,
  labels = caps.labels and p.labels.vm or nil })
smol:start(p.names.vm)

-- 7. Wait until exec is reliably ready (an exec right after start can be
--    killed), repair what packing did to ownership in one exec, then run
--    the provisioning steps (a list a user recipe can change).
bottle.step("provision", "waiting for the VM, then provisioning")
smol:wait_ready(p.names.vm, { timeout = 120 })
local user, home = p.provider.user, p.provider.home
smol:exec(p.names.vm, { "sh", "-c",
  'mkdir -p "$1" && chown -R "$0": "$1" && mkdir -p /tmp /var/tmp && chown root:root /tmp /var/tmp && '
    .. 'chmod 1777 /tmp /var/tmp', user, home },
  { check = true })
local function exec(argv, o)
  o = o or {}
  return smol:exec(p.names.vm, argv, { user = o.user, env = o.env, stdin = o.stdin, check = o.check ~= false })
end
local guest = { plan = p, provider = p.provider, env = env, backend = "smolmachines", slug = p.slug,
  exec = function(_, argv, o) return exec(argv, o) end, write = launch.write_via_exec(exec),
  dry_run = opts.dry_run }
-- what the isolation step (the last provisioning step) tries from inside the
-- VM: a canary on the host's 127.0.0.1, reached directly and through the
-- gateway smolvm relays to it, one on another host address (the bundle
-- network's gateway), and the bundle's own address on its network
local hop = p.bundle.publish[1]
guest.isolation = {
  canary = { "127.0.0.1", p.network.gateway },
  probes = {
    { host = "127.0.0.1", what = "the host's 127.0.0.1" },
    { host = caps.host_from_guest, what = "the host's 127.0.0.1 through smolvm's gateway " .. caps.host_from_guest },
    { host = p.network.gateway, what = "another host address (" .. p.network.gateway .. ")" },
    { host = p.bundle.ip, port = p.bundle.ports[hop], what = "the bundle's own address " .. p.bundle.ip },
  },
}
-- secret env reaches the agent through a 0600 file it sources, never an argv
local secrets_file = home .. "/.cork/env"
if next(ctx.secrets.agent) then
  guest:write(secrets_file, bottle.env_file(ctx.secrets.agent), { mode = "0600", owner = user })
end
provision.steps:run(guest)

-- 8. Hand the bottle over: attach the agent, or leave it running (--detach).
local attach = { smol.binary, "machine", "exec", "--name", p.names.vm }
if caps.dialect == "1.x" then for _, f in ipairs({ "-i", "-t" }) do attach[#attach + 1] = f end end
local names = {}
for k in pairs(env) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do attach[#attach + 1] = "-e"; attach[#attach + 1] = k .. "=" .. env[k] end
for _, a in ipairs({ "-e", "HOME=" .. home, "-e", "USER=" .. user, "--", "runuser", "-u", user, "--" }) do
  attach[#attach + 1] = a
end
for _, a in ipairs(bottle.with_env_file(secrets_file, p.provider.command or { "sh" })) do
  attach[#attach + 1] = a
end
return launch.finish(s, j, ctx, attach)
