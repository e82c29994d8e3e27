-- cork.smolvm: the smolvm CLI, its quirks handled here once.
--
-- A thin layer over cork.proc (argv only, never a shell). The launch flow
-- must never relearn what this file knows (see docs/smolvm.md):
--   * two dialects: 0.8 (`create NAME`, `delete -f NAME`) and 1.x
--     (`create --name NAME`, `delete --name NAME -f`), told apart by
--     `smolvm --version`;
--   * `--net` passed explicitly with an allowlist (0.8 does not imply it);
--   * `delete` always with -f (without it smolvm reads [y/N] from stdin and
--     on EOF prints "Cancelled", exits 0 and deletes nothing);
--   * create-time env never reaches exec: the machine's env is passed again
--     with -e on every exec;
--   * exec runs as root: `user` wraps argv in `runuser -u USER --` with
--     HOME/USER set;
--   * an exec right after start can be SIGKILLed: wait_ready polls, with
--     backoff, instead of sleeping;
--   * the egress allowlist can be silently dropped or not enforced (TSI):
--     capabilities() says what this version does, create() verifies the
--     allowlist took effect and fails closed ("unprotected");
--   * smolvm's state database is single-writer: create/start/stop/delete are
--     serialized across cork processes with a lock file in the state dir.
--
-- Module functions use a default driver (CORK_SMOLVM, else `smolvm` on PATH);
-- smolvm.driver{...} makes another (other binary, extra env, state dir).
local proc = require "cork.proc"
local xdg = require "cork.xdg"
local fs = require "cork.fs"
local json = require "cork.json"
local core = require "cork.core"
local log = require "cork.log"

local M = {}

local function raise(kind, message, details)
  core.error(kind, message, details)
end

local function usage(message)
  raise("usage", message)
end

-- Versions whose behaviour we know. `allowlist_enforced` is true only where
-- an egress policy is known to be both kept on `create --from` and enforced
-- (virtio-net). See docs/smolvm.md for the sources.
local KNOWN = {
  { min = {0, 0, 0}, dialect = "0.8", policy_backend = "tsi", net_implied = false,
    allowlist_enforced = false,
    reason = "smolvm 0.x runs the TSI backend, which does not enforce --allow-cidr " ..
      "(and some 0.x builds drop --allow-cidr on create --from)" },
  { min = {1, 0, 0}, dialect = "1.x", policy_backend = "virtio-net", net_implied = true,
    allowlist_enforced = false,
    reason = "smolvm 1.0-1.8 is not verified to keep --allow-cidr on create --from " ..
      "and to switch to virtio-net under a policy; upgrade to 1.9 or later" },
  { min = {1, 9, 0}, dialect = "1.x", policy_backend = "virtio-net", net_implied = true,
    allowlist_enforced = true, reason = nil },
}

local function vcmp(a, b)
  for i = 1, 3 do
    if a[i] ~= b[i] then return a[i] < b[i] and -1 or 1 end
  end
  return 0
end

local NAME_PATTERN = "^[%w][%w_.%-]*$"
local ENV_KEY_PATTERN = "^[%a_][%w_]*$"

local function check_name(name, fn)
  if type(name) ~= "string" then
    error(("smolvm.%s: machine name must be a string"):format(fn), 3)
  end
  if not name:match(NAME_PATTERN) or #name > 64 then
    usage(("smolvm.%s: bad machine name '%s' (letters, digits, '_', '.', '-')"):format(fn, name))
  end
end

-- env given as a map {K = V} (or a list of "K=V"): sorted list of "K=V".
local function env_list(env, fn)
  local out, keys = {}, {}
  if env == nil then return out end
  if type(env) ~= "table" then error(("smolvm.%s: env must be a table"):format(fn), 4) end
  local map = {}
  for k, v in pairs(env) do
    if type(k) == "number" then
      local kk, vv = tostring(v):match("^([^=]+)=(.*)$")
      if not kk then usage(("smolvm.%s: env entry '%s' is not K=V"):format(fn, tostring(v))) end
      map[kk] = vv
    else
      map[k] = v
    end
  end
  for k, v in pairs(map) do
    if type(k) ~= "string" or not k:match(ENV_KEY_PATTERN) then
      usage(("smolvm.%s: bad environment variable name '%s'"):format(fn, tostring(k)))
    end
    if type(v) ~= "string" and type(v) ~= "number" and type(v) ~= "boolean" then
      error(("smolvm.%s: env value of %s must be a string"):format(fn, k), 4)
    end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  for _, k in ipairs(keys) do out[#out + 1] = k .. "=" .. tostring(map[k]) end
  return out, map
end

-- argv as shown in errors and events: -e values are hidden (they may be
-- tokens); the variable names stay.
local function shown_argv(argv)
  local out, hide = {}, false
  for i, a in ipairs(argv) do
    if hide then
      out[i] = (a:match("^([^=]*)=") or "?") .. "=<hidden>"
      hide = false
    else
      out[i] = a
      hide = (a == "-e" or a == "--env")
    end
  end
  return out
end

local function first_line(s)
  s = (s or ""):gsub("\r", "")
  for line in s:gmatch("[^\n]+") do
    if line:match("%S") then return line end
  end
  return ""
end

-- ---- the driver -----------------------------------------------------------

local Driver = {}
Driver.__index = Driver

---@class cork.smolvm.DriverOpts
---@field binary? string          the smolvm executable (default $CORK_SMOLVM, else "smolvm")
---@field env? table<string,string>  extra env for every smolvm call
---@field state_dir? string       where cork keeps the driver's state
---@field lock_timeout? number    seconds to wait for the state lock (300)
---@field call_timeout? number    seconds a smolvm call may take (300)
local driver_opts = { "binary", "env", "state_dir", "lock_timeout", "call_timeout" }

local function default_state_dir()
  local d = os.getenv("CORK_STATE_DIR")
  if d and d ~= "" then return d end
  return xdg.home("state") .. "/cork"
end

-- smolvm.driver{binary=, env=, state_dir=, lock_timeout=, call_timeout=}
function M.driver(opts)
  opts = core.options(opts, driver_opts)
  local bin = opts.binary or os.getenv("CORK_SMOLVM")
  if bin == nil or bin == "" then bin = "smolvm" end
  local d = setmetatable({
    binary = bin,
    env = opts.env,                     -- extra env for every smolvm call
    state_dir = opts.state_dir or default_state_dir(),
    lock_timeout = opts.lock_timeout or 300,
    call_timeout = opts.call_timeout or 300,
    machine_env = {},                   -- name -> {K=V} given at create
    _version = nil,
  }, Driver)
  return d
end

-- Run `smolvm ARGS...`. Returns the proc result; raises when smolvm is
-- missing. Never raises for a non-zero status (callers classify).
function Driver:_run(args, o)
  o = o or {}
  local argv = { self.binary }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  log.debug("smolvm " .. table.concat(shown_argv(args), " "))
  local ok, r = pcall(proc.run, argv, { env = self.env, timeout = o.timeout or self.call_timeout,
    stdin = o.stdin })
  if not ok then
    if core.is_error(r, "not_found") and tostring(r.message):find("program not found", 1, true) then
      raise("not_found", ("smolvm is not installed (%s not found): install smolvm " ..
        "(see docs/smolvm.md) or set CORK_SMOLVM to its path"):format(self.binary),
        { argv = shown_argv(argv) })
    end
    error(r, 0)
  end
  r.argv = argv
  return r
end

-- A failed smolvm call as a cork error: kind by what smolvm said.
local function call_error(r, what)
  local stderr = r.stderr or ""
  local line = first_line(stderr)
  local msg = line:gsub("^[Ee]rror:%s*", "")
  local kind = "smolvm"
  if r.timed_out then
    kind = "timeout"
    msg = "timed out"
  elseif r.signal then
    kind = "killed"
    msg = ("killed by signal %d"):format(r.signal)
  elseif stderr:find("database is locked", 1, true) or stderr:find("is locked", 1, true) then
    kind = "locked"
  elseif stderr:find("already exists", 1, true) then
    kind = "exists"
  elseif stderr:find("not found", 1, true) then
    kind = "not_found"
  elseif r.status == 2 then
    kind = "usage"
  end
  local argv = shown_argv(r.argv)
  raise(kind, ("smolvm %s failed: %s"):format(what, msg ~= "" and msg or
    ("exit status " .. tostring(r.status))), {
    argv = argv, status = r.status, signal = r.signal, stderr = stderr, stdout = r.stdout,
  })
end

-- Run a call that must succeed (status 0).
function Driver:_call(args, what, o)
  local r = self:_run(args, o)
  if r.status ~= 0 or r.timed_out or r.signal then call_error(r, what) end
  return r
end

-- Lifecycle calls hold the state-dir lock, and retry briefly when a smolvm
-- not started by cork holds smolvm's own database lock.
function Driver:_lifecycle(args, what, o)
  fs.mkdir(self.state_dir, 0x1c0) -- 0700
  local lock <close> = fs.lock(self.state_dir .. "/smolvm.lock", { timeout = self.lock_timeout })
  local delay = 0.2
  for attempt = 1, 5 do
    local r = self:_run(args, o)
    if r.status == 0 and not r.signal and not r.timed_out then return r end
    local locked = (r.stderr or ""):find("is locked", 1, true)
    if not locked or attempt == 5 then call_error(r, what) end
    log.debug("smolvm database busy, retrying", { call = what, attempt = attempt })
    core.sleep(delay)
    delay = delay * 2
  end
end

-- ---- version and capabilities ----------------------------------------------

function Driver:version()
  if self._version then return self._version end
  local r = self:_call({ "--version" }, "--version", { timeout = 30 })
  local text = first_line(r.stdout)
  local a, b, c = text:match("(%d+)%.(%d+)%.(%d+)")
  if not a then
    a, b = text:match("(%d+)%.(%d+)")
    c = 0
  end
  if not a then
    raise("smolvm", ("cannot read the smolvm version from %q"):format(text),
      { argv = r.argv, stdout = r.stdout })
  end
  local v = { tonumber(a), tonumber(b), tonumber(c) }
  local known
  for _, k in ipairs(KNOWN) do
    if vcmp(v, k.min) >= 0 then known = k end
  end
  self._version = {
    text = text, major = v[1], minor = v[2], patch = v[3],
    string = ("%d.%d.%d"):format(v[1], v[2], v[3]),
    dialect = known.dialect, _known = known,
  }
  return self._version
end

function Driver:capabilities()
  local v = self:version()
  local k = v._known
  local x1 = v.dialect == "1.x"
  return {
    version = v.string,
    dialect = v.dialect,
    create_name = x1 and "--name" or "positional",
    labels = x1,
    net_backend_flag = x1,
    exec_workdir = x1,
    exec_timeout = x1,
    pack_from_vm = x1,
    -- `machine create --image ARCHIVE` takes a `docker save` archive (1.x);
    -- `pack create --from-vm` of such a machine works from 1.9 (earlier
    -- versions refuse: "can only snapshot VMs created from a REGISTRY
    -- image"). `pack create --image` itself takes registry references only.
    create_image = x1,
    pack_local_archive = x1 and (v.major > 1 or v.minor >= 9),
    net_implied_by_allow_cidr = k.net_implied,
    policy_backend = k.policy_backend,
    allowlist_enforced = k.allowlist_enforced,
    allowlist_reason = k.reason,
    -- Under virtio-net the guest reaches the host's 127.0.0.1:P at 100.96.0.1:P.
    host_from_guest = k.policy_backend == "virtio-net" and "100.96.0.1" or "127.0.0.1",
  }
end

-- ---- lifecycle ----------------------------------------------------------------

---@class cork.smolvm.CreateOpts
---@field from? string            a .smolmachine file (not with image or smolfile)
---@field image? string           a registry reference or a `docker save` archive (1.x)
---@field smolfile? string
---@field allow_cidrs? string[]   the egress allowlist (enforced, or unprotected is raised)
---@field allow_hosts? string[]   --allow-host names or IPv4 literals (1.x): the gateway's DNS filter
---@field env? table              {K = V} or {"K=V"}, remembered for every exec
---@field net? boolean
---@field labels? table<string,string>
---@field net_backend? string
---@field allow_unenforced? boolean
---@field verify? boolean         check the allowlist after create (default true)
---@field timeout? number
local create_opts = { "from", "image", "smolfile", "allow_cidrs", "allow_hosts", "env", "net", "labels",
  "net_backend", "allow_unenforced", "verify", "timeout" }

local function check_cidr(c)
  if type(c) ~= "string" then return false end
  local a, b, cc, d, n = c:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)$")
  if not a then return false end
  for _, x in ipairs { a, b, cc, d } do if tonumber(x) > 255 then return false end end
  return tonumber(n) <= 32
end

-- create(name, {from=, smolfile=, allow_cidrs=, allow_hosts=, env=, net=, labels=, net_backend=,
--   allow_unenforced=, verify=, timeout=}) -> machine entry from ls
function Driver:create(name, opts)
  check_name(name, "create")
  opts = core.options(opts, create_opts)
  if opts.from and opts.smolfile then
    usage("smolvm.create: 'from' and 'smolfile' are mutually exclusive")
  end
  if opts.image and (opts.from or opts.smolfile) then
    usage("smolvm.create: 'image' excludes 'from' and 'smolfile'")
  end
  local cidrs = opts.allow_cidrs or {}
  if type(cidrs) ~= "table" then error("smolvm.create: allow_cidrs must be a list", 2) end
  for i, c in ipairs(cidrs) do
    if not check_cidr(c) then
      usage(("smolvm.create: allow_cidrs[%d] '%s' is not an IPv4 CIDR"):format(i, tostring(c)))
    end
  end
  local hosts = opts.allow_hosts or {}
  if type(hosts) ~= "table" then error("smolvm.create: allow_hosts must be a list", 2) end
  for i, h in ipairs(hosts) do
    if type(h) ~= "string" or not h:match("^[%w][%w%.%-]*$") then
      usage(("smolvm.create: allow_hosts[%d] '%s' is not a host name or IPv4 address"):format(i, tostring(h)))
    end
  end
  local envl, envmap = env_list(opts.env, "create")
  local caps = self:capabilities()
  if opts.labels and not caps.labels then
    usage(("smolvm.create: labels need smolvm 1.x (found %s)"):format(caps.version))
  end
  if opts.image and not caps.create_image then
    usage(("smolvm.create: image needs smolvm 1.x (found %s)"):format(caps.version))
  end
  if #hosts > 0 and not caps.net_backend_flag then
    usage(("smolvm.create: allow_hosts needs smolvm 1.x (found %s)"):format(caps.version))
  end
  if opts.net_backend and not caps.net_backend_flag then
    usage(("smolvm.create: net_backend needs smolvm 1.x (found %s)"):format(caps.version))
  end
  if #cidrs > 0 and opts.net_backend == "tsi" then
    usage("smolvm.create: the TSI backend does not enforce allow_cidrs; use virtio-net")
  end
  if #cidrs > 0 and not caps.allowlist_enforced and not opts.allow_unenforced then
    raise("unprotected", ("smolvm %s would not enforce the egress allowlist: %s")
      :format(caps.version, caps.allowlist_reason), { version = caps.version })
  end

  local args = { "machine", "create" }
  if caps.create_name == "--name" then
    args[#args + 1] = "--name"
  end
  args[#args + 1] = name
  if opts.from then args[#args + 1] = "--from"; args[#args + 1] = opts.from end
  if opts.image then args[#args + 1] = "--image"; args[#args + 1] = opts.image end
  if opts.smolfile then args[#args + 1] = "--smolfile"; args[#args + 1] = opts.smolfile end
  -- 0.8 does not imply --net from --allow-cidr with --from: always explicit.
  if opts.net or #cidrs > 0 or #hosts > 0 then args[#args + 1] = "--net" end
  if opts.net_backend then args[#args + 1] = "--net-backend"; args[#args + 1] = opts.net_backend end
  for _, c in ipairs(cidrs) do args[#args + 1] = "--allow-cidr"; args[#args + 1] = c end
  for _, h in ipairs(hosts) do args[#args + 1] = "--allow-host"; args[#args + 1] = h end
  for _, kv in ipairs(envl) do args[#args + 1] = "-e"; args[#args + 1] = kv end
  if opts.labels then
    local keys = {}
    for k in pairs(opts.labels) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      args[#args + 1] = "--label"; args[#args + 1] = k .. "=" .. tostring(opts.labels[k])
    end
  end
  self:_lifecycle(args, "create", { timeout = opts.timeout })
  self.machine_env[name] = envmap or {}

  local entry = self:status(name)
  if (#cidrs > 0 or #hosts > 0) and opts.verify ~= false then
    local ok, why = M.allowlist_matches(entry, cidrs, hosts)
    if not ok and not opts.allow_unenforced then
      -- Fail closed: remove what we created, then refuse.
      pcall(self.delete, self, name)
      raise("unprotected", ("smolvm %s: the egress allowlist did not take effect on '%s' (%s)")
        :format(caps.version, name, why), { machine = name, version = caps.version })
    end
  end
  return entry
end

-- Does an `ls --json` entry show exactly the allowlist cidrs, with the
-- network on and a backend that enforces it? When the listing shows the
-- allowed hosts (`allowed_hosts`), they must be exactly `hosts` too.
-- Returns ok, reason.
function M.allowlist_matches(entry, cidrs, hosts)
  if type(entry) ~= "table" then return false, "machine not listed" end
  local net = entry.network
  if type(net) ~= "table" then return false, "no network details in `ls --json`" end
  local got = net.allowed_cidrs or net.allow_cidrs or net.allowlist
  if type(got) ~= "table" then return false, "no allowlist in `ls --json`" end
  local want, have = {}, {}
  for _, c in ipairs(cidrs) do want[c] = true end
  for _, c in ipairs(got) do have[c] = true end
  for c in pairs(want) do
    if not have[c] then return false, ("allowlist lacks %s"):format(c) end
  end
  for c in pairs(have) do
    if not want[c] then return false, ("allowlist has extra %s"):format(c) end
  end
  local got_hosts = net.allowed_hosts or net.allow_hosts
  if hosts and #hosts > 0 and type(got_hosts) == "table" then
    local hw, hh = {}, {}
    for _, h in ipairs(hosts) do hw[h] = true end
    for _, h in ipairs(got_hosts) do hh[h] = true end
    for h in pairs(hw) do if not hh[h] then return false, ("allowed hosts lack %s"):format(h) end end
    for h in pairs(hh) do if not hw[h] then return false, ("allowed hosts have extra %s"):format(h) end end
  end
  if net.enabled == false then return false, "network disabled" end
  if net.backend == "tsi" then return false, "TSI backend does not enforce the allowlist" end
  return true
end

function Driver:start(name, opts)
  check_name(name, "start")
  opts = core.options(opts, { "timeout" })
  self:_lifecycle({ "machine", "start", "--name", name }, "start", opts)
end

function Driver:stop(name, opts)
  check_name(name, "stop")
  opts = core.options(opts, { "timeout" })
  self:_lifecycle({ "machine", "stop", "--name", name }, "stop", opts)
end

-- Always -f: without it smolvm asks [y/N] on stdin and, on EOF, prints
-- "Cancelled" and exits 0 having deleted nothing.
function Driver:delete(name, opts)
  check_name(name, "delete")
  opts = core.options(opts, { "timeout" })
  local args
  if self:version().dialect == "0.8" then
    args = { "machine", "delete", "-f", name }
  else
    args = { "machine", "delete", "--name", name, "-f" }
  end
  self:_lifecycle(args, "delete", opts)
  self.machine_env[name] = nil
end

function Driver:ls(opts)
  opts = core.options(opts, { "timeout" })
  local r = self:_call({ "machine", "ls", "--json" }, "ls", { timeout = opts.timeout or 60 })
  local ok, list = pcall(json.decode, r.stdout)
  if not ok or type(list) ~= "table" then
    raise("smolvm", "smolvm ls --json printed something that is not a JSON list",
      { argv = r.argv, stdout = r.stdout })
  end
  -- Some versions wrap the list: {"machines": [...]}.
  if list.machines then list = list.machines end
  return list
end

-- The ls entry of one machine, or nil.
function Driver:status(name)
  check_name(name, "status")
  for _, m in ipairs(self:ls()) do
    if m.name == name then return m end
  end
  return nil
end

-- cp(name, src, dst[, {direction = "in" | "out"}]): "in" copies host src to
-- the machine's dst (default), "out" the machine's src to host dst.
function Driver:cp(name, src, dst, opts)
  check_name(name, "cp")
  opts = core.options(opts, { "direction", "timeout" })
  if type(src) ~= "string" or type(dst) ~= "string" then
    error("smolvm.cp: src and dst must be strings", 2)
  end
  local dir = opts.direction or "in"
  local a, b
  if dir == "in" then a, b = src, name .. ":" .. dst
  elseif dir == "out" then a, b = name .. ":" .. src, dst
  else usage("smolvm.cp: direction must be \"in\" or \"out\"") end
  self:_call({ "machine", "cp", a, b }, "cp", { timeout = opts.timeout })
end

-- pack{image=REF | from_vm=NAME, output=PATH, timeout=} -> the .smolmachine
-- path. 0.8 packs registry references only; --from-vm is 1.x. On 1.x `-o`
-- names a packed executable and the artifact is written beside it as
-- OUT.smolmachine (smolvm refuses an OUT ending in .smolmachine): an output
-- ending in .smolmachine is passed without it, the artifact lands at output
-- and the executable stub beside it is removed; any other output gets the
-- sidecar at output .. ".smolmachine". Packing a VM reads smolvm's state, so
-- it takes the lifecycle lock; packing an image does not (it can take
-- minutes and must not block launches).
function Driver:pack(opts)
  opts = core.options(opts, { "image", "from_vm", "output", "timeout" })
  if type(opts.output) ~= "string" then error("smolvm.pack: output must be a path", 2) end
  if (opts.image == nil) == (opts.from_vm == nil) then
    usage("smolvm.pack: give exactly one of 'image' and 'from_vm'")
  end
  local caps = self:capabilities()
  local args = { "pack", "create" }
  if opts.image then
    args[#args + 1] = "--image"; args[#args + 1] = opts.image
  else
    check_name(opts.from_vm, "pack")
    if not caps.pack_from_vm then
      usage(("smolvm.pack: from_vm needs smolvm 1.x (found %s)"):format(caps.version))
    end
    args[#args + 1] = "--from-vm"; args[#args + 1] = opts.from_vm
  end
  local out, artifact, stub = opts.output, opts.output, nil
  if caps.dialect == "1.x" then
    local stem = out:match("^(.+)%.smolmachine$")
    if stem then out, stub = stem, stem else artifact = out .. ".smolmachine" end
  end
  args[#args + 1] = "-o"; args[#args + 1] = out
  if opts.from_vm then
    self:_lifecycle(args, "pack", { timeout = opts.timeout })
  else
    self:_call(args, "pack", { timeout = opts.timeout })
  end
  if stub then fs.remove(stub, { missing_ok = true }) end
  return artifact
end

-- ---- exec -------------------------------------------------------------------

---@class cork.smolvm.ExecOpts
---@field env? table<string,string>
---@field user? string
---@field home? string
---@field timeout? number
---@field workdir? string
---@field check? boolean          raise on a non-zero status
---@field stdin? string
local exec_opts = { "env", "user", "home", "timeout", "workdir", "check", "stdin" }

-- Remember (or replace) the env passed on every exec into name; create()
-- does this itself. For machines created by another process.
function Driver:set_env(name, env)
  check_name(name, "set_env")
  local _, map = env_list(env, "set_env")
  self.machine_env[name] = map or {}
end

-- exec(name, argv, {env=, user=, home=, timeout=, workdir=, check=, stdin=})
--   -> {status=, stdout=, stderr=}
-- Raises: smolvm-level failures (kind "smolvm", "not_found", ...), "timeout",
-- "killed" (the exec was killed by a signal), and with check = true
-- "exec_failed" for a non-zero guest status.
function Driver:exec(name, argv, opts)
  check_name(name, "exec")
  if type(argv) ~= "table" or #argv == 0 then
    error("smolvm.exec: argv must be a non-empty list of strings", 2)
  end
  for i, a in ipairs(argv) do
    if type(a) ~= "string" then error(("smolvm.exec: argv[%d] must be a string"):format(i), 2) end
  end
  opts = core.options(opts, exec_opts)
  local env = {}
  for k, v in pairs(self.machine_env[name] or {}) do env[k] = v end
  local _, extra = env_list(opts.env, "exec")
  for k, v in pairs(extra or {}) do env[k] = v end
  local cmd = argv
  if opts.user then
    if type(opts.user) ~= "string" or not opts.user:match("^[%w_][%w_.%-]*$") then
      usage(("smolvm.exec: bad user name '%s'"):format(tostring(opts.user)))
    end
    cmd = { "runuser", "-u", opts.user, "--" }
    for _, a in ipairs(argv) do cmd[#cmd + 1] = a end
    if env.HOME == nil then
      env.HOME = opts.home or (opts.user == "root" and "/root" or "/home/" .. opts.user)
    end
    if env.USER == nil then env.USER = opts.user end
  end
  local caps = self:capabilities()
  if opts.workdir and not caps.exec_workdir then
    -- 0.8 has no -w: change directory inside the guest instead.
    local wrapped = { "/bin/sh", "-c", 'cd "$0" && exec "$@"', opts.workdir }
    for _, a in ipairs(cmd) do wrapped[#wrapped + 1] = a end
    cmd = wrapped
  end
  local args = { "machine", "exec", "--name", name }
  for _, kv in ipairs((env_list(env, "exec"))) do args[#args + 1] = "-e"; args[#args + 1] = kv end
  if opts.workdir and caps.exec_workdir then
    args[#args + 1] = "-w"; args[#args + 1] = opts.workdir
  end
  local proc_timeout = self.call_timeout
  if opts.timeout then
    if type(opts.timeout) ~= "number" or opts.timeout <= 0 then
      error("smolvm.exec: timeout must be a positive number of seconds", 2)
    end
    if caps.exec_timeout then
      args[#args + 1] = "--timeout"; args[#args + 1] = ("%ds"):format(math.ceil(opts.timeout))
      proc_timeout = math.ceil(opts.timeout) + 15 -- backstop if the client hangs
    else
      proc_timeout = opts.timeout
    end
  end
  args[#args + 1] = "--"
  for _, a in ipairs(cmd) do args[#args + 1] = a end

  local r = self:_run(args, { timeout = proc_timeout, stdin = opts.stdin })
  if r.timed_out or (caps.exec_timeout and opts.timeout and r.status == 124) then
    raise("timeout", ("smolvm exec in '%s' timed out after %gs"):format(name, opts.timeout or
      proc_timeout), { argv = shown_argv(r.argv), stdout = r.stdout, stderr = r.stderr })
  end
  if r.signal then call_error(r, "exec") end
  -- exec returns the guest's status; smolvm's own failures are status 1 with
  -- "Error: ..." on stderr and nothing on stdout.
  if r.status == 1 and (r.stdout or "") == "" and (r.stderr or ""):match("^Error: ") then
    call_error(r, "exec")
  end
  if r.status == 2 and (r.stderr or ""):match("^error: ") then call_error(r, "exec") end
  local res = { status = r.status, stdout = r.stdout, stderr = r.stderr }
  if opts.check and r.status ~= 0 then
    raise("exec_failed", ("'%s' in '%s' exited with status %d: %s"):format(argv[1], name,
      r.status, first_line(r.stderr)), { argv = shown_argv(r.argv), status = r.status,
      stdout = r.stdout, stderr = r.stderr })
  end
  return res
end

-- wait_ready(name, {timeout=, interval=, max_interval=, successes=, probe=})
-- Poll a trivial exec with backoff until it succeeds `successes` times in a
-- row (an exec right after start can be SIGKILLed ~100 ms in). Returns
-- {attempts=, elapsed=}; raises "timeout" with the last failure.
---@class cork.smolvm.ReadyOpts
---@field timeout? number         seconds (60)
---@field interval? number        first backoff step (0.1)
---@field max_interval? number    (1)
---@field successes? integer      successes in a row (2)
---@field probe? string[]         argv of the probe ({"true"})
local ready_opts = { "timeout", "interval", "max_interval", "successes", "probe" }

function Driver:wait_ready(name, opts)
  check_name(name, "wait_ready")
  opts = core.options(opts, ready_opts)
  local timeout = opts.timeout or 60
  local interval = opts.interval or 0.1
  local max_interval = opts.max_interval or 1.0
  local need = opts.successes or 2
  local probe = opts.probe or { "true" }
  local t0 = core.time()
  local attempts, streak, last = 0, 0, nil
  while true do
    attempts = attempts + 1
    local left = timeout - (core.time() - t0)
    local ok, r = pcall(self.exec, self, name, probe, { timeout = math.max(1, math.min(left, 10)) })
    if ok and r.status == 0 then
      streak = streak + 1
      if streak >= need then
        return { attempts = attempts, elapsed = core.time() - t0 }
      end
    else
      streak = 0
      last = ok and ("probe exited with status " .. tostring(r.status)) or r
      -- A usage error or a machine that does not exist will not heal.
      if not ok and (core.is_error(r, "usage") or core.is_error(r, "not_found")
          or core.is_error(r, "interrupted")) then
        error(r, 0)
      end
    end
    if core.time() - t0 + (streak > 0 and 0 or interval) > timeout then
      local why = type(last) == "table" and tostring(last.message) or tostring(last)
      raise("timeout", ("machine '%s' not ready after %gs (%d attempts): %s")
        :format(name, timeout, attempts, why), { machine = name, attempts = attempts })
    end
    if streak == 0 then
      core.sleep(interval)
      interval = math.min(interval * 2, max_interval)
    end
  end
end

-- ---- module-level functions: the default driver ---------------------------------

local default
local function drv()
  if not default then default = M.driver() end
  return default
end

for _, fn in ipairs { "version", "capabilities", "create", "start", "stop", "delete", "ls",
  "status", "cp", "exec", "wait_ready", "set_env", "pack" } do
  M[fn] = function(...) local d = drv(); return d[fn](d, ...) end
end

-- Forget the default driver (a test changed CORK_SMOLVM, say).
function M.reset() default = nil end

return M
