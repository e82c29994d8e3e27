-- cork.launch: what both stock launch flows share, so each recipe reads top
-- to bottom as the steps it performs: the command line and the bottle it
-- names, the test hook for fault injection, the env file, and small steps
-- both recipes take the same way. Each step follows the house rule for
-- resources: journal it, register its cleanup on the scope, then create it
-- (so no interrupt or kill between the two can leave it unknown). The
-- clients (real or recorded) are cork.dryrun's, removal is cork.teardown's.
local cork = require "cork"
local log = require "cork.log"
local plan = require "cork.plan"
local journal = require "cork.journal"
local args = require "cork.args"
local manifest = require "cork.manifest"
local dryrun = require "cork.dryrun"
local teardown = require "cork.teardown"
local fs = require "cork.fs"

local M = {}

-- image_hint(role) -> how to get a missing image, for the not-found errors:
-- the real bundle once cork can build one (a `bundle` recipe), the stand-in
-- images until then; docs/getting-started.md walks the whole path.
function M.image_hint(role)
  if role == "bundle" then
    if pcall(require("cork.recipes").find, "bundle") then
      return "`cork run bundle` builds cork's bundle image (`cork run standin`: stand-ins that filter "
        .. "nothing, to try cork quickly); see docs/getting-started.md"
    end
    return "no real bundle image is built by cork yet: `cork run standin` builds stand-in images "
      .. "(the stand-in bundle filters nothing); see docs/getting-started.md"
  end
  return "build or load your agent's image (docker build, docker load), or use the stand-in agent "
    .. "(`cork run standin`, a busybox shell); see docs/getting-started.md"
end

-- A dry run keeps its state (CA, configs, journal) in a temp dir, removed
-- when the ctx is closed: the recipes hold it as `local ctx <close>`, so the
-- dir goes however the run ends (a failed check, an error, Ctrl-C).
local Ctx = {}
Ctx.__index = Ctx
function Ctx.__close(ctx)
  if ctx.dry_root then
    cork.fs.remove(ctx.dry_root, { recursive = true, missing_ok = true })
    ctx.dry_root = nil
  end
end

-- ---- the command line and the bottle ----------------------------------------

---@class cork.launch.Options      what parse() returns
---@field bottle? string             --bottle NAME
---@field agent? string              --agent NAME
---@field detach? boolean
---@field dry_run? boolean
---@field image? string              the docker recipe's agent image
---@field from? string               the smolmachines recipe's .smolmachine
---@field bundle_image? string
---@field help? boolean
---@field inline_bottle? table       a bottle from launch.inline (a launch option table)
---@field dns? string[]              the docker agent's upstream resolvers (a launch option table)
M.OPTIONS = {
  bottle = "string", agent = "string", detach = "boolean", dry_run = "boolean",
  image = "string", from = "string", bundle_image = "string", help = "boolean",
}

-- parse(argv, backend) -> opts; --help prints usage and returns nil.
-- A recipe that runs a stock recipe may put one table among its arguments:
-- { bottle = M.inline(text, name) }, a bottle that is not in the operator's
-- config dir (the demo's), and optionally env = a table or function that
-- the bottle's secrets are read from instead of the host environment, and
-- (docker only) dns = a list of addresses: the agent container's upstream
-- resolvers, where Docker's embedded DNS forwards the names it does not
-- know (else the engine host's resolvers; the escape suite points them at a
-- canary of its own), and smolvm_env = a table of extra env for every smolvm
-- call. A command line is only strings, so `--bottle NAME`
-- still loads from the operator's config dir and nowhere else.
function M.parse(argv, backend, extra_usage)
  local usage = ("cork run %s --bottle NAME [--agent NAME] [--detach] [--dry-run] "
    .. "[--bundle-image REF] [%s]"):format(backend, backend == "docker" and "--image REF" or "--from FILE.smolmachine")
  local words, given = {}, nil
  for i = 1, #argv do
    if type(argv[i]) == "table" and not given then given = argv[i]
    elseif type(argv[i]) == "string" then words[#words + 1] = argv[i]
    else cork.error("usage", ("argument %d of the %s recipe is a %s"):format(i, backend, type(argv[i]))) end
  end
  local opts, rest = args.parse(words, M.OPTIONS, { usage = usage })
  if opts.help then print("usage: " .. usage .. (extra_usage or "")); return nil end
  if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], usage)) end
  if given then
    for k in pairs(given) do
      if k ~= "bottle" and k ~= "env" and k ~= "dns" and k ~= "smolvm_env" then
        cork.error("usage", ("unknown launch option table key '%s' (known: bottle, env, dns, smolvm_env)"):format(k))
      end
    end
    if type(given.bottle) ~= "table" or not given.bottle.inline then
      cork.error("usage", "a launch option table's bottle must come from cork.bottle.inline(text, name)")
    end
    if opts.bottle or opts.agent then
      cork.error("usage", "an inline bottle cannot be combined with --bottle or --agent")
    end
    opts.inline_bottle = given.bottle
    -- env: where the bottle's secrets are read instead of the host
    -- environment (a table or function; the escape suite plants canaries)
    if given.env ~= nil and type(given.env) ~= "table" and type(given.env) ~= "function" then
      cork.error("usage", "a launch option table's env must be a table or a function")
    end
    opts.env = given.env
    -- dns: the docker agent's upstream resolvers (HostConfig.Dns)
    if given.dns ~= nil then
      if backend ~= "docker" then
        cork.error("usage", ("a launch option table's dns is for the docker recipe only (not %s)"):format(backend))
      end
      local ok = type(given.dns) == "table" and #given.dns > 0
      for _, a in ipairs(ok and given.dns or {}) do
        if type(a) ~= "string" or not (a:match("^%d+%.%d+%.%d+%.%d+$") or a:match("^[%x:]+:[%x:]*$")) then ok = false end
      end
      if not ok then cork.error("usage", "a launch option table's dns must be a non-empty list of IP addresses") end
      opts.dns = given.dns
    end
    -- smolvm_env: extra env for every smolvm call of the launch (the escape
    -- suite points the smolvm stand-in's DNS forwarder at its canary)
    if given.smolvm_env ~= nil then
      if type(given.smolvm_env) ~= "table" then cork.error("usage", "a launch option table's smolvm_env must be a table") end
      for k, v in pairs(given.smolvm_env) do
        if type(k) ~= "string" or type(v) ~= "string" then
          cork.error("usage", "a launch option table's smolvm_env maps names to strings")
        end
      end
    end
    opts.smolvm_env = given.smolvm_env
    return opts
  end
  if not opts.bottle and not opts.agent then
    cork.error("usage", "a launch needs --bottle NAME (or --agent NAME)\nusage: " .. usage)
  end
  return opts
end

-- inline(text, name[, label]) -> a bottle from YAML text held by a recipe
-- (validated like a file; `extends` is refused: a parent could only come
-- from the config dir). label names it in error messages.
function M.inline(text, name, label)
  label = label or ("<inline bottle " .. tostring(name) .. ">.yaml")
  local doc, meta = manifest.parse(text, label, "bottle")
  for _, w in ipairs(meta.warnings) do cork.log.warn(w, { file = label }) end
  local b = manifest.normalize_bottle(doc, meta, name)
  if b.extends then
    cork.error("manifest", ("%s: extends: an inline bottle cannot extend another bottle"):format(label),
      { file = label })
  end
  b.chain, b.files, b.inline = { name }, { label }, true
  return b
end

-- load(opts) -> bottle, agent
function M.load(opts)
  if opts.inline_bottle then return opts.inline_bottle, nil end
  local agent = opts.agent and manifest.named("agent", opts.agent) or nil
  local bottle = manifest.named("bottle", opts.bottle or agent.bottle)
  return bottle, agent
end

-- ---- fault injection (tests only) -----------------------------------------
-- CORK_FAULT=KIND@STEP makes the launch fail at the start of STEP:
--   docker@STEP   a Docker error (kind "daemon", as a 500 from the engine)
--   smolvm@STEP   a smolvm failure (kind "smolvm")
--   user@STEP     an error raised like a user provisioning step's
--   pause@STEP    sleep 60 s there (tests send signals at a known step)
function M.fault(step)
  local spec = os.getenv("CORK_FAULT")
  if not spec or spec == "" then return end
  local kind, at = spec:match("^(%a+)@([%w_-]+)$")
  if at ~= step then return end
  if kind == "pause" then
    log.event("fault_pause", { at = step })
    cork.sleep(60)
  elseif kind == "docker" then
    cork.error("daemon", ("injected Docker error at step %s (500 Internal Server Error)"):format(step),
      { status = 500, injected = true })
  elseif kind == "smolvm" then
    cork.error("smolvm", ("injected smolvm failure at step %s"):format(step), { injected = true })
  elseif kind == "user" then
    cork.error("provision", ("injected user step failure at step %s"):format(step), { injected = true })
  end
end

-- step(name, msg): a launch step begins (event + progress), then the fault hook.
function M.step(name, msg)
  log.step(name, { detail = msg })
  if msg then log.info(msg) end
  M.fault(name)
end

-- ---- the bottle's env and secrets ---------------------------------------

-- A file of `export NAME=value` lines for sourcing in the guest: how secret
-- env reaches the agent without appearing on any argv.
function M.env_file(values)
  local names = {}
  for k in pairs(values) do names[#names + 1] = k end
  table.sort(names)
  local lines = {}
  for _, k in ipairs(names) do
    lines[#lines + 1] = ("export %s='%s'"):format(k, tostring(values[k]):gsub("'", "'\\''"))
  end
  return table.concat(lines, "\n") .. (#lines > 0 and "\n" or "")
end

-- argv prefix that starts in $HOME (as `docker exec -w HOME` does), sources
-- the secrets file (if any) and runs the rest.
function M.with_env_file(path, argv)
  local out = { "sh", "-c",
    'cd "${HOME:-/}" 2>/dev/null; if [ -f "$0" ]; then set -a; . "$0"; set +a; fi; exec "$@"', path }
  for _, a in ipairs(argv) do out[#out + 1] = a end
  return out
end

-- prepare()'s work once the bottle is loaded and the clients made.
local function prepare_rest(ctx)
  local opts, b, agent, docker = ctx.opts, ctx.bottle, ctx.agent, ctx.docker
  local plan_opts = { subnets = function() return plan.docker_subnets(docker) end }
  if opts.dry_run then
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
        .. "CORK_BUNDLE_IMAGE, or --bundle-image): %s"):format(ctx.bundle_image, M.image_hint("bundle")),
        { image = ctx.bundle_image })
    end
    error(err, 0)
  end
  local stale = require("cork.bundle").stale(ctx.bundle_image, err)
  if stale then log.warn(stale, { image = ctx.bundle_image }) end
  if opts.dry_run then
    -- nothing is resolved, but what a real launch would stop at is said
    for _, m in ipairs(plan.unset_variables(ctx.plan, b)) do
      log.warn(m.message .. " (a launch would stop here)", { variable = m.variable, where = m.where })
    end
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

-- prepare(opts, backend) -> ctx: manifests loaded, plan built, clients
-- connected, secrets resolved, images checked: everything that can fail
-- before anything exists. Hold it as `local ctx <close>` (--dry-run's temp
-- dir is removed at close).
function M.prepare(opts, backend)
  local b, agent = M.load(opts)
  local docker = dryrun.docker(opts)
  local ctx = setmetatable({ opts = opts, backend = backend, bottle = b, agent = agent, docker = docker }, Ctx)
  if opts.dry_run then
    ctx.dry_root = cork.fs.tempdir("cork-dry-run")
    local ok, err = pcall(prepare_rest, ctx)
    if not ok then Ctx.__close(ctx); error(err, 0) end
    return ctx
  end
  return prepare_rest(ctx)
end


-- Is err the engine refusing a subnet another network already has?
local function overlap(err)
  return cork.is_error(err) and (err.message or ""):find("overlaps", 1, true) ~= nil
end
M.subnet_overlap = overlap

-- create_on_free_subnet(d, spec, first, seed, avoid) -> {subnet, gateway, bundle_ip}:
-- network_create on `first` when no network has it, else on the next free
-- /24 from seed, under a lock shared by every cork on the host (the plan's
-- pick was made earlier, from a listing other launches could have
-- changed since); when the engine still says the pool overlaps (a network
-- made by something other than cork), the next free one.
function M.create_on_free_subnet(d, spec, first, seed, avoid)
  fs.mkdir(journal.root(), 448)
  local lk <close> = fs.lock(journal.root() .. "/subnets.lock", { timeout = 60 })
  local taken = plan.docker_subnets(d)
  for _, x in ipairs(avoid or {}) do taken[#taken + 1] = x end
  local pick = first
  for _ = 1, 16 do
    local clash = false
    for _, t in ipairs(taken) do if plan.overlaps(pick.subnet, t) then clash = true; break end end
    if clash then pick = plan.pick_subnet(seed, taken) end
    spec.subnet, spec.gateway = pick.subnet, pick.gateway
    local ok, err = pcall(d.network_create, d, spec)
    if ok then return pick end
    if not overlap(err) then error(err, 0) end
    log.debug(("subnet %s overlaps another network: trying the next one"):format(pick.subnet))
    taken[#taken + 1] = pick.subnet
  end
  cork.error("network", ("no free subnet for network %s after 16 tries (the engine said each one overlaps)")
    :format(spec.name), { name = spec.name })
end

-- The bundle network: journal, defer, create (on a subnet chosen under the
-- subnet lock; the plan follows when it had to move). extra: another
-- network {name, internal, subnet = {subnet, gateway, bundle_ip}, seed,
-- avoid}; its subnet is returned.
function M.network(s, j, ctx, extra)
  local p, d = ctx.plan, ctx.docker
  local name = extra and extra.name or p.names.network
  j:add("network", name)
  s:defer(teardown.remove.network, d, name, j)
  local spec = { name = name, labels = p.labels.network }
  if extra then
    for k, v in pairs(extra) do
      if k ~= "subnet" and k ~= "gateway" and k ~= "seed" and k ~= "avoid" then spec[k] = v end
    end
    if not extra.subnet then d:network_create(spec); return name end
    local want = type(extra.subnet) == "table" and extra.subnet
      or { subnet = extra.subnet, gateway = extra.gateway }
    local pick = M.create_on_free_subnet(d, spec, want, extra.seed or name, extra.avoid)
    return name, pick
  end
  local pick = M.create_on_free_subnet(d, spec, p.network, p.slug)
  if pick ~= p.network then
    log.info(("subnet %s was taken meanwhile: network %s is on %s"):format(p.network.subnet, name, pick.subnet))
    p.network.subnet, p.network.gateway, p.network.bundle_ip = pick.subnet, pick.gateway, pick.bundle_ip
    p.bundle.ip = pick.bundle_ip
  end
  return name, p.network
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
  s:defer(teardown.remove.container, d, p.names.bundle, j)
  d:container_create({
    name = p.names.bundle, image = ctx.bundle_image, env = env, labels = p.labels.bundle,
    mounts = mounts, ports = ports, networks = o.networks, extra_hosts = #extra_hosts > 0 and extra_hosts or nil,
    dns = o.dns,
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
    local mode = ("%o"):format(cork.fs.mode(o.mode or "0644"))
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
    Ctx.__close(ctx)
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
  M.step("attach", ("attaching to %s (the bottle ends when the agent exits)"):format(p.slug))
  require("cork.cmd.attach").need_tty(p.slug, true)
  local r = cork.proc.run(attach_argv, { interactive = true })
  log.info(("agent exited with status %d; tearing the bottle down"):format(r.status),
    { status = r.status })
  -- the agent's status is the run's: a script or editor sees how it ended
  return r.status
end

return M
