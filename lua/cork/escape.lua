-- cork.escape: the sandbox-escape suite's attacks (as data) and verdicts.
--
--   local escape = require "cork.escape"
--   local attacks = escape.load({ dir = "~/my-attacks" })   -- built-ins + a dir
--   local v = escape.verdict(attack, { output = ..., hits = {...}, secrets = {...},
--                                     standin = true })
--
-- An attack is one Lua file returning a table (lua/cork/escape/*.lua are the
-- built-in ones; `cork run escape-suite --attacks DIR` adds a user's):
--   id        number or string, shown in reports ("1", "2p", ...)
--   name      what it tries, one line
--   layer     "network" (must hold with any bundle, the stand-in too) or
--             "content" (needs a bundle that filters)
--   requires  "filtering bundle": with the stand-in bundle the verdict is
--             "not applicable: stand-in bundle" (never "blocked")
--   stops     what stops it (which layer); docs/security.md's table
--   targets   canaries it aims at; the script runs once per target with
--             $HOST and $PORT set, $ENDPOINTS (every "addr:port" of the
--             target, space separated; "$HOST:$PORT" for most) and $GATEWAY
--             (the agent's gateway):
--               neighbour     a canary container on a network of its own
--               host_loopback a canary on the host's 127.0.0.1
--               host_gateway  a canary on the agent network's gateway address
--               link_local    a canary container on a 169.254.x.0/28 network
--               resolver      a canary container on a 203.0.113.x/28 network
--                             (TEST-NET-3), port 53: the agent's upstream
--                             DNS (where Docker's embedded DNS forwards)
--               neighbour_bundle  a second bottle's bundle (same recipe):
--                             $ENDPOINTS lists each of its addresses with
--                             each daemon port, and what it publishes
--             The agent's env holds the planted agent secret as
--             $CORK_ESCAPE_AGENT_SECRET (what an exfiltration would carry).
--   script    sh, run inside the agent as the agent's user; a line
--             "REACHED <evidence>" says it got through
--   secrets   planted secrets ("egress_token") that must never show up in
--             the script's output
--   sanity    planted secrets that must show up (else the script's dump did
--             not work: verdict "error")
--   backends  the backends it applies to (default: all, M.BACKENDS); on
--             another the verdict is "not applicable: <backend> only"
--   docker, smolmachines
--             what differs on that backend: a table of any of stops,
--             targets, script, secrets, sanity (replacing the attack's own),
--             or { not_applicable = "why" } (verdict "not applicable: why")
-- Targets on smolmachines (the guest reaches the host through smolvm's
-- gateway): host_loopback is dialled at 127.0.0.1 (the guest's own
-- loopback), smol_gateway at 100.96.0.1 (which smolvm relays to the host's
-- 127.0.0.1: the same kind of canary there), host_gateway is a host address
-- off the allowlist (the bundle network's gateway), and resolver a canary
-- container that smolvm's DNS forwarder would reach (the stand-in's
-- FAKE_SMOLVM_RESOLVER; $HOST is its address, off the allowlist).
-- Whether a canary recorded anything (the check from outside) decides as
-- much as what the script says.
local cork = require "cork"

local M = {}

M.TARGETS = { neighbour = true, host_loopback = true, host_gateway = true, link_local = true, resolver = true,
  neighbour_bundle = true, smol_gateway = true }
M.BACKENDS = { "docker", "smolmachines" }
M.STANDIN_NA = "not applicable: stand-in bundle"
local PER_BACKEND = { stops = true, targets = true, script = true, secrets = true, sanity = true,
  not_applicable = true }

local function check(a, where)
  local function bad(msg) cork.error("usage", ("%s: %s"):format(where, msg)) end
  if type(a) ~= "table" then bad("an attack file must return a table") end
  if type(a.id) ~= "number" and type(a.id) ~= "string" then bad("id must be a number or a string") end
  if type(a.name) ~= "string" or a.name == "" then bad("name must be a non-empty string") end
  if a.layer ~= "network" and a.layer ~= "content" then bad("layer must be \"network\" or \"content\"") end
  if a.requires ~= nil and a.requires ~= "filtering bundle" then bad("requires must be \"filtering bundle\"") end
  if a.script ~= nil and type(a.script) ~= "string" then bad("script must be a string") end
  if a.script == nil and a.requires == nil and a.not_applicable == nil then bad("an attack needs a script (or requires = \"filtering bundle\", or not_applicable)") end
  for _, t in ipairs(a.targets or {}) do
    if not M.TARGETS[t] then
      local known = {}
      for k in pairs(M.TARGETS) do known[#known + 1] = k end
      table.sort(known)
      bad(("unknown target '%s' (known: %s)"):format(t, table.concat(known, ", ")))
    end
  end
  if a.not_applicable ~= nil and (type(a.not_applicable) ~= "string" or a.not_applicable == "") then
    bad("not_applicable must be a non-empty string (why)")
  end
  a.id = tostring(a.id)
  a.targets = a.targets or {}
  a.secrets = a.secrets or {}
  a.sanity = a.sanity or {}
  a.source = where
  return a
end

local function is_backend(b)
  for _, x in ipairs(M.BACKENDS) do if x == b then return true end end
  return false
end

-- resolve(raw, backend) -> the attack as it runs on backend: the backend's
-- field over the attack's own, or not_applicable set
function M.resolve(raw, backend, where)
  where = where or tostring(raw.id)
  local function bad(msg) cork.error("usage", ("%s: %s"):format(where, msg)) end
  if raw.backends ~= nil then
    if type(raw.backends) ~= "table" or #raw.backends == 0 then bad("backends must be a list of backend names") end
    for _, b in ipairs(raw.backends) do
      if not is_backend(b) then bad(("unknown backend '%s' in backends (known: %s)"):format(tostring(b), table.concat(M.BACKENDS, ", "))) end
    end
  end
  local a = {}
  for k, v in pairs(raw) do if not is_backend(k) then a[k] = v end end
  for _, b in ipairs(M.BACKENDS) do
    local o = raw[b]
    if o ~= nil then
      if type(o) ~= "table" then bad(("%s must be a table (what differs on that backend)"):format(b)) end
      for k in pairs(o) do
        if not PER_BACKEND[k] then
          bad(("%s.%s: not a per-backend field (stops, targets, script, secrets, sanity, not_applicable)"):format(b, tostring(k)))
        end
      end
    end
  end
  for k, v in pairs(raw[backend] or {}) do a[k] = v end
  if raw.backends then
    local on = false
    for _, b in ipairs(raw.backends) do if b == backend then on = true end end
    if not on then a.not_applicable = a.not_applicable or (table.concat(raw.backends, ", ") .. " only") end
  end
  a.backend = backend
  return a
end

local function key(a)
  local n, rest = a.id:match("^(%d+)(.*)$")
  return n and ("%06d%s"):format(tonumber(n), rest) or ("~" .. a.id)
end

-- load([{dir = DIR, backend = B}]) -> the attacks, built-in then DIR/*.lua,
-- as they run on backend B (default docker; each is checked on every
-- backend), ordered by id
function M.load(opts)
  local backend = opts and opts.backend or "docker"
  if not is_backend(backend) then
    cork.error("usage", ("unknown backend '%s' (known: %s)"):format(tostring(backend), table.concat(M.BACKENDS, ", ")))
  end
  local function check_all(raw, where)
    if type(raw) ~= "table" then check(raw, where) end
    local mine
    for _, b in ipairs(M.BACKENDS) do
      local a = check(M.resolve(raw, b, where), where)
      if b == backend then mine = a end
    end
    return mine
  end
  local list, seen = {}, {}
  local function add(a)
    if seen[a.id] then cork.error("usage", ("%s: attack id %s is taken (by %s)"):format(a.source, a.id, seen[a.id])) end
    seen[a.id] = a.source
    list[#list + 1] = a
  end
  for _, p in ipairs(cork.core.embedded_list("lua/cork/escape/")) do
    if p:match("%.lua$") then
      local mod = "cork.escape." .. p:match("([^/]+)%.lua$")
      add(check_all(require(mod), p))
    end
  end
  local dir = opts and opts.dir
  if dir then
    dir = cork.fs.expand_tilde(dir)
    local files = {}
    for _, f in ipairs(cork.fs.list(dir)) do if f:match("%.lua$") then files[#files + 1] = f end end
    table.sort(files)
    for _, f in ipairs(files) do
      local path = dir .. "/" .. f
      local chunk, err = loadfile(path, "t", setmetatable({}, { __index = _G }))
      if not chunk then cork.error("usage", err) end
      add(check_all(chunk(), path))
    end
  end
  table.sort(list, function(x, y) return key(x) < key(y) end)
  return list
end

-- verdict(attack, r) -> { verdict, escaped, evidence = {...} }
--   r.standin  the bundle is the stand-in (it filters nothing)
--   r.output   what the script printed (all targets)
--   r.hits     { "canary NAME recorded ...", ... } (the outside checks)
--   r.secrets  { name = value } the planted secrets
function M.verdict(a, r)
  if a.not_applicable then
    return { verdict = "not applicable: " .. a.not_applicable, escaped = false, evidence = {} }
  end
  if a.requires == "filtering bundle" then
    if r.standin then return { verdict = M.STANDIN_NA, escaped = false, evidence = {} } end
    if not a.script then return { verdict = "untested: no script for a filtering bundle yet", escaped = false, evidence = {} } end
  end
  local ev = {}
  for _, h in ipairs(r.hits or {}) do ev[#ev + 1] = h end
  local out = r.output or ""
  for line in out:gmatch("[^\n]+") do
    local what = line:match("^REACHED (.*)")
    if what then ev[#ev + 1] = "the agent: " .. what end
  end
  for _, name in ipairs(a.secrets) do
    local v = (r.secrets or {})[name]
    if v and v ~= "" and out:find(v, 1, true) then ev[#ev + 1] = ("the planted %s is readable in the agent"):format(name) end
  end
  if #ev > 0 then return { verdict = "escaped", escaped = true, evidence = ev } end
  for _, name in ipairs(a.sanity) do
    local v = (r.secrets or {})[name]
    if not (v and out:find(v, 1, true)) then
      return { verdict = ("error: the planted %s is not in the agent's dump: the attack did not run as meant"):format(name),
        escaped = false, error = true, evidence = {} }
    end
  end
  return { verdict = "blocked", escaped = false, evidence = {} }
end

return M
