-- cork.docker: the Docker Engine API (docs/api.md, "cork.docker").
--
-- Two layers. The C client, cork._docker (src/docker*.c), owns what needs C:
-- connect and API negotiation, the transport (libcurl, keep-alive,
-- interruptible waits), JSON encoding with the array marker that empty lists
-- need, exec over the hijacked connection, logs, events, image import and
-- request(). This file builds the requests of networks, containers and
-- images from small snake_case option tables, on top of request(), so an
-- operator can read what cork sends and tests/lua/test_docker_bodies.lua can
-- check every body without an engine. The client is the C userdata; the
-- functions below are added to its methods.
local C = require "cork._docker"
local core = require "cork.core"

local M = {
  connect = C.connect,
  array = C.array,
  API_MIN = C.API_MIN,
  API_MAX = C.API_MAX,
  _negotiate = C._negotiate,
  _filters = C._filters,
  _encode = C._encode,
}

local Client = C._Client          -- the client's methods (C and Lua alike)
local options, opt = core.options, core.opt
local array = C.array

-- ---- small helpers ------------------------------------------------------------

local function argerror(fname, n, msg)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, msg), 0)
end

-- A container / network / image reference: a string, or a table with an
-- `id` (what the create calls return). n counts arguments after self.
local function ref(v, n, fname)
  if type(v) == "table" then
    local id = type(v.id) == "string" and v.id or v.Id
    if type(id) ~= "string" then argerror(fname, n, "table without an id") end
    return id
  end
  if type(v) == "number" then v = tostring(v) end
  if type(v) ~= "string" then
    argerror(fname, n, ("string expected, got %s"):format(v == nil and "no value" or type(v)))
  end
  if v == "" then argerror(fname, n, "empty name") end
  return v
end

-- Percent-encode (RFC 3986 unreserved characters kept).
local function escape(s)
  return (s:gsub("[^%w%-_%.~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- path(prefix, ref, rest, k1, v1, k2, v2, ...): "/prefix/<escaped ref>rest?k1=v1&...";
-- nil values are skipped; the keys keep their order.
local function path(prefix, r, rest, ...)
  local out = { prefix, r and escape(r) or "", rest or "" }
  local kv, first = table.pack(...), true
  for i = 1, kv.n, 2 do
    local v = kv[i + 1]
    if v ~= nil then
      out[#out + 1] = (first and "?" or "&") .. kv[i] .. "=" .. escape(tostring(v))
      first = false
    end
  end
  return table.concat(out)
end
M._path = path

local function api_at_least(d, minor)
  local ma, mi = d:api_version():match("^(%d+)%.(%d+)$")
  ma, mi = tonumber(ma), tonumber(mi)
  return ma > 1 or (ma == 1 and mi >= minor)
end

-- request() and its decoded body; `redact` lists values an error must not show.
local function call(d, method, p, body, timeout, redact, grace)
  return d:request(method, p, { body = body, timeout = timeout, redact = redact, grace = grace })
end

-- A create that was sent is let finish for up to this long after an
-- interrupt: abandoned, the engine would make the thing after cork gave up
-- on it (and its cleanup saw "not found"). The interrupt is raised at the
-- next safe point, with the resource made and known (issue 20).
M.CREATE_GRACE = 15

-- {Id=, Warning(s)=} -> {id=, warnings={...}}
local function created(ans)
  if type(ans) ~= "table" then return {} end
  local w = ans.Warnings
  if type(w) ~= "table" then
    w = {}
    if type(ans.Warning) == "string" and ans.Warning ~= "" then w[1] = ans.Warning end
  end
  return { id = ans.Id, warnings = w }
end

-- ---- option readers for bodies ---------------------------------------------------

-- Option k as an array of strings (numbers become strings), or nil.
local function strlist(o, k)
  local src = o[k]
  if src == nil then return nil end
  if type(src) ~= "table" then
    error(("option '%s' must be a list of strings (got %s)"):format(k, type(src)), 0)
  end
  local out = array({})
  for i = 1, #src do
    local v = rawget(src, i)
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("option '%s'[%d] must be a string (got %s)"):format(k, i, v == nil and "nil" or type(v)), 0)
    end
    out[i] = tostring(v)
  end
  return out
end

-- Option k as a map of string -> string (booleans and numbers as text), or nil.
local function strmap(o, k)
  local src = o[k]
  if src == nil then return nil end
  if type(src) ~= "table" then
    error(("option '%s' must be a table of strings (got %s)"):format(k, type(src)), 0)
  end
  local out = {}
  for name, v in pairs(src) do
    if type(name) ~= "string" then error(("option '%s' keys must be strings"):format(k), 0) end
    if type(v) == "boolean" then v = v and "true" or "false"
    elseif type(v) ~= "string" and type(v) ~= "number" then
      error(("option '%s'.%s must be a string (got %s)"):format(k, name, type(v)), 0)
    end
    out[name] = tostring(v)
  end
  return out
end

-- Environment: {"K=V", ...} or {K = "V"} -> sorted array of "K=V". Every
-- value is appended to `secrets`, so that error messages can be redacted.
local function env_list(o, k, secrets)
  local src = o[k]
  if src == nil then return nil end
  if type(src) ~= "table" then error(("option '%s' must be a table (got %s)"):format(k, type(src)), 0) end
  local out = {}
  for name, v in pairs(src) do
    if type(v) ~= "string" and type(v) ~= "number" then
      error(("option '%s' values must be strings (got %s)"):format(k, type(v)), 0)
    end
    v = tostring(v)
    if math.type(name) == "integer" or type(name) == "number" then
      local value = v:match("=(.*)$")
      if not value then error(("option '%s' entry must be \"NAME=value\""):format(k), 0) end
      secrets[#secrets + 1] = value
      out[#out + 1] = v
    elseif type(name) == "string" then
      if name == "" or name:find("=", 1, true) then error(("option '%s' has a bad variable name"):format(k), 0) end
      secrets[#secrets + 1] = v
      out[#out + 1] = name .. "=" .. v
    else
      error(("option '%s' keys must be names or list indices"):format(k), 0)
    end
  end
  table.sort(out)   -- a stable request (map order is random)
  return array(out)
end

-- EndpointSettings of {ip=, aliases=} (o may be nil).
local function endpoint(o)
  local ep = {}
  if not o then return ep end
  local ip = opt(o, "ip", "string")
  if ip then ep.IPAMConfig = { IPv4Address = ip } end
  ep.Aliases = strlist(o, "aliases")
  return ep
end

-- ---- request bodies (pure: unit-tested without an engine) ------------------------

local B = {}
M._body = B

---@class cork.docker.NetworkCreateOpts
---@field name string            required
---@field subnet? string         IPv4 or IPv6 CIDR (IPAM config)
---@field gateway? string        needs subnet
---@field internal? boolean      no route out
---@field labels? table<string,string>
---@field driver? string         default "bridge"
---@field attachable? boolean
---@field options? table<string,string>  driver options
local network_create_opts = { "name", "subnet", "gateway", "internal", "labels", "driver", "attachable", "options" }

-- network_create(opts) -> body
function B.network_create(o)
  options(o, network_create_opts)
  local name = opt(o, "name", "required")
  local subnet, gateway = opt(o, "subnet", "string"), opt(o, "gateway", "string")
  local driver = opt(o, "driver", "string")
  if gateway and not subnet then argerror("network_create", 1, "'gateway' needs 'subnet'") end
  local body = {
    Name = name, CheckDuplicate = true, Driver = driver or "bridge",
    Internal = opt(o, "internal", "boolean", false),
    Attachable = opt(o, "attachable", "boolean", false) or nil,
    Labels = strmap(o, "labels"), Options = strmap(o, "options"),
  }
  if subnet then
    body.IPAM = { Driver = "default", Config = { { Subnet = subnet, Gateway = gateway } } }
  end
  return body
end

---@class cork.docker.ContainerCreateOpts
---@field image string                 required
---@field name? string
---@field cmd? string[]
---@field entrypoint? string[]
---@field env? table                   {K = "V"} or {"K=V"}; values never appear in errors
---@field labels? table<string,string>
---@field user? string
---@field workdir? string
---@field hostname? string
---@field mounts? {source?: string, target: string, read_only?: boolean, type?: string}[]
---@field ports? {container_port: integer|string, host_ip?: string, host_port?: integer|string, protocol?: string}[]
---@field networks? (string|{name: string, ip?: string, aliases?: string[]})[]
---@field network_mode? string         "none", "host", "container:<id>" (not with networks)
---@field cap_drop? string[]
---@field cap_add? string[]
---@field security_opt? string[]
---@field extra_hosts? string[]
---@field dns? string[]                 HostConfig.Dns: the upstream resolvers of the container (on a
---                                    user-defined network, where Docker's embedded DNS forwards names it does not know)
---@field read_only_rootfs? boolean
---@field init? boolean
---@field tmpfs? table                 {"/tmp"} or {["/tmp"] = "size=64m"}
---@field stop_signal? string
---@field stop_timeout? number
---@field tty? boolean
---@field open_stdin? boolean
---@field auto_remove? boolean
---@field memory? number               bytes
---@field pids_limit? number
local create_opts = {
  "name", "image", "cmd", "entrypoint", "env", "labels", "user", "workdir", "mounts",
  "ports", "networks", "cap_drop", "cap_add", "read_only_rootfs", "security_opt", "init",
  "tmpfs", "hostname", "stop_signal", "stop_timeout", "tty", "open_stdin", "auto_remove",
  "extra_hosts", "memory", "pids_limit", "network_mode", "dns" }
local mount_opts = { "source", "target", "read_only", "type" }
local port_opts = { "container_port", "host_ip", "host_port", "protocol" }
local network_opts = { "name", "ip", "aliases" }

local function tmpfs_of(src)
  if type(src) ~= "table" then argerror("container_create", 1, "'tmpfs' must be a table") end
  local out = {}
  for k, v in pairs(src) do
    if math.type(k) == "integer" and type(v) == "string" then out[v] = ""
    elseif type(k) == "string" and type(v) == "string" then out[k] = v
    else error("'tmpfs' must be a list of paths or a map path -> options", 0) end
  end
  return out
end

local function mounts_of(src)
  if type(src) ~= "table" then argerror("container_create", 1, "'mounts' must be a list") end
  local out = array({})
  for i = 1, #src do
    local m = rawget(src, i)
    if type(m) ~= "table" then error(("mounts[%d] must be a table"):format(i), 0) end
    options(m, mount_opts)
    local mtype, s, t = opt(m, "type", "string"), opt(m, "source", "string"), opt(m, "target", "string")
    if not t or (not s and mtype ~= "tmpfs") then
      error(("mounts[%d] needs 'source' and 'target'"):format(i), 0)
    end
    out[i] = { Type = mtype or "bind", Source = s, Target = t, ReadOnly = opt(m, "read_only", "boolean", false) }
  end
  return out
end

-- "80" | 80 | "80/udp" (+ protocol) -> "80/tcp"
local function port_key(p, what)
  local cp = p.container_port
  if type(cp) ~= "number" and type(cp) ~= "string" then
    error(("%s: 'container_port' is required (a number or \"80/tcp\")"):format(what), 0)
  end
  cp = tostring(cp)
  local proto = opt(p, "protocol", "string")
  if cp:find("/", 1, true) then
    if proto then error(("%s: give the protocol in 'container_port' or 'protocol', not both"):format(what), 0) end
    return cp
  end
  local n = cp:match("^%s*[+]?(%d+)$") and tonumber(cp:match("(%d+)$"))
  if not n or n <= 0 or n > 65535 then error(("%s: bad container_port '%s'"):format(what, cp), 0) end
  return ("%d/%s"):format(n, proto or "tcp")
end

-- ports -> ExposedPorts, PortBindings
local function ports_of(src)
  if type(src) ~= "table" then argerror("container_create", 1, "'ports' must be a list") end
  local exposed, bindings = {}, {}
  for i = 1, #src do
    local p = rawget(src, i)
    if type(p) ~= "table" then error(("ports[%d] must be a table"):format(i), 0) end
    options(p, port_opts)
    local what = ("ports[%d]"):format(i)
    local key = port_key(p, what)
    local hip = opt(p, "host_ip", "string")
    local hp, hport = p.host_port, ""
    if math.type(hp) == "integer" and hp >= 0 and hp <= 65535 then
      if hp > 0 then hport = tostring(hp) end
    elseif type(hp) == "string" and #hp < 16 then
      hport = hp
    elseif hp ~= nil then
      error(("%s: bad host_port (a port number, or \"\" for any)"):format(what), 0)
    end
    exposed[key] = {}
    bindings[key] = bindings[key] or {}
    table.insert(bindings[key], { HostIp = hip or "", HostPort = hport ~= "0" and hport or "" })
  end
  return exposed, bindings
end

-- networks -> {{name=, ep=EndpointSettings}, ...}
local function networks_of(src)
  if type(src) ~= "table" then argerror("container_create", 1, "'networks' must be a list") end
  local out = {}
  for i = 1, #src do
    local n = rawget(src, i)
    if type(n) == "string" then
      out[i] = { name = n, ep = {} }
    elseif type(n) == "table" then
      options(n, network_opts)
      local name = opt(n, "name", "string")
      if not name or name == "" then error(("networks[%d] needs a 'name'"):format(i), 0) end
      out[i] = { name = name, ep = endpoint(n) }
    else
      error(("networks[%d] must be a name or a table"):format(i), 0)
    end
  end
  return out
end

local function whole(x) return math.tointeger(x >= 0 and math.floor(x) or math.ceil(x)) end

-- container_create(opts, api_minor) -> body, path, secrets, networks
-- (networks: the normalized list; on API < 1.44 only the first is in the
-- body, the caller connects the others after create).
function B.container_create(o, api_minor)
  options(o, create_opts)
  local secrets = {}
  local name = opt(o, "name", "string")
  local image = opt(o, "image", "required")
  local body = {
    Image = image, Cmd = strlist(o, "cmd"), Entrypoint = strlist(o, "entrypoint"),
    Env = env_list(o, "env", secrets), Labels = strmap(o, "labels"),
    User = opt(o, "user", "string"), WorkingDir = opt(o, "workdir", "string"),
    Hostname = opt(o, "hostname", "string"), StopSignal = opt(o, "stop_signal", "string"),
    Tty = opt(o, "tty", "boolean", false) or nil,
    OpenStdin = opt(o, "open_stdin", "boolean", false) or nil,
  }
  local st = opt(o, "stop_timeout", "number", -1)
  if st >= 0 then body.StopTimeout = whole(st) end
  local hc = {
    CapDrop = strlist(o, "cap_drop"), CapAdd = strlist(o, "cap_add"),
    SecurityOpt = strlist(o, "security_opt"), ExtraHosts = strlist(o, "extra_hosts"),
    Dns = strlist(o, "dns"),
    ReadonlyRootfs = opt(o, "read_only_rootfs", "boolean", false) or nil,
    Init = opt(o, "init", "boolean", false) or nil,
    AutoRemove = opt(o, "auto_remove", "boolean", false) or nil,
  }
  local mem, pids = opt(o, "memory", "number", -1), opt(o, "pids_limit", "number", -1)
  if mem > 0 then hc.Memory = whole(mem) end
  if pids > 0 then hc.PidsLimit = whole(pids) end
  if o.tmpfs ~= nil then hc.Tmpfs = tmpfs_of(o.tmpfs) end
  if o.mounts ~= nil then hc.Mounts = mounts_of(o.mounts) end
  if o.ports ~= nil then body.ExposedPorts, hc.PortBindings = ports_of(o.ports) end
  local nets = {}
  if o.networks ~= nil then nets = networks_of(o.networks) end
  if #nets > 0 then
    -- create time: all networks on >= 1.44, else the first one only
    local eps = {}
    for i = 1, (api_minor >= 44 and #nets or 1) do eps[nets[i].name] = nets[i].ep end
    body.NetworkingConfig = { EndpointsConfig = eps }
    hc.NetworkMode = nets[1].name
  end
  -- network_mode: "none", "host", "container:<id>" (a container sharing
  -- another's network namespace); the networks option names bridges
  local nmode = opt(o, "network_mode", "string")
  if nmode then
    if nmode == "" or #nets > 0 then argerror("container_create", 1, "give 'network_mode' or 'networks', not both") end
    hc.NetworkMode = nmode
  end
  body.HostConfig = hc
  return body, path("/containers/create", nil, nil, "name", name), secrets, nets
end

-- ---- networks ------------------------------------------------------------------

-- d:network_create{name, subnet, gateway, internal, labels, driver, attachable, options} -> {id=, warnings=}
function Client.network_create(d, o)
  if type(o) ~= "table" then argerror("network_create", 1, "table expected, got " .. type(o)) end
  local body = B.network_create(o)
  return created(call(d, "POST", "/networks/create", body, nil, nil, M.CREATE_GRACE).body)
end

-- d:network_inspect(ref) -> Docker's network object
function Client.network_inspect(d, r)
  return call(d, "GET", path("/networks/", ref(r, 1, "network_inspect"))).body
end

-- d:network_remove(ref) -> true
function Client.network_remove(d, r)
  call(d, "DELETE", path("/networks/", ref(r, 1, "network_remove")))
  return true
end

local function filters_opt(o, fname)
  if o ~= nil and type(o) ~= "table" then argerror(fname, 1, "table expected, got " .. type(o)) end
  local f = o and o.filters
  return f ~= nil and C._filters(f) or nil
end

-- d:networks{filters} -> list of network objects
function Client.networks(d, o)
  options(o, { "filters" })
  return call(d, "GET", path("/networks", nil, nil, "filters", filters_opt(o, "networks"))).body
end

local function network_connect(d, net, container, ep)
  call(d, "POST", path("/networks/", net, "/connect"), { Container = container, EndpointConfig = ep })
end

-- d:network_connect(net, container[, {ip, aliases}]) -> true
function Client.network_connect(d, net, ctr, o)
  net, ctr = ref(net, 1, "network_connect"), ref(ctr, 2, "network_connect")
  if o ~= nil then options(o, { "ip", "aliases" }) end
  network_connect(d, net, ctr, endpoint(o))
  return true
end

-- d:network_disconnect(net, container[, {force}]) -> true
function Client.network_disconnect(d, net, ctr, o)
  net, ctr = ref(net, 1, "network_disconnect"), ref(ctr, 2, "network_disconnect")
  options(o, { "force" })
  call(d, "POST", path("/networks/", net, "/disconnect"),
    { Container = ctr, Force = opt(o, "force", "boolean", false) })
  return true
end

-- ---- containers ----------------------------------------------------------------

-- d:container_create{...} -> {id=, warnings=}
function Client.container_create(d, o)
  if type(o) ~= "table" then argerror("container_create", 1, "table expected, got " .. type(o)) end
  local minor = api_at_least(d, 44) and 44 or 0
  local body, p, secrets, nets = B.container_create(o, minor)
  local res = created(call(d, "POST", p, body, nil, secrets, M.CREATE_GRACE).body)
  -- older engines: connect the other networks now, before any start; on
  -- failure remove the half-made container (as a cleanup: an interrupt
  -- does not stop it), then raise the first error
  if #nets > 1 and minor < 44 then
    for i = 2, #nets do
      local ok, err = pcall(network_connect, d, nets[i].name, res.id, nets[i].ep)
      if not ok then
        local s = require("cork.scope").new("container_create")
        s:defer(function() pcall(Client.container_remove, d, res.id, { force = true, volumes = true }) end)
        pcall(s.close, s)
        error(err, 0)
      end
    end
  end
  return res
end

-- d:container_start(ref) -> true (started) | false (was already running)
function Client.container_start(d, r)
  return call(d, "POST", path("/containers/", ref(r, 1, "container_start"), "/start")).status ~= 304
end

-- Poll inspect until the container is not running or the deadline.
local function wait_not_running(d, r, deadline)
  local p = path("/containers/", r, "/json")
  while true do
    local st = call(d, "GET", p).body.State
    if not (st and st.Running) or core.time() >= deadline then return st and st.Running or false end
    core.sleep(0.05)
  end
end

-- The HTTP status of a raised Docker error (nil for anything else).
local function status_of(err) return type(err) == "table" and math.type(err.status) and err.status or nil end

---@class cork.docker.StopOpts
---@field timeout? number     seconds before SIGKILL (default: the container's)
---@field signal? string      the stop signal (emulated before API 1.42)

-- d:container_stop(ref[, {timeout, signal}]) -> true (stopped) | false (was not running)
function Client.container_stop(d, r, o)
  r = ref(r, 1, "container_stop")
  options(o, { "timeout", "signal" })
  local t, sig = opt(o, "timeout", "number", -1), opt(o, "signal", "string")
  if sig and not api_at_least(d, 42) then
    -- API < 1.42 has no stop signal: send it, give the grace period, then
    -- SIGKILL, as the daemon would
    local ok, err = pcall(call, d, "POST", path("/containers/", r, "/kill", "signal", sig))
    if not ok then
      if status_of(err) == 409 then return false end -- not running
      error(err, 0)
    end
    if wait_not_running(d, r, core.time() + (t >= 0 and t or 10)) then
      ok, err = pcall(call, d, "POST", path("/containers/", r, "/kill", "signal", "SIGKILL"))
      if not ok and not status_of(err) then error(err, 0) end
      wait_not_running(d, r, core.time() + 10)
    end
    return true
  end
  local p = path("/containers/", r, "/stop", "t", t >= 0 and whole(t) or nil, "signal", sig)
  local timeout = C._timeout(d) + (t > 0 and t or 10)
  return call(d, "POST", p, nil, timeout).status ~= 304
end

-- d:container_kill(ref[, signal]) -> true
function Client.container_kill(d, r, sig)
  r = ref(r, 1, "container_kill")
  if sig ~= nil and type(sig) ~= "string" and type(sig) ~= "number" then
    argerror("container_kill", 2, "string expected, got " .. type(sig))
  end
  call(d, "POST", path("/containers/", r, "/kill", "signal", sig))
  return true
end

-- d:container_remove(ref[, {force, volumes}]) -> true
function Client.container_remove(d, r, o)
  r = ref(r, 1, "container_remove")
  options(o, { "force", "volumes" })
  call(d, "DELETE", path("/containers/", r, "", "force", opt(o, "force", "boolean", false) and 1 or nil,
    "v", opt(o, "volumes", "boolean", false) and 1 or nil))
  return true
end

-- d:container_inspect(ref) -> Docker's container object
function Client.container_inspect(d, r)
  return call(d, "GET", path("/containers/", ref(r, 1, "container_inspect"), "/json")).body
end

-- d:containers{all, filters, limit} -> list of container summaries
function Client.containers(d, o)
  options(o, { "all", "filters", "limit" })
  local limit = opt(o, "limit", "number", -1)
  return call(d, "GET", path("/containers/json", nil, nil, "all", opt(o, "all", "boolean", false) and 1 or nil,
    "limit", limit > 0 and whole(limit) or nil, "filters", filters_opt(o, "containers"))).body
end

---@class cork.docker.WaitOpts
---@field condition? string   "not-running" (default), "next-exit", "removed"
---@field timeout? number     seconds (default: no limit)

-- d:container_wait(ref[, {condition, timeout}]) -> {status=, error=}
function Client.container_wait(d, r, o)
  r = ref(r, 1, "container_wait")
  options(o, { "condition", "timeout" })
  local t = opt(o, "timeout", "number", 0)
  -- no total timeout unless asked: a wait is as long as the container
  local ans = call(d, "POST", path("/containers/", r, "/wait", "condition", opt(o, "condition", "string")),
    nil, t > 0 and t or math.huge).body
  local res = {}
  if type(ans) == "table" then
    if type(ans.StatusCode) == "number" then res.status = whole(ans.StatusCode) end
    local e = type(ans.Error) == "table" and ans.Error.Message
    if type(e) == "string" and e ~= "" then res.error = e end
  end
  return res
end

-- d:host_port(container, container_port[, host_ip]) -> port number
function Client.host_port(d, r, cport, hip)
  r = ref(r, 1, "host_port")
  local key
  if math.type(cport) == "integer" then
    if cport <= 0 or cport > 65535 then argerror("host_port", 2, "bad port") end
    key = ("%d/tcp"):format(cport)
  elseif type(cport) == "string" or type(cport) == "number" then
    cport = tostring(cport)
    key = cport:find("/", 1, true) and cport or cport .. "/tcp"
  else
    argerror("host_port", 2, cport == nil and "value expected" or "string expected, got " .. type(cport))
  end
  if hip ~= nil and type(hip) ~= "string" then argerror("host_port", 3, "string expected, got " .. type(hip)) end
  local ins = call(d, "GET", path("/containers/", r, "/json")).body
  -- NetworkSettings.Ports exists in every API version (the top-level
  -- NetworkSettings address fields are gone in 1.52)
  local ns = type(ins.NetworkSettings) == "table" and ins.NetworkSettings
  local ports = ns and type(ns.Ports) == "table" and ns.Ports
  local list = ports and type(ports[key]) == "table" and ports[key] or {}
  for _, b in ipairs(list) do
    local port = type(b.HostPort) == "string" and b.HostPort or nil
    if port and port ~= "" and (not hip or b.HostIp == hip) then
      return math.tointeger(tonumber(port:match("^%d+") or "0"))
    end
  end
  local cname = type(ins.Name) == "string" and ins.Name:gsub("^/", "") or r
  local running = type(ins.State) == "table" and ins.State.Running
  core.error("not_found", ("container %s has no host port for %s%s%s"):format(cname, key,
    hip and " on " .. hip or "", running and "" or " (it is not running)"), { container = r, container_port = key })
end

-- ---- images ------------------------------------------------------------------------

-- d:image_inspect(ref) -> Docker's image object
function Client.image_inspect(d, r)
  return call(d, "GET", path("/images/", ref(r, 1, "image_inspect"), "/json")).body
end

-- d:image_remove(ref[, {force, noprune}]) -> list of {Untagged=|Deleted=}
function Client.image_remove(d, r, o)
  r = ref(r, 1, "image_remove")
  options(o, { "force", "noprune" })
  return call(d, "DELETE", path("/images/", r, "", "force", opt(o, "force", "boolean", false) and 1 or nil,
    "noprune", opt(o, "noprune", "boolean", false) and 1 or nil)).body
end

return M
