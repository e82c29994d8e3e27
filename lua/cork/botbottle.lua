-- cork.botbottle: bot-bottle's own bottle and agent files, loaded as they
-- are. bot-bottle's format changed over time and an operator may hold a
-- file from any point of it:
--
--   git: {user, remotes: {HOST: {Name, Upstream, IdentityFile, KnownHostKey,
--        ExtraHosts: {HOST: IP}}}}                        (early)
--   git-gate: {user, repos: {NAME: {url, identity, host_key}},
--             key: {provider: static|gitea}}              (later)
--   agent_provider: {template, dockerfile, auth_token, forward_host_credentials}
--   egress.routes[]: {host, role, auth: {scheme: Bearer|token, token_ref},
--     path_allowlist, pipelock: {tls_passthrough, ssrf_ip_allowlist},
--     matches: [{paths: [{type, value}], methods, headers}],
--     dlp: {outbound_detectors, inbound_detectors, outbound_on_match}}
--   agent files: Claude subagent fields model, color, memory
--
-- This module holds the schema nodes for those shapes (cork.manifest puts
-- them next to its own, so a typo in a bot-bottle spelling fails with
-- FILE:LINE:COL and a did-you-mean), the translation of a validated
-- document into cork's own form (translate), with one warning line for each
-- field cork has no equivalent for, and the native text of a file
-- (native_text, behind `cork import-bottle`). docs/manifests.md has the
-- mapping table.
local schema = require "cork.schema"
local giturl = require "cork.giturl"

local S = schema.S
local M = {}

local ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
local IPV4 = "^%d+%.%d+%.%d+%.%d+$"

local function hint(word, candidates)
  local h = schema.suggest(word, candidates)
  return h and (' (did you mean "' .. h .. '"?)') or ""
end

local function ipv4_ok(s)
  if type(s) ~= "string" or not s:find(IPV4) then return false end
  for o in s:gmatch("%d+") do if tonumber(o) > 255 then return false end end
  return true
end

-- An address or prefix for the SSRF allowlist: IPv4 with or without /n, or
-- an IPv6 prefix (as bundle.ip_allowlist takes them).
local function cidr_ok(s)
  local ip, n = s:match("^([%d.]+)/(%d+)$")
  if not ip then ip, n = s, "32" end
  if ipv4_ok(ip) and tonumber(n) <= 32 then return true end
  local ip6, n6 = s:match("^([%x:]+)/(%d+)$")
  return ip6 ~= nil and ip6:find(":") ~= nil and tonumber(n6) <= 128
end

local function host_key_check(k)
  if type(k) ~= "string" or not k:find(giturl.HOST) then
    return ("%s is not a host name"):format(type(k) == "string" and ("%q"):format(k) or tostring(k))
  end
end

local function name_key_check(k)
  if type(k) ~= "string" or not k:find(giturl.NAME) then
    return ("%s is not a repo name (letters, digits, '.', '_' or '-')"):format(
      type(k) == "string" and ("%q"):format(k) or tostring(k))
  end
end

local host_keys = S.either(S.string{}, S.list(S.string{}))
local git_user = S.map{fields = {name = S.string{nonempty = true}, email = S.string{nonempty = true}}}

-- ---- schema nodes ---------------------------------------------------------

-- Early git.remotes: a mapping keyed by host, capitalised fields. Upstream
-- is an ssh:// URL; a missing KnownHostKey fails closed.
M.remote_by_host = S.map{
  fields = {
    Name = S.string{pattern = giturl.NAME, pattern_message = "must be letters, digits, '.', '_' or '-'"},
    Upstream = S.string{nonempty = true},
    IdentityFile = S.string{nonempty = true},
    KnownHostKey = host_keys,
    ExtraHosts = S.dict(host_key_check, S.string{check = function(v, at)
      if not ipv4_ok(v) then at.fail(("%q is not an IPv4 address"):format(v)) end
    end}),
  },
  required = {"Upstream"},
  check = function(r, at)
    giturl.check_remote(r, at, {url = {"Upstream"}, identity = {"IdentityFile"},
      host_key = {"KnownHostKey"}, ssh_only = true})
  end,
}
M.remotes_by_host = S.dict(host_key_check, M.remote_by_host)

-- Later git-gate.repos: a mapping keyed by the repo's name.
M.repo = S.map{
  fields = {url = S.string{nonempty = true}, identity = S.string{nonempty = true}, host_key = host_keys},
  required = {"url"},
  check = function(r, at)
    giturl.check_remote(r, at, {url = {"url"}, identity = {"identity"}, host_key = {"host_key"},
      no_identity_hint = " (cork mints no deploy keys, whatever key.provider says: give identity: PATH)"})
  end,
}
M.git_gate = S.map{
  fields = {
    user = git_user,
    repos = S.dict(name_key_check, M.repo),
    key = S.map{fields = {provider = S.string{enum = {"static", "gitea"}}}},
  },
}

-- "NAME" or "${NAME}": the host variable holding a token.
local function token_var(v) return v:match("^%${([A-Za-z_][A-Za-z0-9_]*)}$") or v end

M.agent_provider = S.map{
  fields = {
    template = S.string{enum = {"claude", "codex"}},
    dockerfile = S.string{nonempty = true},
    auth_token = S.string{check = function(v, at)
      if not token_var(v):find(ENV_NAME) then
        at.fail("must name a host environment variable (NAME or ${NAME}), never the token itself")
      end
    end},
    forward_host_credentials = S.boolean,
  },
}

-- bot-bottle writes the scheme Bearer or token; cork's own names work too.
local SCHEMES = {Bearer = "bearer", bearer = "bearer", token = "token", basic = "basic"}
local function scheme_of(v)
  if type(v) ~= "string" then return nil end
  if SCHEMES[v] then return SCHEMES[v] end
  if v:find("^header:[A-Za-z0-9-]+$") then return v end
  return nil
end

M.auth = S.map{
  fields = {
    scheme = S.string{check = function(v, at)
      if not scheme_of(v) then
        at.fail(("%q is not an auth scheme (Bearer or token; also basic or header:NAME)%s")
          :format(v, hint(v, {"Bearer", "token", "basic"})))
      end
    end},
    token_ref = S.string{pattern = ENV_NAME, pattern_message = "must name a host environment variable"},
  },
  required = {"scheme"},
}

local path_node = S.string{pattern = "^/", pattern_message = "must start with /"}

-- Extra keys of an egress route.
M.route_fields = {
  role = S.string{},
  path_allowlist = S.list(path_node),
  pipelock = S.map{fields = {
    tls_passthrough = S.boolean,
    ssrf_ip_allowlist = S.list(S.string{check = function(v, at)
      if not cidr_ok(v) then at.fail(("%q is not an address or CIDR"):format(v)) end
    end}),
  }},
  matches = S.list(S.map{fields = {
    paths = S.list(S.map{
      fields = {type = S.string{enum = {"prefix", "exact"}}, value = path_node},
      required = {"type", "value"},
    }),
    methods = S.list(S.string{pattern = "^[A-Za-z]+$", pattern_message = "not an HTTP method"}),
    headers = S.dict(function(k)
      if type(k) ~= "string" or not k:find("^[A-Za-z0-9-]+$") then return "not a header name" end
    end, S.scalar),
  }}),
  dlp = S.map{fields = {
    outbound_detectors = S.list(S.string{nonempty = true}),
    inbound_detectors = S.list(S.string{nonempty = true}),
    outbound_on_match = S.string{enum = {"block", "redact", "supervise"}},
  }},
}
M.route_aliases = {path_allowlist = "paths"}

-- The scheme and token_ref of a route, whichever form its auth has (false:
-- an auth mapping the validator already refused).
function M.route_auth(r)
  if type(r.auth) == "table" then
    for k in pairs(r.auth) do if k ~= "scheme" and k ~= "token_ref" then return false end end
    if schema.is_null(r.auth.token_ref) then return scheme_of(r.auth.scheme) or false, r.token_ref, "auth" end
    return scheme_of(r.auth.scheme) or false, r.auth.token_ref, "auth"
  end
  return r.auth, r.token_ref, nil
end

-- Rules that only the bot-bottle keys of a route raise.
function M.check_route(r, at)
  if type(r.auth) == "table" and not schema.is_null(r.auth.token_ref) and not schema.is_null(r.token_ref) then
    at.fail("token_ref is given both here and in auth; keep one", "token_ref")
  end
  local pl = type(r.pipelock) == "table" and r.pipelock or {}
  if not schema.is_null(r.tls_passthrough) and not schema.is_null(pl.tls_passthrough) then
    at.fail("tls_passthrough is given both here and in pipelock; keep one", "tls_passthrough")
  end
  if not schema.is_null(r.matches) and not (schema.is_null(r.paths) and schema.is_null(r.path_allowlist)) then
    at.fail(("matches and %s both restrict paths; keep one"):format(
      schema.is_null(r.paths) and "path_allowlist" or "paths"), "matches")
  end
end

-- Claude subagent fields an agent file may carry.
M.agent_fields = {model = S.scalar, color = S.scalar, memory = S.scalar}

-- The remotes of a git block as {label=, name=} in file order, whichever
-- form they are written in (for the duplicate-name rule).
function M.remote_names(remotes, remote_name, positions)
  local out = {}
  if schema.is_list(remotes) then
    for i, r in ipairs(remotes) do
      if type(r) == "table" then out[#out + 1] = {label = ("[%d]"):format(i), name = remote_name(r, i)} end
    end
    return out
  end
  for i, k in ipairs(M.ordered_keys(remotes, positions)) do
    local r = remotes[k]
    if type(r) == "table" then
      out[#out + 1] = {label = ('"%s"'):format(k), name = remote_name({name = r.Name, url = r.Upstream}, i)}
    end
  end
  return out
end

-- The keys of a mapping in the order the file gives them.
function M.ordered_keys(t, positions)
  local p = positions and positions[t] or {}
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local pa, pb = p[a], p[b]
    if pa and pb and (pa.line ~= pb.line or pa.col ~= pb.col) then
      return pa.line < pb.line or (pa.line == pb.line and pa.col < pb.col)
    end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- ---- translation ----------------------------------------------------------

-- The detectors of cork's filter and push scanner, by name (the bundle's
-- lua/cork/assets/bundle/detectors.py; test_botbottle holds the two equal).
-- Every one runs on every request to every host.
M.DETECTORS = {"aws_access_key", "aws_secret_key", "github_token", "github_pat", "gitlab_pat", "slack_token",
  "private_key", "anthropic_key", "openai_key", "jwt"}

-- The bot-bottle detector names cork has no detector for ("aws" is covered by
-- aws_access_key and aws_secret_key, "github" by github_token and github_pat).
function M.missing_detectors(names)
  local out = {}
  for _, n in ipairs(names) do
    local want = tostring(n):lower():gsub("[-.%s]", "_")
    local found = false
    for _, d in ipairs(M.DETECTORS) do
      if d == want or d:sub(1, #want + 1) == want .. "_" or want:sub(1, #d + 1) == d .. "_" then found = true end
    end
    if not found then out[#out + 1] = tostring(n) end
  end
  return out
end

local Tr = {}
Tr.__index = Tr

function Tr:pos(t, key)
  local p = self.positions[t]
  return p and (key == nil and p[0] or p[key]) or nil
end

function Tr:where(t, key)
  return schema.where(self.file, self.positions, t, key, self.offset)
end

function Tr:warn(t, key, path, msg)
  local w = self:where(t, key)
  local line, col = w:match(":(%d+):(%d+)$")
  self.warnings[#self.warnings + 1] = {line = tonumber(line), col = tonumber(col),
    n = #self.warnings, text = ("%s: %s: %s"):format(w, path, msg)}
end

-- The warnings as lines, in document order.
function Tr:lines()
  table.sort(self.warnings, function(a, b)
    if a.line ~= b.line then return a.line < b.line end
    if a.col ~= b.col then return a.col < b.col end
    return a.n < b.n
  end)
  local out = {}
  for i, w in ipairs(self.warnings) do out[i] = w.text end
  return out
end

-- Give `new` the position `old` has, and key positions renamed by `keys`
-- ({newkey = oldkey}); t[new_key] = value at old_key's place.
function Tr:adopt(new, old, keys)
  local po = self.positions[old] or {}
  local pn = {[0] = po[0]}
  for nk, ok in pairs(keys or {}) do pn[nk] = po[ok] end
  self.positions[new] = pn
  return new
end

function Tr:rename(t, from, to)
  t[to], t[from] = t[from], nil
  local p = self.positions[t]
  if p then p[to], p[from] = p[from], nil end
end

function Tr:set(t, key, value, like)
  t[key] = value
  local p = self.positions[t]
  if p and like then p[key] = p[like] end
end

-- {HOST: IP} -> {"HOST:IP", ...} in file order.
function Tr:extra_hosts(map)
  local out = {}
  for _, h in ipairs(M.ordered_keys(map, self.positions)) do out[#out + 1] = h .. ":" .. map[h] end
  self.positions[out] = {[0] = self:pos(map)}
  return out
end

-- git.remotes {HOST: {Name, Upstream, ...}} -> cork's remotes list.
function Tr:remotes_by_host(map, path)
  local list = {}
  local pl = {[0] = self:pos(map)}
  for _, host in ipairs(M.ordered_keys(map, self.positions)) do
    local r = map[host]
    local n = self:adopt({name = r.Name, url = r.Upstream, identity_file = r.IdentityFile,
      host_key = r.KnownHostKey}, r,
      {name = "Name", url = "Upstream", identity_file = "IdentityFile", host_key = "KnownHostKey",
       extra_hosts = "ExtraHosts"})
    if r.ExtraHosts then n.extra_hosts = self:extra_hosts(r.ExtraHosts) end
    local u = giturl.parse_url(r.Upstream)
    if u and u.host ~= host:lower() then
      self:warn(map, host, path .. "." .. host, ("the Upstream's host is %s; cork goes by the Upstream "
        .. "and does not use this key"):format(u.host))
    end
    list[#list + 1] = n
    pl[#list] = self:pos(map, host)
  end
  self.positions[list] = pl
  return list
end

-- git-gate.repos {NAME: {url, identity, host_key}} -> cork's remotes list.
function Tr:repos(map)
  local list = {}
  local pl = {[0] = self:pos(map)}
  for _, name in ipairs(M.ordered_keys(map, self.positions)) do
    local r = map[name]
    list[#list + 1] = self:adopt({name = name, url = r.url, identity_file = r.identity, host_key = r.host_key},
      r, {url = "url", identity_file = "identity", host_key = "host_key"})
    pl[#list] = self:pos(map, name)
  end
  self.positions[list] = pl
  return list
end

function Tr:git(doc)
  local g = doc.git
  if type(g) == "table" and type(g.remotes or g.repos) == "table" and not schema.is_list(g.remotes or g.repos) then
    local key = g.remotes and "remotes" or "repos"
    local list = self:remotes_by_host(g[key], "git." .. key)
    g[key] = nil
    self:set(g, "remotes", list, key)
  end
  local gg = doc["git-gate"]
  if type(gg) ~= "table" then return end
  local ng = self:adopt({user = gg.user}, gg, {user = "user", remotes = "repos"})
  if gg.repos then ng.remotes = self:repos(gg.repos) end
  if type(gg.key) == "table" and gg.key.provider == "gitea" then
    self:warn(gg.key, "provider", "git-gate.key.provider", "cork does not mint deploy keys through Gitea; "
      .. "each ssh repo uses its own identity file")
  end
  doc["git-gate"] = nil
  self:set(doc, "git", ng, "git-gate")
end

function Tr:agent(doc)
  local ap = doc.agent_provider
  if type(ap) ~= "table" then return end
  local a = self:adopt({provider = ap.template}, ap, {provider = "template", token_ref = "auth_token"})
  if ap.auth_token then a.token_ref = token_var(ap.auth_token) end
  if ap.dockerfile then
    self:warn(ap, "dockerfile", "agent_provider.dockerfile", "cork does not build agent images; not used "
      .. "(give agent.image for docker, agent.from for smolmachines)")
  end
  if ap.forward_host_credentials then
    self:warn(ap, "forward_host_credentials", "agent_provider.forward_host_credentials",
      "cork never forwards host credentials into the agent (egress adds them on the wire); not used")
  end
  doc.agent_provider = nil
  self:set(doc, "agent", a, "agent_provider")
end

-- The routes' pipelock.ssrf_ip_allowlist entries, together, become
-- bundle.ip_allowlist (the filter's one SSRF allowlist), after any the file
-- gives there itself.
function Tr:ssrf_allowlist(doc)
  if #self.ssrf == 0 then return end
  if type(doc.bundle) ~= "table" then self:set(doc, "bundle", {}, "egress") end
  local list, seen = doc.bundle.ip_allowlist or {}, {}
  for _, c in ipairs(list) do seen[c] = true end
  for _, c in ipairs(self.ssrf) do
    if not seen[c] then seen[c] = true; list[#list + 1] = c end
  end
  doc.bundle.ip_allowlist = list
end

function Tr:route(r, path)
  if type(r.auth) == "table" then
    local a = r.auth
    r.auth = scheme_of(a.scheme)
    if a.token_ref then self:set(r, "token_ref", a.token_ref, "auth") end
  end
  if r.path_allowlist then self:rename(r, "path_allowlist", "paths") end
  local pl = r.pipelock
  if type(pl) == "table" then
    if pl.tls_passthrough ~= nil then self:set(r, "tls_passthrough", pl.tls_passthrough, "pipelock") end
    for _, c in ipairs(pl.ssrf_ip_allowlist or {}) do
      self.ssrf[#self.ssrf + 1] = c:find("/", 1, true) and c or (c .. "/32")
    end
    r.pipelock = nil
  end
  if r.role then
    self:warn(r, "role", path .. ".role", ("cork has no route roles; %q is not used"):format(r.role))
    r.role = nil
  end
  if r.matches then
    local paths, all = {}, false
    for i, m in ipairs(r.matches) do
      local mp = ("%s.matches[%d]"):format(path, i)
      if not m.paths or #m.paths == 0 then all = true end
      for _, p in ipairs(m.paths or {}) do
        paths[#paths + 1] = (p.type == "prefix" and p.value:sub(-1) ~= "*") and (p.value .. "*") or p.value
      end
      if m.methods then
        self:warn(m, "methods", mp .. ".methods", "cork's egress does not restrict methods; every method is "
          .. "allowed on these paths")
      end
      if m.headers then
        self:warn(m, "headers", mp .. ".headers", "cork's egress does not match on headers; not used")
      end
    end
    if not all then self:set(r, "paths", paths, "matches") end    -- a match with no paths: all of them
    r.matches = nil
  end
  local dlp = r.dlp
  if type(dlp) == "table" then
    local dp = path .. ".dlp"
    if dlp.outbound_detectors then
      local missing = M.missing_detectors(dlp.outbound_detectors)
      self:warn(dlp, "outbound_detectors", dp .. ".outbound_detectors", "cork's filter runs all its detectors ("
        .. table.concat(M.DETECTORS, ", ") .. ") on every request to every host; this list neither narrows "
        .. "nor extends them" .. (#missing > 0 and ("; cork has no detector for " .. table.concat(missing, ", "))
        or ""))
    end
    if dlp.inbound_detectors then
      self:warn(dlp, "inbound_detectors", dp .. ".inbound_detectors", "cork does not scan responses; not used")
    end
    if dlp.outbound_on_match and dlp.outbound_on_match ~= "block" then
      self:warn(dlp, "outbound_on_match", dp .. ".outbound_on_match", ("cork blocks a request that matches "
        .. "a detector (it does not %s)"):format(dlp.outbound_on_match == "redact" and "redact"
        or "ask supervise"))
    end
    r.dlp = nil
  end
end

-- Turn a validated, null-stripped document into cork's own form, in place
-- (positions follow the moved keys). kind: "bottle" or "agent". Returns
-- the warnings ("FILE:LINE:COL: PATH: what cork does"), and whether any
-- bot-bottle form was found.
function M.translate(doc, meta, kind)
  local tr = setmetatable({file = meta.file, positions = meta.positions, offset = meta.line_offset,
    warnings = {}, ssrf = {}}, Tr)
  local before = M.has_forms(doc, kind)
  if kind == "agent" then
    for _, k in ipairs({"model", "color", "memory"}) do
      if doc[k] ~= nil then
        tr:warn(doc, k, k, "a Claude subagent field; cork does not use it")
        doc[k] = nil
      end
    end
    return tr:lines(), before
  end
  tr:git(doc)
  tr:agent(doc)
  local routes = type(doc.egress) == "table" and doc.egress.routes
  for i, r in ipairs(type(routes) == "table" and routes or {}) do tr:route(r, ("egress.routes[%d]"):format(i)) end
  tr:ssrf_allowlist(doc)
  return tr:lines(), before
end

-- Whether a document uses any bot-bottle form.
function M.has_forms(doc, kind)
  if type(doc) ~= "table" then return false end
  if kind == "agent" then return doc.model ~= nil or doc.color ~= nil or doc.memory ~= nil end
  if doc["git-gate"] or doc.agent_provider then return true end
  local g = doc.git
  local rem = type(g) == "table" and (g.remotes or g.repos)
  if type(rem) == "table" and next(rem) and not schema.is_list(rem) then return true end
  local routes = type(doc.egress) == "table" and doc.egress.routes
  for _, r in ipairs(type(routes) == "table" and routes or {}) do
    if type(r) == "table" then
      if type(r.auth) == "table" then return true end
      for k in pairs(M.route_fields) do if r[k] ~= nil then return true end end
    end
  end
  return false
end

-- ---- the native text --------------------------------------------------------

-- Key order in the native text: each block in the order docs/manifests.md
-- gives it; keys not listed follow, sorted.
local ORDER = {
  bottle = {"name", "description", "extends", "agent", "env", "git", "egress", "allowlist", "supervise",
    "skills", "prompt", "bundle"},
  agent = {"name", "description", "bottle", "skills", "git", "prompt"},
  block = {"provider", "image", "from", "command", "user", "home", "hosts", "remotes", "routes",
    "name", "email", "url", "identity_file", "host_key", "extra_hosts", "host", "auth", "token_ref", "paths",
    "tls_passthrough"},
}

local function ordered(t, order)
  local rank = {}
  for i, k in ipairs(order) do rank[k] = i end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ra, rb = rank[a] or math.huge, rank[b] or math.huge
    if ra ~= rb then return ra < rb end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- YAML lines for value v at indent ind (block style, keys in ORDER, scalars
-- quoted by yaml.encode whenever they would read back as something else).
local function emit(out, yaml, v, ind, order)
  local pad = (" "):rep(ind)
  -- a block scalar's lines go under the key that holds it
  local function scalar(x) return (yaml.encode(x):gsub("\n$", ""):gsub("\n", "\n" .. pad)) end
  if schema.is_list(v) and next(v) ~= nil then
    for _, x in ipairs(v) do
      if type(x) == "table" and next(x) ~= nil then
        local sub = {}
        emit(sub, yaml, x, ind + 2, ORDER.block)
        sub[1] = pad .. "- " .. sub[1]:sub(ind + 3)
        for _, l in ipairs(sub) do out[#out + 1] = l end
      else
        out[#out + 1] = pad .. "- " .. (type(x) == "table" and "[]" or scalar(x))
      end
    end
    return
  end
  for _, k in ipairs(ordered(v, order)) do
    local x = v[k]
    local key = scalar(k)
    if type(x) == "table" and next(x) ~= nil then
      out[#out + 1] = pad .. key .. ":"
      emit(out, yaml, x, ind + 2, ORDER.block)
    else
      out[#out + 1] = pad .. key .. ": " .. (type(x) == "table" and "{}" or scalar(x))
    end
  end
end

-- The native form of a translated document (manifest.parse's doc) as file
-- text: YAML, or Markdown front matter and the body for a .md file.
-- warnings become comment lines saying what was not carried over. yaml is
-- cork.yaml (passed in: this module loads without the C bindings).
function M.native_text(doc, meta, kind, warnings, yaml)
  local out = {("# %s in cork's native form (cork import-bottle); comments in the original are not kept")
    :format(meta.file)}
  for _, w in ipairs(warnings or {}) do out[#out + 1] = "# not carried over: " .. w end
  emit(out, yaml, doc, 0, ORDER[kind] or ORDER.bottle)
  local text = table.concat(out, "\n") .. "\n"
  if meta.format == "markdown" then
    local body = (meta.body or ""):gsub("\n*$", "")
    return "---\n" .. text .. "---\n" .. body .. (body ~= "" and "\n" or "")
  end
  return text
end

return M
