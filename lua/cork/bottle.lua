-- cork.bottle: the pieces both stock launch flows share, so each recipe
-- can read top to bottom as the steps it performs: loading the bottle,
-- talking to Docker and smolvm (for real, or recorded with --dry-run),
-- removing each kind of resource idempotently (the scope's cleanups and
-- `cork down` use the same functions), and the test hook for fault
-- injection.
local cork = require "cork"
local log = require "cork.log"
local json = require "cork.json"
local args = require "cork.args"
local manifest = require "cork.manifest"
local journal = require "cork.journal"
local alias = require "cork.alias"

local M = {}

M.OPTIONS = {
  bottle = "string", agent = "string", detach = "boolean", dry_run = "boolean",
  image = "string", from = "string", bundle_image = "string", help = "boolean",
}

-- parse(argv, backend) -> opts; --help prints usage and returns nil.
-- A recipe that runs a stock recipe may put one table among its arguments:
-- { bottle = M.inline(text, name) }, a bottle that is not in the operator's
-- config dir (the demo's). A command line is only strings, so `--bottle NAME`
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
      if k ~= "bottle" then cork.error("usage", ("unknown launch option table key '%s' (known: bottle)"):format(k)) end
    end
    if type(given.bottle) ~= "table" or not given.bottle.inline then
      cork.error("usage", "a launch option table's bottle must come from cork.bottle.inline(text, name)")
    end
    if opts.bottle or opts.agent then
      cork.error("usage", "an inline bottle cannot be combined with --bottle or --agent")
    end
    opts.inline_bottle = given.bottle
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
  local agent = opts.agent and manifest.load_agent(opts.agent) or nil
  local bottle = manifest.load_bottle(opts.bottle or agent.bottle)
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

-- ---- dry run: record what would be done -----------------------------------

local function redact_env(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if k == "env" and type(x) == "table" then
      local e = {}
      for ek, ev in pairs(x) do e[ek] = type(ev) == "string" and log.redact(ev) or ev end
      out[k] = e
    else
      out[k] = redact_env(x)
    end
  end
  return out
end

-- A stand-in for a client: reads go to `real` (when given), every other
-- call is printed and answered from `answers`.
function M.recorder(label, real, reads, answers)
  local self = {}
  return setmetatable(self, { __index = function(_, method)
    if reads[method] and real then
      return function(_, ...) return real[method](real, ...) end
    end
    return function(_, ...)
      local a = table.pack(...)
      local shown = {}
      for i = 1, a.n do shown[i] = redact_env(a[i]) end
      local ok, text = pcall(json.encode, shown)
      log.info(("would call %s.%s %s"):format(label, method, ok and text or "(...)"))
      log.event("dry_run", { call = label .. "." .. method, args = shown })
      local ans = answers[method]
      if type(ans) == "function" then return ans(...) end
      return ans
    end
  end })
end

function M.docker(opts)
  local docker = require "cork.docker"
  if not opts.dry_run then return docker.connect() end
  local ok, real = pcall(docker.connect, { timeout = 5, connect_timeout = 1 })
  return M.recorder("docker", ok and real or nil,
    { containers = true, networks = true, image_inspect = true, ping = true, version = true },
    {
      network_create = { Id = "<dry-run>" }, container_create = { Id = "<dry-run>" },
      host_port = function(_, port) return port end,
      exec = { status = 0, stdout = "", stderr = "" },
      containers = {}, networks = {}, image_inspect = { Id = "<dry-run>" },
      container_inspect = { Id = "<dry-run>" }, container_wait = { status = 0 },
      request = { status = 201, body = { Id = "<dry-run>" } },
    })
end

function M.smolvm(opts)
  local smolvm = require "cork.smolvm"
  local real = smolvm.driver()
  if not opts.dry_run then return real end
  local rec = M.recorder("smolvm", real, { version = true, capabilities = true, ls = true, status = true },
    { exec = { status = 0, stdout = "", stderr = "" }, wait_ready = { attempts = 1, elapsed = 0 },
      create = { name = "<dry-run>" } })
  -- a field, not a method: the attach argv (journalled as JSON) names it
  rawset(rec, "binary", real.binary)
  return rec
end

-- ---- removing resources (idempotent) ---------------------------------------

local function gone_ok(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok or cork.is_error(err, "not_found") then return true end
  error(err, 0)
end

M.remove = {}

function M.remove.container(d, name, j)
  log.debug(("removing container %s"):format(name))
  gone_ok(d.container_remove, d, name, { force = true })
  if j then j:removed("container", name) end
end

function M.remove.network(d, name, j)
  log.debug(("removing network %s"):format(name))
  gone_ok(d.network_remove, d, name)
  if j then j:removed("network", name) end
end

function M.remove.vm(smol, name, j)
  log.debug(("removing VM %s"):format(name))
  local ok, err = pcall(smol.delete, smol, name)
  if not ok and not cork.is_error(err, "not_found") then
    -- a machine that no longer exists is gone, whatever smolvm called it
    local okls, entry = pcall(smol.status, smol, name)
    if not okls or entry ~= nil then error(err, 0) end
  end
  if j then j:removed("vm", name) end
end

-- the address off lo, its guard, then the reservation
function M.remove.alias(ip, slug, j)
  log.debug(("removing alias %s"):format(ip))
  alias.down(ip, slug)
  alias.release(ip, slug)
  if j then j:removed("alias", ip) end
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

-- argv prefix that sources the secrets file (if any) and runs the rest.
function M.with_env_file(path, argv)
  local out = { "sh", "-c", 'if [ -f "$0" ]; then set -a; . "$0"; set +a; fi; exec "$@"', path }
  for _, a in ipairs(argv) do out[#out + 1] = a end
  return out
end

-- ---- teardown of a whole bottle (cork down) -------------------------------

-- down(slug, {docker=, smolvm=, wait=}) -> list of what was removed.
-- Uses the journal, then Docker's labels and smolvm's list for anything the
-- journal missed. Safe on half-built bottles; idempotent.
function M.down(slug, o)
  o = o or {}
  local st = journal.read(slug)
  local done = {}
  if st and st.owner_alive and st.pid ~= cork.core.pid() then
    -- a run is in progress: ask it to unwind its own scope first
    log.info(("asking cork process %d to stop bottle %s"):format(st.pid, slug))
    cork.proc.run({ "kill", "-TERM", tostring(st.pid) })
    local t0 = cork.time()
    while cork.core.pid_alive(st.pid) and cork.time() - t0 < (o.wait or 30) do cork.sleep(0.1) end
    st = journal.read(slug)
  end
  local j = journal.attach(slug)
  local d = o.docker
  local smol = o.smolvm
  local resources = st and st.resources or {}
  -- reverse creation order: agent and bundle containers, VM, networks, alias
  for i = #resources, 1, -1 do
    local r = resources[i]
    if r.kind == "container" then
      if d then M.remove.container(d, r.name, j); done[#done + 1] = "container " .. r.name end
    elseif r.kind == "vm" then
      if smol then M.remove.vm(smol, r.name, j); done[#done + 1] = "vm " .. r.name end
    elseif r.kind == "network" then
      if d then M.remove.network(d, r.name, j); done[#done + 1] = "network " .. r.name end
    elseif r.kind == "alias" then
      M.remove.alias(r.name, slug, j); done[#done + 1] = "alias " .. r.name
    end
  end
  -- anything labelled with the slug that the journal did not know about
  if d then
    for _, c in ipairs(d:containers({ all = true, filters = { label = { "cork.slug=" .. slug } } })) do
      M.remove.container(d, c.Id); done[#done + 1] = "container " .. ((c.Names or {})[1] or c.Id)
    end
    for _, n in ipairs(d:networks({ filters = { label = { "cork.slug=" .. slug } } })) do
      M.remove.network(d, n.Id); done[#done + 1] = "network " .. (n.Name or n.Id)
    end
  end
  if smol then
    local ok, entry = pcall(smol.status, smol, "cork-" .. slug)
    if ok and entry then M.remove.vm(smol, "cork-" .. slug); done[#done + 1] = "vm cork-" .. slug end
  end
  -- a guard rule of the slug's that the journal did not know about
  local guards = alias.guards(slug)
  if #guards > 0 then alias.unguard(nil, slug); done[#done + 1] = ("guard (%d rules)"):format(#guards) end
  journal.finish(slug)
  return done
end

return M
