-- cork.manifest: bottle and agent files.
--
-- A bottle declares what one agent may do (env, git upstreams, egress routes,
-- allowlist, supervise, skills, prompt); an agent file names a bottle and adds
-- skills, a prompt and git user overrides. Both are YAML files or Markdown
-- files with YAML front matter (the Markdown body is the prompt). bot-bottle's
-- own files, every era of its format, load as they are: cork.botbottle holds
-- their shapes (validated here next to cork's) and turns them into cork's.
-- docs/manifests.md is the operator's reference; this file is the rules.
--
-- Error kinds raised here:
--   "manifest"   invalid content: message is "FILE:LINE:COL: PATH: problem"
--                (one line per problem), details {file=, errors={...}}; also
--                extends cycles and missing parents (the chain is named)
--   "not_found"  no bottle / agent of that name in the searched directories
--                (details {name=, searched={dirs}})
--   "usage"      a name that is not a plain name (a path, say)
--   "env"        (resolve_env) a host variable that is not set, or a "?"
--                value with no terminal to ask on
local cork = require "cork"
local schema = require "cork.schema"
local providers = require "cork.providers"
local giturl = require "cork.giturl"
local botbottle = require "cork.botbottle"
local util = require "cork.util"

local S = schema.S
local M = {}
local check_extra_hosts

-- ---- small helpers --------------------------------------------------------

local ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
local NAME = giturl.NAME
local HOST = giturl.HOST
local HOST_WILD = "^[A-Za-z0-9*][A-Za-z0-9.*-]*$"

-- Variables cork itself sets in the agent; a bottle may not override them.
M.reserved_env = {
  HTTP_PROXY = true, HTTPS_PROXY = true, NO_PROXY = true,
  http_proxy = true, https_proxy = true, no_proxy = true,
  GIT_GATE_URL = true, MCP_SUPERVISE_URL = true,
  NODE_EXTRA_CA_CERTS = true, SSL_CERT_FILE = true, REQUESTS_CA_BUNDLE = true,
}

local function fail(kind, msg, details)
  cork.error(kind, msg, details)
end

local function nonempty(v) return v ~= nil and v ~= "" end

local copy, getenv_of = util.copy, util.getenv_of
M.copy = copy

-- ---- git URLs and host keys (cork.giturl) -------------------------------

M.parse_git_url = giturl.parse_url
M.parse_host_key = giturl.parse_host_key

-- ---- the schema -----------------------------------------------------------

local function env_key_check(k)
  if type(k) ~= "string" or not k:find(ENV_NAME) then
    return ("%s is not a valid variable name"):format(type(k) == "string" and ("%q"):format(k) or tostring(k))
  end
  if M.reserved_env[k] then return k .. " is set by cork and cannot be overridden" end
end

-- "${NAME}" references in an env value; nil, problem when malformed.
function M.interpolations(s)
  local vars = {}
  local i = 1
  while true do
    local a = s:find("$", i, true)
    if not a then break end
    if s:sub(a + 1, a + 2) == "${" then
      i = a + 3
    elseif s:sub(a + 1, a + 1) == "{" then
      local b = s:find("}", a + 2, true)
      if not b then return nil, "has an unterminated ${" end
      local name = s:sub(a + 2, b - 1)
      if not name:find(ENV_NAME) then
        return nil, ("refers to ${%s}, which is not a valid variable name"):format(name)
      end
      vars[#vars + 1] = name
      i = b + 1
    else
      i = a + 1
    end
  end
  return vars
end

local env_value = {type = "scalar", check = function(v, at)
  if type(v) == "string" and v:sub(1, 1) ~= "?" then
    local _, problem = M.interpolations(v)
    if problem then at.fail(problem) end
  end
end}

local host_list = S.list(S.string{pattern = HOST_WILD,
  pattern_message = "not a host name (letters, digits, dots, dashes; a leading *. is allowed)"})

local git_user = S.map{fields = {name = S.string{nonempty = true}, email = S.string{nonempty = true}}}

-- HOST:IPV4 entries (a remote's or the bundle's extra_hosts).
local function ipv4_ok(ip)
  if not ip then return false end
  for o in ip:gmatch("%d+") do if tonumber(o) > 255 then return false end end
  return true
end
check_extra_hosts = function(list, at)
  if type(list) ~= "table" then return end
  for i, e in ipairs(list) do
    if type(e) == "string" and not giturl.extra_host_ok(e) then
      at.fail(('extra_hosts[%d]: "%s" is not HOST:IPV4'):format(i, e))
    end
  end
end

-- A CIDR (IPv4 a.b.c.d/n, or IPv6 x:y::/n).
local function cidr_check(v, at)
  local ip, n = v:match("^(%d+%.%d+%.%d+%.%d+)/(%d+)$")
  if ip and ipv4_ok(ip) and tonumber(n) <= 32 then return end
  local ip6, n6 = v:match("^([%x:]+)/(%d+)$")
  if ip6 and ip6:find(":") and tonumber(n6) <= 128 then return end
  at.fail(('"%s" is not a CIDR (a.b.c.d/n or an IPv6 prefix)'):format(v))
end

local remote = S.map{
  fields = {
    name = S.string{pattern = NAME, pattern_message = "must be letters, digits, '.', '_' or '-'"},
    url = S.string{nonempty = true},
    identity_file = S.string{nonempty = true},
    host_key = S.either(S.string{}, S.list(S.string{})),
    extra_hosts = S.list(S.string{}),
  },
  aliases = {identity = "identity_file", known_host = "host_key", host_keys = "host_key"},
  required = {"url"},
  check = function(r, at)
    giturl.check_remote(r, at, {url = {"url"}, identity = {"identity_file", "identity"},
      host_key = {"host_key", "known_host", "host_keys"}})
    check_extra_hosts(r.extra_hosts, at)
  end,
}

-- The bare-repo name git-gate uses for a remote: its name, else the last
-- path element of its URL without ".git".
function M.remote_name(r, i)
  if type(r.name) == "string" then return r.name end
  local u = type(r.url) == "string" and M.parse_git_url(r.url)
  local n = u and (u.path:match("([^/:]+)$") or ""):gsub("%.git$", "") or ""
  if not n:find(NAME) then n = "repo" .. i end
  return n
end

local AUTH_PATTERN_HELP = 'is not an auth scheme (none, bearer, token, basic or header:NAME)'
local route = S.map{
  fields = {
    host = S.string{pattern = HOST, pattern_message = "not a host name"},
    auth = S.either(S.string{check = function(v, at)
      if v ~= "none" and v ~= "bearer" and v ~= "token" and v ~= "basic"
        and not v:find("^header:[A-Za-z0-9-]+$") then
        local hint = schema.suggest(v, {"none", "bearer", "token", "basic"})
        at.fail(("%q %s%s"):format(v, AUTH_PATTERN_HELP, hint and (' (did you mean "' .. hint .. '"?)') or ""))
      end
    end}, botbottle.auth),
    token_ref = S.string{pattern = ENV_NAME, pattern_message = "must name a host environment variable"},
    paths = S.list(S.string{pattern = "^/", pattern_message = "must start with /"}),
    tls_passthrough = S.boolean,
  },
  aliases = botbottle.route_aliases,
  required = {"host"},
  check = function(r, at)
    local auth, ref, key = botbottle.route_auth(r)
    auth = type(auth) == "string" and auth or auth == nil and "none" or nil
    if not auth then    -- a bad scheme, already reported
    elseif auth ~= "none" and schema.is_null(ref) then
      at.fail(('auth "%s" needs a token_ref (the host variable holding the token)'):format(auth), key)
    elseif auth == "none" and type(ref) == "string" then
      at.fail("token_ref without auth: say how the token is sent (bearer, token, basic or header:NAME)",
        "token_ref")
    end
    botbottle.check_route(r, at)
  end,
}
for k, node in pairs(botbottle.route_fields) do route.fields[k] = node end

local agent_block = S.either(
  S.string{enum = providers.names},
  S.map{
    fields = {
      provider = S.string{enum = providers.names},
      image = S.string{nonempty = true},
      from = S.string{nonempty = true},
      command = S.either(S.string{nonempty = true}, S.list(S.string{})),
      user = S.string{pattern = "^[a-z_][a-z0-9_-]*$", pattern_message = "not a user name"},
      home = S.string{pattern = "^/", pattern_message = "must be an absolute path"},
      hosts = host_list,
      token_ref = S.string{pattern = ENV_NAME, pattern_message = "must name a host environment variable"},
    },
    check = function(a, at)
      if (a.provider or "claude") == "custom" and schema.is_null(a.command) then
        at.fail('a custom agent needs a command')
      end
      if (a.provider or "claude") == "custom" and type(a.token_ref) == "string" then
        at.fail("a custom agent has no API host for token_ref (declare an egress route instead)", "token_ref")
      end
    end,
  })

M.bottle_schema = S.map{
  fields = {
    name = S.string{},
    description = S.string{},
    extends = S.string{pattern = NAME, pattern_message = "must name a bottle"},
    agent = agent_block,
    env = S.dict(env_key_check, env_value),
    git = S.map{
      fields = {user = git_user, remotes = S.either(S.list(remote), botbottle.remotes_by_host)},
      aliases = {repos = "remotes"},
      check = function(g, at)
        local key = g.remotes and "remotes" or "repos"
        if type(g[key]) ~= "table" then return end
        local seen = {}
        for _, e in ipairs(botbottle.remote_names(g[key], M.remote_name, at.positions)) do
          if seen[e.name] then
            at.fail(('%s and %s are both named "%s" (set %s on one of them)'):format(seen[e.name], e.label,
              e.name, e.label:find("^%[") and "name:" or "Name:"), key)
          end
          seen[e.name] = seen[e.name] or e.label
        end
      end,
    },
    ["git-gate"] = botbottle.git_gate,
    agent_provider = botbottle.agent_provider,
    egress = S.map{fields = {routes = S.list(route)}},
    allowlist = host_list,
    supervise = S.boolean,
    skills = S.list(S.string{nonempty = true}),
    prompt = S.string{},
    bundle = S.map{fields = {image = S.string{nonempty = true},
      extra_hosts = S.list(S.string{}), extra_ca = S.string{nonempty = true},
      ip_allowlist = S.list(S.string{check = cidr_check})},
      check = function(b, at) check_extra_hosts(b.extra_hosts, at) end},
  },
  check = function(b, at)
    if b.agent == "custom" then
      at.fail("a custom agent needs a command (agent: {provider: custom, command: [...]})", "agent")
    end
    for new, old in pairs({["git-gate"] = "git", agent_provider = "agent"}) do
      if not schema.is_null(b[new]) and not schema.is_null(b[old]) then
        at.fail(('"%s" is also given as "%s"; keep one'):format(new, old), new)
      end
    end
  end,
}

local no_remotes = S.any{check = function(_, at)
  at.fail("an agent file cannot add remotes (declare them in the bottle)")
end}

M.agent_schema = S.map{
  fields = {
    name = S.string{},
    description = S.string{},
    bottle = S.string{pattern = NAME, pattern_message = "must name a bottle"},
    skills = S.list(S.string{nonempty = true}),
    prompt = S.string{},
    git = S.map{fields = {user = git_user, remotes = no_remotes, repos = no_remotes}},
    model = S.scalar, color = S.scalar, memory = S.scalar,    -- Claude subagent fields
  },
  required = {"bottle"},
}

-- ---- parsing --------------------------------------------------------------

-- Split Markdown front matter: returns yaml_text, body, line_offset
-- (lines before the YAML). No front matter: "", whole text, 0.
function M.split_front_matter(text)
  local t = text
  local bom = 0
  if t:sub(1, 3) == "\239\187\191" then t = t:sub(4); bom = 3 end
  local first = t:match("^(%-%-%-)[ \t]*\r?\n")
  if not first then return "", text:sub(bom + 1), 0 end
  local start = t:find("\n", 1, true) + 1
  local pos = start
  while pos <= #t + 1 do
    local eol = t:find("\n", pos, true)
    local line = t:sub(pos, (eol or #t + 1) - 1):gsub("\r$", "")
    if line:find("^%-%-%-[ \t]*$") or line:find("^%.%.%.[ \t]*$") then
      local yaml = t:sub(start, pos - 1)
      local body = eol and t:sub(eol + 1) or ""
      return yaml, body, 1
    end
    if not eol then break end
    pos = eol + 1
  end
  return nil, "front matter starts with --- but never ends (no closing --- line)"
end

local function format_of(file)
  if file:find("%.md$") or file:find("%.markdown$") then return "markdown" end
  return "yaml"
end

-- A key written with no value ("agent:") means the same as a key not
-- written at all; drop them once the document is valid.
local function strip_nulls(t, depth)
  depth = depth or 0
  if type(t) ~= "table" or depth > 64 then return end
  local drop = {}
  for k, v in pairs(t) do
    if schema.is_null(v) then drop[#drop + 1] = k else strip_nulls(v, depth + 1) end
  end
  for _, k in ipairs(drop) do t[k] = nil end
end

-- Decode and validate one file's text. kind is "bottle" or "agent".
-- Returns doc (validated raw table), meta {positions=, line_offset=, body=,
-- format=, file=}. Raises "manifest" errors.
function M.parse(text, file, kind)
  if type(text) ~= "string" then error("manifest.parse: text must be a string", 2) end
  local node = kind == "agent" and M.agent_schema or M.bottle_schema
  local format = format_of(file)
  local yaml_text, body, offset = text, nil, 0
  if format == "markdown" then
    local y, b, o = M.split_front_matter(text)
    if not y then
      fail("manifest", ("%s:1:1: %s"):format(file, b), {file = file, errors = {b}})
    end
    yaml_text, body, offset = y, b, o
  end
  if text:find("\0", 1, true) then
    local msg = ("%s:1:1: not a text file (contains NUL bytes)"):format(file)
    fail("manifest", msg, {file = file, errors = {msg}})
  end
  local doc, positions
  if yaml_text:find("^%s*$") then
    doc, positions = {}, {}
  else
    local ok, a, b = pcall(cork.yaml.decode, yaml_text, {filename = file, positions = true})
    if not ok then
      local err = a
      local msg = type(err) == "table" and tostring(err.message) or tostring(err)
      if not cork.is_error(err) then error(err, 0) end
      local f, l, c, rest = msg:match("^(.-):(%d+):(%d+): (.*)$")
      if f then msg = ("%s:%d:%s: %s"):format(file, tonumber(l) + offset, c, rest)
      else msg = ("%s:1:1: %s"):format(file, msg) end
      fail("manifest", msg, {file = file, errors = {msg}, cause = err.kind})
    end
    doc, positions = a, b or {}
    if schema.is_null(doc) then doc = {} end
  end
  local errors = schema.validate(doc, node, {file = file, positions = positions, line_offset = offset})
  if format == "markdown" and #errors == 0 and type(doc) == "table" and type(doc.prompt) == "string"
    and body and body:find("%S") then
    errors[1] = schema.where(file, positions, doc, "prompt", offset)
      .. ": prompt: given both in the front matter and as the Markdown body; keep one"
  end
  if #errors > 0 then
    fail("manifest", table.concat(errors, "\n"), {file = file, errors = errors})
  end
  strip_nulls(doc)
  local meta = {positions = positions, line_offset = offset, body = body, format = format, file = file}
  meta.warnings, meta.botbottle = botbottle.translate(doc, meta, kind)
  return doc, meta
end

-- ---- normalization --------------------------------------------------------

local function where(meta, t, key) return schema.where(meta.file, meta.positions, t, key, meta.line_offset) end

local function trim_body(body)
  if not body then return nil end
  body = body:gsub("^%s*\n", ""):gsub("%s+$", "")
  if body == "" then return nil end
  return body
end

local function env_entry(name, raw, at)
  local e = {name = name, where = at}
  if type(raw) == "boolean" then raw = raw and "true" or "false"
  elseif type(raw) == "number" then
    raw = math.type(raw) == "integer" and ("%d"):format(raw) or ("%.17g"):format(raw)
  end
  if raw:sub(1, 1) == "?" then
    e.source, e.secret = "ask", true
    local p = raw:sub(2):gsub("^%s+", ""):gsub("%s+$", "")
    e.prompt = p ~= "" and p or name
  else
    local vars = M.interpolations(raw)
    if #vars > 0 then
      e.source, e.secret, e.template, e.vars = "host", true, raw, vars
    else
      e.source, e.secret, e.value = "literal", false, (raw:gsub("%$%${", "${"))
    end
  end
  return e
end

local function normalize_user(u)
  if type(u) ~= "table" then return nil end
  return {name = u.name, email = u.email}
end

local function normalize_skills(list, meta)
  if type(list) ~= "table" then return nil end
  local out = {}
  for i, s in ipairs(list) do out[#out + 1] = {spec = s, where = where(meta, list, i), file = meta.file} end
  return out
end

-- The bottle table the rest of cork uses (see docs/manifests.md).
function M.normalize_bottle(doc, meta, name)
  local b = {kind = "bottle", name = name, file = meta.file, format = meta.format,
    description = doc.description, extends = doc.extends,
    extends_where = doc.extends and where(meta, doc, "extends") or nil, set = {}}
  local function set(k) b.set[k] = true end
  if doc.agent ~= nil then
    set("agent")
    local a = doc.agent
    if type(a) == "string" then a = {provider = a} end
    local cmd = a.command
    if type(cmd) == "string" then cmd = {cmd} end
    b.agent = {provider = a.provider or "claude", image = a.image, from = a.from,
      command = copy(cmd), user = a.user, home = a.home, hosts = copy(a.hosts), token_ref = a.token_ref}
  end
  if type(doc.env) == "table" then
    set("env")
    b.env = {}
    for k, v in pairs(doc.env) do b.env[k] = env_entry(k, v, where(meta, doc.env, k)) end
  end
  if type(doc.git) == "table" then
    local g = doc.git
    b.git = {}
    if g.user then set("git.user"); b.git.user = normalize_user(g.user) end
    local remotes = g.remotes or g.repos
    if type(remotes) == "table" then
      set("git.remotes")
      b.git.remotes = {}
      for i, r in ipairs(remotes) do
        local u = assert(M.parse_git_url(r.url))
        local hk = r.host_key or r.known_host or r.host_keys
        if type(hk) == "string" then hk = {hk} end
        local rname = M.remote_name(r, i)
        b.git.remotes[i] = {
          name = rname, url = r.url, scheme = u.scheme, host = u.host, port = u.port,
          identity_file = r.identity_file or r.identity, host_keys = copy(hk),
          extra_hosts = copy(r.extra_hosts) or {}, where = where(meta, remotes, i), file = meta.file,
        }
      end
    end
  end
  if type(doc.egress) == "table" and type(doc.egress.routes) == "table" then
    set("egress")
    b.egress = {routes = {}}
    for i, r in ipairs(doc.egress.routes) do
      local auth = r.auth or "none"
      local pass = r.tls_passthrough
      if pass == nil then pass = auth ~= "none" end
      b.egress.routes[i] = {host = r.host:lower(), auth = auth,
        token_ref = auth ~= "none" and r.token_ref or nil,
        paths = copy(r.paths) or {}, tls_passthrough = pass,
        where = where(meta, doc.egress.routes, i)}
    end
  elseif type(doc.egress) == "table" then
    set("egress"); b.egress = {routes = {}}
  end
  if type(doc.allowlist) == "table" then
    set("allowlist"); b.allowlist = {}
    for i, h in ipairs(doc.allowlist) do b.allowlist[i] = h:lower() end
  end
  if type(doc.supervise) == "boolean" then set("supervise"); b.supervise = doc.supervise end
  if type(doc.skills) == "table" then set("skills"); b.skills = normalize_skills(doc.skills, meta) end
  local prompt = doc.prompt or trim_body(meta.body)
  if prompt then set("prompt"); b.prompt = prompt end
  if type(doc.bundle) == "table" then
    set("bundle")
    b.bundle = {image = doc.bundle.image, extra_hosts = copy(doc.bundle.extra_hosts) or {},
      extra_ca = doc.bundle.extra_ca, ip_allowlist = copy(doc.bundle.ip_allowlist) or {}}
  end
  return b
end

function M.normalize_agent(doc, meta, name)
  local a = {kind = "agent", name = name, file = meta.file, format = meta.format,
    description = doc.description, bottle = doc.bottle,
    bottle_where = where(meta, doc, "bottle")}
  a.skills = normalize_skills(doc.skills, meta)
  a.prompt = doc.prompt or trim_body(meta.body)
  if type(doc.git) == "table" and doc.git.user then a.git = {user = normalize_user(doc.git.user)} end
  return a
end

-- ---- locations ------------------------------------------------------------

local EXTS = {".yaml", ".yml", ".md"}

local function home_of(opts)
  local getenv = getenv_of(opts)
  local home = (opts and opts.home) or getenv("HOME") or cork.fs.expand_tilde("~")
  -- a relative HOME would only fail much later, as a Docker mount error
  if type(home) ~= "string" or home:sub(1, 1) ~= "/" then
    fail("env", ("HOME=%s is not an absolute path: set HOME to your home directory"):format(tostring(home)),
      {home = home})
  end
  return home
end

local function config_home(opts)
  local getenv = getenv_of(opts)
  local x = getenv("XDG_CONFIG_HOME")
  if x and x:sub(1, 1) == "/" then return x end
  return home_of(opts) .. "/.config"
end

-- The directories searched, in order: {bottles = {...}, agents = {...}}.
function M.dirs(opts)
  opts = opts or {}
  local home, cfg = home_of(opts), config_home(opts)
  local cwd = opts.cwd or getenv_of(opts)("PWD") or "."
  return {
    bottles = {cfg .. "/cork/bottles", home .. "/.bot-bottle/bottles"},
    agents = {cfg .. "/cork/agents", home .. "/.bot-bottle/agents", cwd .. "/.cork/agents"},
  }
end

-- The git working tree containing path, or nil (a .git entry in the file's
-- directory or any parent).
function M.git_worktree_of(path)
  local dir = path:match("^(.*)/[^/]*$")
  if not dir or dir == "" then dir = path:sub(1, 1) == "/" and "/" or "." end
  for _ = 1, 128 do
    if cork.fs.exists(dir .. "/.git") then return dir end
    local parent = dir:match("^(.*)/[^/]*$")
    if parent == nil or parent == dir then break end
    if parent == "" then
      if dir == "/" then break end
      parent = "/"
    end
    dir = parent
  end
  return nil
end

-- Why a search dir cannot be searched (a symlink loop, no permission, not a
-- directory), or nil when it can (or simply does not exist).
local function dir_problem(dir)
  local ok, err = pcall(cork.fs.list, dir)
  if ok or cork.is_error(err, "not_found") and not (err.errno == 20) then return nil end
  if cork.is_error(err, "interrupted") then error(err, 0) end
  return cork.is_error(err) and err.message or tostring(err)
end

-- The precise reason nothing usable was found for name in dirs (a file that
-- is a directory, a dir that cannot be read), or nil.
local function search_problem(dirs, name)
  for _, dir in ipairs(dirs) do
    local why = dir_problem(dir)
    if why then return why end
    for _, ext in ipairs(EXTS) do
      local st = cork.fs.stat(dir .. "/" .. name .. ext)
      if st and st.type == "directory" then
        return ("%s/%s%s is a directory, not a manifest file"):format(dir, name, ext)
      end
    end
  end
end

local function check_name(kind, name)
  if type(name) ~= "string" or not name:find(NAME) or name:find("..", 1, true) then
    fail("usage", ("%s name %q is not a plain name (bottles and agents are named, not given as paths)")
      :format(kind, tostring(name)))
  end
end

-- The directories an operator trusts even inside a git working tree (a
-- $HOME or ~/.config kept in git by a dotfile manager): CORK_TRUSTED_DIRS,
-- ':'-separated absolute paths. A file in one of them, or below, is loaded.
function M.trusted_dirs(opts)
  local out = {}
  for d in (getenv_of(opts)("CORK_TRUSTED_DIRS") or ""):gmatch("[^:]+") do
    d = cork.fs.expand_tilde(d):gsub("/+$", "")
    if d:sub(1, 1) == "/" then out[#out + 1] = d end
  end
  return out
end

local function is_trusted(path, opts)
  for _, d in ipairs(M.trusted_dirs(opts)) do
    if path:sub(1, #d + 1) == d .. "/" then return true end
  end
  return false
end

-- Why the bottle file at path would not be loaded (nil: it would be), and
-- the git working tree it is in.
function M.untrusted(path, opts)
  local tree = M.git_worktree_of(path)
  if tree and not is_trusted(path, opts) then
    return ("it is inside the git working tree %s (bottles load only from your own config directory; "
      .. "if that tree is your own, trust the directory with CORK_TRUSTED_DIRS=%s, see docs/manifests.md)")
      :format(tree, path:match("^(.*)/[^/]*$")), tree
  end
  return nil
end

-- Find the file for a bottle name. Bottles inside a git working tree are
-- skipped with a warning: a cloned repository must not be able to redirect
-- the operator's secrets (unless the operator trusts the directory:
-- CORK_TRUSTED_DIRS). Returns path or raises "not_found".
function M.find_bottle(name, opts)
  opts = opts or {}
  check_name("bottle", name)
  local dirs = M.dirs(opts).bottles
  local warn = opts.warn or cork.log.warn
  for _, dir in ipairs(dirs) do
    for _, ext in ipairs(EXTS) do
      local path = dir .. "/" .. name .. ext
      local st = cork.fs.stat(path)
      if st and st.type ~= "directory" then
        local why, tree = M.untrusted(path, opts)
        if why then
          warn(("ignoring bottle %s: %s"):format(path, why), {bottle = name, path = path, worktree = tree})
        else
          return path
        end
      end
    end
  end
  local why = search_problem(dirs, name)
  if why then
    fail("invalid", ("bottle %q cannot be loaded: %s"):format(name, why), {name = name, searched = dirs})
  end
  local hint = require("cork.args").suggest(name, M.list("bottle", opts))
  fail("not_found", ("no bottle named %q%s (looked in %s; `cork bottles` lists them)"):format(name,
    hint and ("; did you mean %q?"):format(hint) or "", table.concat(dirs, ", ")),
    {name = name, searched = dirs, suggestion = hint})
end

-- Agents come from the operator's config dirs first, then ./.cork/agents,
-- so a repository can add agents but not shadow the operator's own.
function M.find_agent(name, opts)
  opts = opts or {}
  check_name("agent", name)
  local dirs = M.dirs(opts).agents
  for _, dir in ipairs(dirs) do
    for _, ext in ipairs(EXTS) do
      local path = dir .. "/" .. name .. ext
      local st = cork.fs.stat(path)
      if st and st.type ~= "directory" then return path end
    end
  end
  local why = search_problem(dirs, name)
  if why then
    fail("invalid", ("agent %q cannot be loaded: %s"):format(name, why), {name = name, searched = dirs})
  end
  local hint = require("cork.args").suggest(name, M.list("agent", opts))
  fail("not_found", ("no agent named %q%s (looked in %s; `cork bottles` lists them)"):format(name,
    hint and ("; did you mean %q?"):format(hint) or "", table.concat(dirs, ", ")),
    {name = name, searched = dirs, suggestion = hint})
end

-- Names of every bottle / agent found (sorted, without duplicates).
function M.list(kind, opts)
  local dirs = M.dirs(opts)[kind == "agent" and "agents" or "bottles"]
  local seen, out = {}, {}
  for _, dir in ipairs(dirs) do
    local ok, names = pcall(cork.fs.list, dir)
    if ok then
      for _, f in ipairs(names) do
        local n = f:match("^(.+)%.ya?ml$") or f:match("^(.+)%.md$")
        if n and not seen[n] and n:find(NAME) then seen[n] = true; out[#out + 1] = n end
      end
    end
  end
  table.sort(out)
  return out
end

-- ---- loading --------------------------------------------------------------

local function name_of(path)
  return (path:match("([^/]+)$") or path):gsub("%.ya?ml$", ""):gsub("%.md$", "")
end

-- The most a bottle or agent file may hold: they are a few KiB; a file a
-- cloned repository controls (./.cork/agents) must not eat memory.
M.MAX_BYTES = 1024 * 1024

-- read_file(path) -> text: a regular file (a FIFO would block, /dev/zero
-- never end) of at most MAX_BYTES, or kind "manifest" saying which rule.
function M.read_file(path)
  local ok, text = pcall(cork.fs.read, path, {regular = true, max = M.MAX_BYTES})
  if ok then return text end
  local err = text
  if cork.is_error(err, "invalid") then
    fail("manifest", ("%s: %s"):format(path, (err.message:gsub("^cannot read [^:]*: ", ""))), {file = path})
  elseif cork.is_error(err, "too_large") then
    fail("manifest", ("%s: larger than %d bytes (the most a manifest may be)"):format(path, M.MAX_BYTES),
      {file = path})
  end
  error(err, 0)
end

-- Load one bottle file without following extends. Each field cork has no
-- equivalent for (bot-bottle's) is one warning (opts.warn, default
-- cork.log.warn).
function M.load_file(path, kind, name, opts)
  local text = M.read_file(path)
  local doc, meta = M.parse(text, path, kind or "bottle")
  local warn = opts and opts.warn or cork.log.warn
  for _, w in ipairs(meta.warnings) do warn(w, {file = path}) end
  if kind == "agent" then return M.normalize_agent(doc, meta, name or name_of(path)) end
  return M.normalize_bottle(doc, meta, name or name_of(path))
end

local MAX_CHAIN = 16

-- Merge child over parent: env key by key, git.user field by field, every
-- other block replaced whole when the child sets it.
function M.merge(parent, child)
  local m = copy(parent)
  m.name, m.file, m.format, m.description = child.name, child.file, child.format, child.description
  m.extends, m.extends_where = child.extends, child.extends_where
  m.set = m.set or {}
  if child.env then
    m.env = m.env or {}
    for k, e in pairs(child.env) do m.env[k] = copy(e) end
  end
  if child.set["git.user"] then
    m.git = m.git or {}
    m.git.user = m.git.user or {}
    for k, v in pairs(child.git.user) do m.git.user[k] = v end
  end
  if child.set["git.remotes"] then
    m.git = m.git or {}
    m.git.remotes = copy(child.git.remotes)
  end
  for _, k in ipairs({"agent", "egress", "allowlist", "supervise", "skills", "prompt", "bundle"}) do
    if child.set[k] then m[k] = copy(child[k]) end
  end
  for k in pairs(child.set) do m.set[k] = true end
  return m
end

-- Load a bottle by name, following extends. The result carries
-- chain = {name, parent, grandparent, ...} and files = {...} in that order.
function M.load_bottle(name, opts)
  opts = opts or {}
  local chain, files, loaded = {}, {}, {}
  local current, from = name, nil
  while current do
    for _, seen in ipairs(chain) do
      if seen == current then
        chain[#chain + 1] = current
        local msg = #chain == 2
          and ("%s: extends: bottle %q extends itself"):format(from.extends_where, current)
          or ("%s: extends: cycle in bottle chain %s"):format(from.extends_where, table.concat(chain, " -> "))
        fail("manifest", msg, {file = from.file, chain = chain, errors = {msg}})
      end
    end
    if #chain >= MAX_CHAIN then
      local msg = ("%s: extends: bottle chain longer than %d (%s -> ...)"):format(
        from.extends_where, MAX_CHAIN, table.concat(chain, " -> "))
      fail("manifest", msg, {file = from.file, chain = chain, errors = {msg}})
    end
    chain[#chain + 1] = current
    local ok, path = pcall(M.find_bottle, current, opts)
    if not ok then
      local err = path
      if from and cork.is_error(err, "not_found") then
        local msg = ("%s: extends: parent bottle %q not found (chain %s; looked in %s)"):format(
          from.extends_where, current, table.concat(chain, " -> "), table.concat(err.searched or {}, ", "))
        fail("manifest", msg, {file = from.file, chain = chain, errors = {msg}})
      end
      error(err, 0)
    end
    local b = M.load_file(path, "bottle", current, opts)
    files[#files + 1] = path
    loaded[#loaded + 1] = b
    from = b
    current = b.extends
  end
  local merged = loaded[#loaded]
  for i = #loaded - 1, 1, -1 do merged = M.merge(merged, loaded[i]) end
  merged.chain, merged.files = chain, files
  merged.extends = loaded[1].extends
  return merged
end

function M.load_agent(name, opts)
  local path = M.find_agent(name, opts)
  return M.load_file(path, "agent", name, opts)
end

-- named(kind, name[, opts]): load_bottle / load_agent for a name given on a
-- command line, where a name that is not found is a usage error: kind
-- not_found still (editors match on it), exit code 2, and the did-you-mean.
function M.named(kind, name, opts)
  local ok, v = pcall(kind == "agent" and M.load_agent or M.load_bottle, name, opts)
  if ok then return v end
  if cork.is_error(v, "not_found") and v.name == name and v.searched then v.exit_code = 2 end
  error(v, 0)
end

-- ---- env resolution (launch time) ----------------------------------------

-- Ask for a value on the terminal without echo (cork.core.read_secret).
-- Returns the line, or nil when there is no terminal.
function M.ask_tty(prompt)
  local ok, v = pcall(cork.core.read_secret, prompt .. ": ")
  if ok then return v end
  if cork.is_error(v, "no_tty") then return nil end
  error(v, 0)
end

-- Expand ${VAR} references in s with lookup(VAR); "$${" is a literal "${".
function M.expand(s, lookup)
  local out, i = {}, 1
  while i <= #s do
    local a = s:find("$", i, true)
    if not a then out[#out + 1] = s:sub(i); break end
    out[#out + 1] = s:sub(i, a - 1)
    if s:sub(a + 1, a + 2) == "${" then
      out[#out + 1] = "${"; i = a + 3
    elseif s:sub(a + 1, a + 1) == "{" then
      local b = assert(s:find("}", a + 2, true))
      out[#out + 1] = lookup(s:sub(a + 2, b - 1)); i = b + 1
    else
      out[#out + 1] = "$"; i = a + 1
    end
  end
  return table.concat(out)
end

-- Resolve one env entry to its value; secrets are registered with
-- cork.log.secret before they are returned.
function M.resolve_entry(e, opts)
  opts = opts or {}
  local getenv = getenv_of(opts)
  local value
  if e.source == "literal" then
    return e.value
  elseif e.source == "ask" then
    local ask = opts.ask or M.ask_tty
    value = ask(e.prompt, e.name)
    if value == nil then
      fail("env", ("%s: env %s asks for a value on the terminal, but there is no terminal "
        .. "(run cork interactively, or set it from a host variable with \"${VAR}\")"):format(e.where, e.name),
        {name = e.name})
    end
  else
    value = M.expand(e.template, function(var)
      local v = getenv(var)
      if v == nil then
        fail("env", ("%s: env %s: host variable %s is not set"):format(e.where, e.name, var),
          {name = e.name, variable = var})
      end
      return v
    end)
  end
  if value ~= "" then cork.log.secret(value) end
  return value
end

-- name -> value for every env entry of a bottle (secrets included: pass them
-- to containers by name only).
function M.resolve_env(bottle, opts)
  local out = {}
  local names = {}
  for k in pairs(bottle.env or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do out[k] = M.resolve_entry(bottle.env[k], opts) end
  return out
end

return M
