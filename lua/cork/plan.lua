-- cork.plan: turn a bottle (and optionally an agent) into the plan the
-- recipes launch: names, labels, state dir, bundle network, each daemon's
-- config, and the agent's environment. A plan is a plain table (documented
-- in docs/plans.md); building one has no side effects and holds no secret
-- value: secrets are resolved at launch (resolve_secrets) and passed to
-- containers by name.
--
-- Error kinds: "manifest" (a skill that does not exist, a bad hand-built
-- bottle), "network" (no free bundle subnet), "env" (resolve_secrets: a host
-- variable is not set), "usage" (bad options).
local cork = require "cork"
local xdg = require "cork.xdg"
local util = require "cork.util"
local providers = require "cork.providers"
local pipelock = require "cork.pipelock"
local egress = require "cork.egress"
local gitgate = require "cork.gitgate"
local manifest = require "cork.manifest"

local M = {}

M.VERSION = 1

-- The bundle contract: in-container ports and paths (docs/bundle.md).
M.ports = {pipelock = pipelock.PORT, egress = egress.PORT, ["git-gate"] = gitgate.PORT, supervise = 9100}
M.paths = {
  pipelock_config = "/etc/cork/pipelock/pipelock.yaml",
  pipelock_ca_cert = "/etc/cork/pipelock/ca/ca.pem",
  pipelock_ca_key = "/etc/cork/pipelock/ca/ca-key.pem",
  egress_config = "/etc/cork/egress/routes.yaml",
  egress_ca_cert = "/etc/cork/egress/ca/ca.pem",
  egress_ca_key = "/etc/cork/egress/ca/ca-key.pem",
  git_gate_conf = gitgate.CONF,
  supervise_queue = "/var/lib/cork/supervise/queue",
  bundle_extra_ca = "/etc/cork/bundle/extra-ca.pem",
  -- in the agent (VM or container)
  agent_ca = "/usr/local/share/ca-certificates/cork.crt",
  system_ca_bundle = "/etc/ssl/certs/ca-certificates.crt",
}
M.DAEMONS_ENV = "CORK_DAEMONS"
M.DEFAULT_BUNDLE_IMAGE = "cork-bundle:latest"
M.SUBNET_POOL = "10.200.0.0/13"    -- 2048 /24s, away from Docker's defaults

local getenv_of = util.getenv_of

-- ---- identity -------------------------------------------------------------

-- the slug rule lives in cork.journal (cork down checks slugs without the planner)
local journal = require "cork.journal"
M.SLUG_BASE_MAX = journal.SLUG_BASE_MAX
M.SLUG_SUFFIX = journal.SLUG_SUFFIX

local ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

-- n random characters of [a-z0-9] from /dev/urandom.
function M.random_suffix(n)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(n) or nil
  if f then f:close() end
  if not bytes or #bytes < n then
    cork.error("io", "cannot read /dev/urandom for the bottle's slug")
  end
  local out = {}
  for i = 1, n do
    local b = bytes:byte(i) % 36 + 1
    out[i] = ALNUM:sub(b, b)
  end
  return table.concat(out)
end

-- "<name>-<suffix>": [a-z0-9-] only, no leading/trailing/double dashes, at
-- most SLUG_BASE_MAX + 1 + SLUG_SUFFIX characters.
function M.slug(name, suffix)
  local base = tostring(name or ""):lower():gsub("[^a-z0-9]+", "-")
  base = base:sub(1, M.SLUG_BASE_MAX):gsub("^%-+", ""):gsub("%-+$", "")
  if base == "" then base = "bottle" end
  suffix = suffix or M.random_suffix(M.SLUG_SUFFIX)
  return base .. "-" .. suffix
end

M.is_slug = journal.is_slug

function M.names(slug)
  return {
    vm = "cork-" .. slug,
    bundle = "cork-" .. slug .. "-bundle",
    network = "cork-" .. slug .. "-bundle",
    agent = "cork-" .. slug .. "-agent",
    internal_network = "cork-" .. slug .. "-internal",
  }
end

function M.labels(slug, role, bottle)
  return {["cork.slug"] = slug, ["cork.role"] = role, ["cork.bottle"] = bottle}
end

function M.state_dir(slug, opts)
  return xdg.home("state", getenv_of(opts)) .. "/cork/" .. slug
end

-- ---- subnets --------------------------------------------------------------

-- "a.b.c.d/n" -> address (integer), prefix; nil for anything else (IPv6...).
function M.parse_cidr(s)
  if type(s) ~= "string" then return nil end
  local a, b, c, d, n = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)/(%d+)$")
  if not a then
    a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    n = a and "32"
  end
  if not a then return nil end
  a, b, c, d, n = tonumber(a), tonumber(b), tonumber(c), tonumber(d), tonumber(n)
  if a > 255 or b > 255 or c > 255 or d > 255 or n > 32 then return nil end
  return ((a << 24) | (b << 16) | (c << 8) | d), n
end

local function mask(n) return n == 0 and 0 or ((0xffffffff << (32 - n)) & 0xffffffff) end

function M.overlaps(x, y)
  local ax, nx = M.parse_cidr(x)
  local ay, ny = M.parse_cidr(y)
  if not ax or not ay then return false end
  local m = mask(math.min(nx, ny))
  return (ax & m) == (ay & m)
end

local function ip_string(v)
  return ("%d.%d.%d.%d"):format((v >> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255)
end

-- 32-bit FNV-1a.
function M.hash(s)
  local h = 0x811c9dc5
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 0x01000193) & 0xffffffff
  end
  return h
end

-- The bundle's /24 for slug: derived from the slug, then the next free one
-- in the pool when it overlaps any of `existing` (CIDR strings: the subnets
-- Docker's networks already use). `bits` picks subnets of another size (the
-- escape suite's /28 canaries). Returns {subnet=, gateway=, bundle_ip=,
-- probes=}; raises "network" when the pool is full.
function M.pick_subnet(slug, existing, pool, bits)
  pool, bits = pool or M.SUBNET_POOL, bits or 24
  local base, n = M.parse_cidr(pool)
  if not base or n > bits or bits > 30 then error("plan.pick_subnet: bad pool " .. tostring(pool), 2) end
  base = base & mask(n)
  local count = 1 << (bits - n)
  local start = M.hash(slug) % count
  for probe = 0, count - 1 do
    local idx = (start + probe) % count
    local net = base + (idx << (32 - bits))
    local cidr = ip_string(net) .. "/" .. bits
    local clash = false
    for _, e in ipairs(existing or {}) do
      if M.overlaps(cidr, e) then clash = true; break end
    end
    if not clash then
      return {subnet = cidr, gateway = ip_string(net + 1), bundle_ip = ip_string(net + 2), probes = probe + 1}
    end
  end
  cork.error("network", ("no free /%d left in the %s pool %s (%d networks in use)")
    :format(bits, bits == 24 and "bundle subnet" or "subnet", pool, #(existing or {})), {pool = pool})
end

-- The subnets of every network a Docker client knows (d: a cork.docker
-- client, or anything with :networks() returning Docker's network objects).
function M.docker_subnets(d)
  local out = {}
  for _, n in ipairs(d:networks() or {}) do
    local ipam = type(n) == "table" and n.IPAM
    for _, c in ipairs(type(ipam) == "table" and type(ipam.Config) == "table" and ipam.Config or {}) do
      if type(c) == "table" and type(c.Subnet) == "string" then out[#out + 1] = c.Subnet end
    end
  end
  return out
end

-- ---- helpers ---------------------------------------------------------------

local function append_unique(list, seen, items)
  for _, v in ipairs(items or {}) do
    if not seen[v] then seen[v] = true; list[#list + 1] = v end
  end
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t or {}) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Resolve a skill spec: an absolute or ~ path, a path relative to the
-- manifest that names it, or a bare name looked up in the skills dirs.
local function resolve_skill(s, opts)
  local getenv = getenv_of(opts)
  local spec = s.spec
  local candidates = {}
  if spec:sub(1, 1) == "/" or spec:sub(1, 1) == "~" then
    candidates[1] = cork.fs.expand_tilde(spec)
  elseif spec:find("/", 1, true) then
    local dir = (s.file or ""):match("^(.*)/[^/]*$") or "."
    candidates[1] = dir .. "/" .. spec
  else
    local home = getenv("HOME") or cork.fs.expand_tilde("~")
    local cfg = xdg.home("config", getenv)
    candidates = {cfg .. "/cork/skills/" .. spec, home .. "/.bot-bottle/skills/" .. spec}
  end
  for _, c in ipairs(candidates) do
    if cork.fs.exists(c) then
      local name = c:gsub("/+$", ""):match("([^/]+)$")
      return {name = name:gsub("%.md$", ""), source = c}
    end
  end
  cork.error("manifest", ("%s: skills: skill %q not found (looked in %s)"):format(
    s.where or "?", spec, table.concat(candidates, ", ")), {skill = spec})
end

-- ---- lists stay lists ------------------------------------------------------

-- The plan's fields that are lists. An empty one is still a list: marked
-- with cork.json.array, it encodes as [] in JSON and YAML (never {}), so an
-- editor reading a plan sees one type per field, whatever the bottle.
M.LIST_FIELDS = {
  agent_env_at_launch = true, agent_secrets = true, allowlist = true, argv = true, cas = true,
  chain = true, command = true, daemons = true, extra_hosts = true, files = true, hosts = true,
  insteadof = true, ip_allowlist = true, mounts = true, no_proxy = true, passthrough = true, paths = true,
  publish = true,
  routes = true, skills = true, token_slots = true, upstreams = true, vars = true,
}

-- mark_lists(t) -> t, with every table under a LIST_FIELDS key (and every
-- non-empty sequence) marked as an array, recursively.
function M.mark_lists(t, seen)
  seen = seen or {}
  if type(t) ~= "table" or seen[t] then return t end
  seen[t] = true
  for k, v in pairs(t) do
    if type(v) == "table" then
      local n, count = #v, 0
      for _ in pairs(v) do count = count + 1 end
      if (M.LIST_FIELDS[k] and (count == 0 or count == n)) or (n > 0 and count == n) then
        if getmetatable(v) == nil then cork.json.array(v) end
      end
      M.mark_lists(v, seen)
    end
  end
  return t
end

-- ---- build ------------------------------------------------------------------

-- The bottle's egress routes, and the provider's API route when the agent
-- block names its credential (agent.token_ref) and no route covers that host.
function M.routes(bottle, prov)
  local routes = bottle.egress and bottle.egress.routes or {}
  local ref = bottle.agent and bottle.agent.token_ref
  if not ref or not prov.api then return routes end
  for _, r in ipairs(routes) do if r.host == prov.api.host then return routes end end
  local out = {}
  for i, r in ipairs(routes) do out[i] = r end
  out[#out + 1] = {host = prov.api.host, auth = prov.api.auth, token_ref = ref, paths = {}, tls_passthrough = true}
  return out
end

-- Build the plan. bottle: cork.manifest.load_bottle's result; agent: from
-- load_agent, or nil. opts:
--   slug          use this slug (else agent/bottle name + random suffix)
--   suffix        the random part of the slug (tests)
--   subnets       existing Docker subnets: a list of CIDRs, or a function
--                 returning one; nil = not checked (plan.network.checked=false)
--   subnet_pool   CIDR the bundle /24s come from (default SUBNET_POOL)
--   env           table or function for host variables (default os.getenv)
function M.build(bottle, agent, opts)
  opts = opts or {}
  if type(bottle) ~= "table" or bottle.kind ~= "bottle" then
    error("plan.build: bottle must be a table from cork.manifest.load_bottle", 2)
  end
  if agent ~= nil and (type(agent) ~= "table" or agent.kind ~= "agent") then
    error("plan.build: agent must be nil or a table from cork.manifest.load_agent", 2)
  end
  local getenv = getenv_of(opts)
  local p = {version = M.VERSION}

  -- identity
  local slug = opts.slug or M.slug(agent and agent.name or bottle.name, opts.suffix)
  if not M.is_slug(slug) then
    cork.error("usage", ("invalid slug %q (only a-z, 0-9 and single dashes, at most %d characters)")
      :format(slug, M.SLUG_BASE_MAX + 1 + M.SLUG_SUFFIX))
  end
  p.slug = slug
  p.bottle = {name = bottle.name, file = bottle.file, chain = bottle.chain or {bottle.name},
    files = bottle.files or {bottle.file}}
  p.agent = agent and {name = agent.name, file = agent.file} or nil
  p.names = M.names(slug)
  p.labels = {
    bundle = M.labels(slug, "bundle", bottle.name),
    network = M.labels(slug, "network", bottle.name),
    agent = M.labels(slug, "agent", bottle.name),
    vm = M.labels(slug, "vm", bottle.name),
  }
  p.state_dir = M.state_dir(slug, opts)
  p.state_dir_mode = "0700"

  -- network
  local existing = opts.subnets
  if type(existing) == "function" then existing = existing() end
  p.network = M.pick_subnet(slug, existing or {}, opts.subnet_pool)
  p.network.name = p.names.network
  p.network.checked = existing ~= nil

  -- provider
  local prov = providers.resolve(bottle.agent)
  p.provider = {name = prov.name, image = prov.image, from = prov.from, command = prov.command,
    user = prov.user, home = prov.home, hosts = prov.hosts}

  -- daemons: pipelock and egress always, git-gate with upstreams, supervise on demand
  local routes = M.routes(bottle, prov)
  local remotes = bottle.git and bottle.git.remotes or {}
  local daemons = {"pipelock", "egress"}
  if #remotes > 0 then daemons[#daemons + 1] = "git-gate" end
  if bottle.supervise then daemons[#daemons + 1] = "supervise" end
  p.daemons = daemons

  local sd = p.state_dir
  local files, mounts = {}, {}

  -- pipelock
  local allow, seen = {}, {}
  append_unique(allow, seen, prov.hosts)
  for _, r in ipairs(routes) do append_unique(allow, seen, {r.host}) end
  for _, r in ipairs(remotes) do append_unique(allow, seen, {r.host}) end
  append_unique(allow, seen, bottle.allowlist)
  local passthrough = {}
  for _, r in ipairs(routes) do if r.tls_passthrough then passthrough[#passthrough + 1] = r.host end end
  local pl = {
    allowlist = pipelock.uniq(allow),
    passthrough = pipelock.uniq(passthrough),
    port = M.ports.pipelock,
    config_path = sd .. "/pipelock/pipelock.yaml",
    config_mount = M.paths.pipelock_config,
    ca = {dir = sd .. "/ca/pipelock", name = "pipelock", cert = nil, key = nil,
      cert_mount = M.paths.pipelock_ca_cert, key_mount = M.paths.pipelock_ca_key},
  }
  pl.ip_allowlist = bottle.bundle and bottle.bundle.ip_allowlist or {}
  pl.config = pipelock.render({allowlist = pl.allowlist, passthrough = pl.passthrough,
    ca_cert = M.paths.pipelock_ca_cert, ca_key = M.paths.pipelock_ca_key, port = pl.port,
    ip_allowlist = pl.ip_allowlist})
  p.proxy_plan = pl
  files[#files + 1] = {path = pl.config_path, mode = "0644", content = pl.config, role = "pipelock config"}
  mounts[#mounts + 1] = {source = pl.config_path, target = pl.config_mount, read_only = true}

  -- egress
  local slots, env_map, by_ref = egress.token_slots(routes)
  local eg = {
    enabled = #routes > 0,
    port = M.ports.egress,
    routes = egress.wire_routes(routes, by_ref),
    token_slots = slots,
    token_env_map = env_map,
    config_path = sd .. "/egress/routes.yaml",
    config_mount = M.paths.egress_config,
    upstream_proxy = ("http://127.0.0.1:%d"):format(M.ports.pipelock),
    ca = #routes > 0 and {dir = sd .. "/ca/egress", name = "egress", cert = nil, key = nil,
      cert_mount = M.paths.egress_ca_cert, key_mount = M.paths.egress_ca_key} or nil,
  }
  eg.config = egress.render({routes = routes, by_ref = by_ref, upstream_proxy = eg.upstream_proxy,
    ca_cert = M.paths.egress_ca_cert, ca_key = M.paths.egress_ca_key, port = eg.port})
  p.egress_plan = eg
  files[#files + 1] = {path = eg.config_path, mode = "0644", content = eg.config, role = "egress routes"}
  mounts[#mounts + 1] = {source = eg.config_path, target = eg.config_mount, read_only = true}

  -- git-gate
  local function expand(path, r)
    if path:sub(1, 2) == "~/" or path == "~" then
      return (getenv("HOME") or cork.fs.expand_tilde("~")) .. path:sub(2)
    elseif path:sub(1, 1) ~= "/" then
      local dir = (r.file or bottle.file or ""):match("^(.*)/[^/]*$") or "."
      return dir .. "/" .. path
    end
    return path
  end
  local gg = gitgate.plan(remotes, {state_dir = sd, expand = expand})
  if p.provider.from then p.provider.from = expand(p.provider.from, {}) end
  p.git_gate_plan = gg
  if gg then
    for _, f in ipairs(gg.files) do files[#files + 1] = f end
    for _, m in ipairs(gg.mounts) do mounts[#mounts + 1] = m end
  end

  -- supervise
  if bottle.supervise then
    local reg = prov.mcp_register
    p.supervise_plan = {
      port = M.ports.supervise,
      queue_dir = sd .. "/supervise/queue",
      queue_mount = M.paths.supervise_queue,
      mcp = {name = "supervise", transport = "http", url_env = "MCP_SUPERVISE_URL"},
      register = reg and {argv = reg, user = prov.user} or nil,
    }
    mounts[#mounts + 1] = {source = p.supervise_plan.queue_dir, target = M.paths.supervise_queue,
      read_only = false, dir = true}
  end

  -- the bundle's way to real upstreams: names it cannot resolve, and a CA
  -- it trusts for upstreams (a TLS-inspecting corporate proxy's)
  local extra_hosts, seen_eh = {}, {}
  append_unique(extra_hosts, seen_eh, gg and gg.extra_hosts or {})
  append_unique(extra_hosts, seen_eh, bottle.bundle and bottle.bundle.extra_hosts or {})
  local extra_ca = bottle.bundle and bottle.bundle.extra_ca
  if extra_ca then
    extra_ca = expand(extra_ca, {})
    local text = cork.fs.exists(extra_ca) and cork.fs.read(extra_ca)
    if not text then
      cork.error("not_found", ("bundle.extra_ca: %s: no such file"):format(extra_ca), {path = extra_ca})
    elseif not text:find("-----BEGIN CERTIFICATE-----", 1, true) then
      cork.error("invalid", ("bundle.extra_ca: %s holds no PEM certificate"):format(extra_ca), {path = extra_ca})
    end
    mounts[#mounts + 1] = {source = extra_ca, target = M.paths.bundle_extra_ca, read_only = true}
  end

  -- the bundle container
  local first_hop = eg.enabled and "egress" or "pipelock"
  local publish = {first_hop}
  if gg then publish[#publish + 1] = "git-gate" end
  if bottle.supervise then publish[#publish + 1] = "supervise" end
  local benv = {[M.DAEMONS_ENV] = table.concat(daemons, ",")}
  if gg then benv.GIT_GATE_PROXY = ("127.0.0.1:%d"):format(M.ports.pipelock) end
  p.bundle = {
    image = (bottle.bundle and bottle.bundle.image) or getenv("CORK_BUNDLE_IMAGE") or M.DEFAULT_BUNDLE_IMAGE,
    name = p.names.bundle,
    ip = p.network.bundle_ip,
    env = benv,
    token_env = env_map,          -- EGRESS_TOKEN_n -> host variable (value resolved at launch)
    mounts = mounts,
    extra_hosts = extra_hosts,
    extra_ca = extra_ca,
    ports = {},
    publish = publish,
    first_hop = first_hop,
  }
  for _, d in ipairs(daemons) do p.bundle.ports[d] = M.ports[d] end
  p.files = files

  -- the agent
  local user = {}
  if bottle.git and bottle.git.user then for k, v in pairs(bottle.git.user) do user[k] = v end end
  if agent and agent.git and agent.git.user then for k, v in pairs(agent.git.user) do user[k] = v end end
  p.git_user = next(user) and user or nil

  local skills, seen_skill = {}, {}
  local function add_skills(list)
    for _, s in ipairs(list or {}) do
      local r = resolve_skill(s, opts)
      if not seen_skill[r.source] then
        seen_skill[r.source] = true
        r.dest = prov.home .. "/" .. prov.skills_dir .. "/" .. r.name
        skills[#skills + 1] = r
      end
    end
  end
  add_skills(bottle.skills)
  add_skills(agent and agent.skills)
  p.skills = skills

  local prompts = {}
  local function trimmed(t) return (t:gsub("^%s+", ""):gsub("%s+$", "")) end
  if bottle.prompt and bottle.prompt:find("%S") then prompts[#prompts + 1] = trimmed(bottle.prompt) end
  if agent and agent.prompt and agent.prompt:find("%S") then prompts[#prompts + 1] = trimmed(agent.prompt) end
  p.prompt = #prompts > 0 and {text = table.concat(prompts, "\n\n") .. "\n",
    dest = prov.home .. "/" .. prov.prompt_file} or nil

  -- agent env: provider placeholders, CA trust, the bottle's literal env;
  -- secrets by name only; the URLs are stamped at launch (M.stamp).
  local env = {}
  for k, v in pairs(prov.env) do env[k] = v end
  env.NODE_EXTRA_CA_CERTS = M.paths.agent_ca
  env.SSL_CERT_FILE = M.paths.system_ca_bundle
  env.REQUESTS_CA_BUNDLE = M.paths.system_ca_bundle
  local secrets = {}
  for _, name in ipairs(sorted_keys(bottle.env)) do
    local e = bottle.env[name]
    if e.secret then
      env[name] = nil
      secrets[#secrets + 1] = {name = name, source = e.source, vars = e.vars, prompt = e.prompt,
        where = e.where}
    else
      env[name] = e.value
    end
  end
  p.agent_env = env
  p.agent_secrets = secrets
  local launch = {"HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "NO_PROXY", "no_proxy"}
  if gg then launch[#launch + 1] = "GIT_GATE_URL" end
  if bottle.supervise then launch[#launch + 1] = "MCP_SUPERVISE_URL" end
  p.agent_env_at_launch = launch
  p.no_proxy = {"localhost", "127.0.0.1"}
  p.agent_ca = {path = M.paths.agent_ca, cas = eg.enabled and {"pipelock", "egress"} or {"pipelock"}}
  return M.mark_lists(p)
end

-- ---- launch-time helpers -------------------------------------------------

-- NO_PROXY for the agent: localhost, 127.0.0.1, the bottle's alias and the
-- supervise host (the alias in a VM, the bundle's name in a container).
function M.no_proxy(p, alias, supervise_host)
  local list, seen = {}, {}
  append_unique(list, seen, p.no_proxy)
  if alias then append_unique(list, seen, {alias}) end
  if p.supervise_plan and supervise_host then append_unique(list, seen, {supervise_host}) end
  return table.concat(list, ",")
end

-- The agent's full env once the bundle's ports are known.
-- at = {host = alias or bundle hostname, ports = {egress=, pipelock=,
--       ["git-gate"]=, supervise=}, supervise_host=}.
-- Secrets are not included (resolve_secrets).
function M.stamp(p, at)
  if type(at) ~= "table" or type(at.host) ~= "string" or type(at.ports) ~= "table" then
    error("plan.stamp: expected {host=, ports={...}}", 2)
  end
  local env = {}
  for k, v in pairs(p.agent_env) do env[k] = v end
  local hop = p.bundle.first_hop
  local port = at.ports[hop]
  if not port then error("plan.stamp: no port for " .. hop, 2) end
  local proxy = ("http://%s:%d"):format(at.host, port)
  env.HTTPS_PROXY, env.HTTP_PROXY, env.https_proxy, env.http_proxy = proxy, proxy, proxy, proxy
  local np = M.no_proxy(p, at.host, at.supervise_host or at.host)
  env.NO_PROXY, env.no_proxy = np, np
  if p.git_gate_plan then
    env.GIT_GATE_URL = ("git://%s:%d"):format(at.host, assert(at.ports["git-gate"], "no git-gate port"))
  end
  if p.supervise_plan then
    env.MCP_SUPERVISE_URL = ("http://%s:%d/"):format(at.supervise_host or at.host,
      assert(at.ports.supervise, "no supervise port"))
  end
  return env
end

-- The argv that registers supervise with the agent's CLI (nil without
-- supervise or when the provider has no registration command).
function M.mcp_register_argv(p, url)
  local sp = p.supervise_plan
  if not sp or not sp.register then return nil end
  local argv = {}
  for i, a in ipairs(sp.register.argv) do
    argv[i] = a:gsub("{name}", sp.mcp.name):gsub("{url}", url)
  end
  return argv
end

-- Record a minted CA (cork.ca.mint's result) in the plan and mount it.
function M.ca_minted(p, which, ca)
  local slot = which == "egress" and p.egress_plan.ca or which == "pipelock" and p.proxy_plan.ca
  if not slot then error("plan.ca_minted: no " .. tostring(which) .. " CA in this plan", 2) end
  slot.cert, slot.key = ca.cert, ca.key
  local m = p.bundle.mounts
  m[#m + 1] = {source = ca.cert, target = slot.cert_mount, read_only = true}
  m[#m + 1] = {source = ca.key, target = slot.key_mount, read_only = true}
  return slot
end

-- Every host variable the plan's secrets need that is not set (an egress
-- token's, also when empty), in the order of the bottle: the agent's env by
-- name, then the token slots. Each is {variable=, where= "file:line:col",
-- name= (env) or slot=, message=}. Nothing is read but the variables' presence.
function M.unset_variables(p, bottle, opts)
  local getenv = getenv_of(opts)
  local out = {}
  for _, s in ipairs(p.agent_secrets or {}) do
    local e = bottle.env and bottle.env[s.name] or s
    if e.source == "host" then
      local seen = {}
      for _, var in ipairs(e.vars or manifest.interpolations(e.template or "")) do
        if not seen[var] and getenv(var) == nil then
          seen[var] = true
          out[#out + 1] = {variable = var, name = s.name, where = e.where,
            message = ("%s: env %s: host variable %s is not set"):format(e.where or "?", s.name, var)}
        end
      end
    end
  end
  local routes = bottle.egress and bottle.egress.routes or {}
  for _, slot in ipairs(p.egress_plan and p.egress_plan.token_slots or {}) do
    local v = getenv(slot.token_ref)
    if v == nil or v == "" then
      local at
      for _, r in ipairs(routes) do if r.token_ref == slot.token_ref then at = r.where; break end end
      out[#out + 1] = {variable = slot.token_ref, slot = slot.slot, where = at,
        message = ("%segress token %s: host variable %s is not set (routes: %s)"):format(
          at and (at .. ": ") or "", slot.slot, slot.token_ref, table.concat(slot.hosts, ", "))}
    end
  end
  return out
end

-- Resolve every secret at launch: the bottle's secret env (host variables,
-- TTY prompts) and the egress token slots. Each value is registered with
-- cork.log.secret. Every host variable is checked first, and all the unset
-- ones are reported in one error (kind "env", `missing` = unset_variables'
-- list) before anything is asked on the terminal.
-- Returns {agent = {NAME = value}, bundle = {EGRESS_TOKEN_n = value}}.
function M.resolve_secrets(p, bottle, opts)
  opts = opts or {}
  local getenv = getenv_of(opts)
  local missing = M.unset_variables(p, bottle, opts)
  if #missing == 1 then
    cork.error("env", missing[1].message, {variable = missing[1].variable, slot = missing[1].slot,
      name = missing[1].name, missing = missing})
  elseif #missing > 1 then
    local lines = {}
    for i, m in ipairs(missing) do lines[i] = "  " .. m.message end
    cork.error("env", ("%d host variables are not set:\n%s"):format(#missing, table.concat(lines, "\n")),
      {missing = missing})
  end
  local out = {agent = {}, bundle = {}}
  for _, s in ipairs(p.agent_secrets) do
    out.agent[s.name] = manifest.resolve_entry(bottle.env[s.name], opts)
  end
  for _, slot in ipairs(p.egress_plan.token_slots) do
    local v = getenv(slot.token_ref)
    cork.log.secret(v)
    out.bundle[slot.slot] = v
  end
  return out
end

-- Write the plan's config files under its state dir (0700), each with its
-- mode, atomically. Returns the list of paths written.
function M.write_files(p)
  cork.fs.mkdir(p.state_dir, tonumber(p.state_dir_mode, 8))
  local written = {}
  for _, f in ipairs(p.files) do
    local dir = f.path:match("^(.*)/[^/]*$")
    cork.fs.mkdir(dir, tonumber("0700", 8))
    cork.fs.write(f.path, f.content, {mode = tonumber(f.mode, 8), atomic = true})
    written[#written + 1] = f.path
  end
  if p.supervise_plan then cork.fs.mkdir(p.supervise_plan.queue_dir, tonumber("0700", 8)) end
  return written
end

-- A copy of the plan for display: file contents and scripts elided to their
-- size, nothing secret (there is none in a plan; this is belt and braces).
function M.summary(p, opts)
  opts = opts or {}
  local s = util.copy(p)
  if not opts.contents then
    for _, f in ipairs(s.files or {}) do f.content = ("<%d bytes>"):format(#f.content) end
    if s.git_gate_plan then
      for k, v in pairs(s.git_gate_plan.scripts or {}) do s.git_gate_plan.scripts[k] = ("<%d bytes>"):format(#v) end
      s.git_gate_plan.files = nil
    end
  end
  return s
end

return M
