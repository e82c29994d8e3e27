-- cork.launch: small steps both stock recipes take the same way. Each one
-- follows the house rule for resources: journal it, register its cleanup on
-- the scope, then create it (so no interrupt or kill between the two can
-- leave it unknown).
local cork = require "cork"
local log = require "cork.log"
local plan = require "cork.plan"
local journal = require "cork.journal"
local bottle = require "cork.bottle"

local M = {}

-- prepare(opts, backend) -> ctx: manifests loaded, plan built, clients
-- connected, secrets resolved, images checked: everything that can fail
-- before anything exists.
function M.prepare(opts, backend)
  local b, agent = bottle.load(opts)
  local docker = bottle.docker(opts)
  local ctx = { opts = opts, backend = backend, bottle = b, agent = agent, docker = docker }
  local plan_opts = { subnets = function() return plan.docker_subnets(docker) end }
  if opts.dry_run then
    -- a dry run keeps its state (CA, configs, journal) in a temp dir it removes
    ctx.dry_root = cork.fs.tempdir("cork-dry-run")
    journal.set_root(ctx.dry_root .. "/cork")
    plan_opts.env = function(k)
      if k == "XDG_STATE_HOME" then return ctx.dry_root end
      return os.getenv(k)
    end
  end
  ctx.plan = plan.build(b, agent, plan_opts)
  ctx.slug = ctx.plan.slug
  ctx.provider = ctx.plan.provider
  ctx.bundle_image = opts.bundle_image or ctx.plan.bundle.image
  local ok, err = pcall(docker.image_inspect, docker, ctx.bundle_image)
  if not ok then
    if cork.is_error(err, "not_found") then
      cork.error("not_found", ("bundle image %s not found in the Docker engine (set bundle.image in the bottle, "
        .. "CORK_BUNDLE_IMAGE, or --bundle-image)"):format(ctx.bundle_image), { image = ctx.bundle_image })
    end
    error(err, 0)
  end
  if opts.dry_run then
    ctx.secrets = { agent = {}, bundle = {} }
    for _, s in ipairs(ctx.plan.agent_secrets) do ctx.secrets.agent[s.name] = "<secret " .. s.name .. ">" end
    for _, slot in ipairs(ctx.plan.egress_plan.token_slots) do
      ctx.secrets.bundle[slot.slot] = "<value of $" .. slot.token_ref .. ">"
    end
  else
    -- opts.env (a table or function, else os.getenv): where secrets are read
    ctx.secrets = plan.resolve_secrets(ctx.plan, b, { env = opts.env })
  end
  return ctx
end

-- The bundle network: journal, defer, create.
function M.network(s, j, ctx, extra)
  local p, d = ctx.plan, ctx.docker
  local name = extra and extra.name or p.names.network
  j:add("network", name)
  s:defer(bottle.remove.network, d, name, j)
  local spec = { name = name, labels = p.labels.network }
  if extra then for k, v in pairs(extra) do spec[k] = v end
  else spec.subnet, spec.gateway = p.network.subnet, p.network.gateway end
  d:network_create(spec)
  return name
end

-- The CAs (pipelock's always, egress's with routes) and the daemons' config
-- files, under the bottle's 0700 state dir.
function M.cas_and_configs(ctx)
  local p = ctx.plan
  plan.write_files(p)
  local ca = require "cork.ca"
  local function mint(which, slot)
    local minted = ca.mint({ dir = slot.dir, name = which, key = "ec-p256", days = 30,
      common_name = ("cork %s CA (%s)"):format(which, p.slug) })
    plan.ca_minted(p, which, minted)
    log.info(("%s CA %s"):format(which, minted.fingerprint:sub(1, 16)), { ca = which, fingerprint = minted.fingerprint })
  end
  mint("pipelock", p.proxy_plan.ca)
  if p.egress_plan.enabled then mint("egress", p.egress_plan.ca) end
end

-- The bundle container: daemon subset, env (token values by name: they go
-- to Docker in the request body, never on an argv), read-only mounts, and
-- the agent-facing ports (published on host_ip with a host port Docker picks,
-- or none for the docker recipe).
function M.bundle(s, j, ctx, o)
  local p, d = ctx.plan, ctx.docker
  local env = {}
  for k, v in pairs(p.bundle.env) do env[k] = v end
  for slot, v in pairs(ctx.secrets.bundle) do env[slot] = v end
  local mounts = {}
  for _, m in ipairs(p.bundle.mounts) do
    mounts[#mounts + 1] = { source = m.source, target = m.target, read_only = m.read_only ~= false }
  end
  local ports = {}
  if o.host_ip then
    for _, dname in ipairs(p.bundle.publish) do
      ports[#ports + 1] = { container_port = p.bundle.ports[dname], host_ip = o.host_ip, host_port = "" }
    end
  end
  local extra_hosts = {}
  for _, h in ipairs(p.bundle.extra_hosts or {}) do
    extra_hosts[#extra_hosts + 1] = type(h) == "table" and (h.host .. ":" .. h.ip) or h
  end
  j:add("container", p.names.bundle, { role = "bundle" })
  s:defer(bottle.remove.container, d, p.names.bundle, j)
  d:container_create({
    name = p.names.bundle, image = ctx.bundle_image, env = env, labels = p.labels.bundle,
    mounts = mounts, ports = ports, networks = o.networks, extra_hosts = #extra_hosts > 0 and extra_hosts or nil,
    cap_drop = { "ALL" }, cap_add = { "NET_BIND_SERVICE", "SETUID", "SETGID", "CHOWN" },
    security_opt = { "no-new-privileges" }, init = true,
  })
  d:container_start(p.names.bundle)
end

-- ctx:write for both backends: a file in the guest through one exec that
-- reads stdin (the content never appears on an argv).
function M.write_via_exec(exec)
  return function(_, path, content, o)
    o = o or {}
    local mode = ("%o"):format(o.mode or 420)
    -- "user:" is the user and its login group (not root's group, as a bare
    -- "user" would leave a file written by root)
    local owner = o.owner or ""
    if owner ~= "" and not owner:find(":", 1, true) then owner = owner .. ":" end
    -- missing parents are made 0755 (a 0700 /usr/local would lock the agent
    -- out of it); the file itself is never readable by others before chmod
    local r = exec({ "sh", "-c",
      'umask 022; mkdir -p "$(dirname "$0")" && umask 077 && cat > "$0" && chmod "$1" "$0" && '
        .. 'if [ -n "$2" ]; then chown "$2" "$0" && chown "$2" "$(dirname "$0")"; fi',
      path, mode, owner }, { stdin = content })
    if r.status ~= 0 then
      cork.error("provision", ("cannot write %s in the guest: %s"):format(path, (r.stderr or ""):match("[^\n]*")))
    end
  end
end

-- The end of a launch: with --detach, hand the resources to the journal
-- (`cork down SLUG` ends them); otherwise attach and tear down afterwards.
function M.finish(s, j, ctx, attach_argv)
  local p = ctx.plan
  j:meta({ attach = attach_argv })
  log.event("bottle_ready", { slug = p.slug, backend = ctx.backend, attach = attach_argv })
  if ctx.opts.dry_run then
    s:release()   -- the recorded cleanups would only print more "would call" lines
    cork.fs.remove(ctx.dry_root, { recursive = true, missing_ok = true })
    log.info("dry run: nothing was created")
    return 0
  end
  if ctx.opts.detach then
    j:detached()
    s:release()
    log.info(("bottle %s is running; attach with `cork attach %s`, end it with `cork down %s`")
      :format(p.slug, p.slug, p.slug))
    if not cork.core.settings().json then print(p.slug) end
    return 0
  end
  bottle.step("attach", ("attaching to %s (the bottle ends when the agent exits)"):format(p.slug))
  local r = cork.proc.run(attach_argv, { interactive = true })
  log.info(("agent exited with status %d; tearing the bottle down"):format(r.status))
  return 0
end

return M
