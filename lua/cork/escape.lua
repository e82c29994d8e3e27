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
--             target, space separated; "$HOST:$PORT" for most), $GATEWAY
--             (the agent's gateway) and $BUNDLE_PORTS (the bundle's HTTP
--             ports as the agent reaches them: docker its in-container
--             ports, smolmachines what it publishes on the bottle's alias):
--               neighbour     a canary container on a network of its own
--               host_loopback a canary on the host's 127.0.0.1
--               host_gateway  a canary on the agent network's gateway address
--               link_local    a canary container on a 169.254.x.0/28 network
--               upstream      (a filtering bundle only) the suite's upstream's
--                             HTTP recorder: $HOST is its address; the
--                             bundle resolves $ALLOWED (on the allowlist),
--                             $OFFLIST (off it) and $ROUTE_HOST (the route,
--                             whose credential egress adds) to it
--               git_upstream  (a filtering bundle only) the same upstream's
--                             git port: counts connections ($GIT_GATE_URL
--                             is git-gate's, whose remote app is there)
--               resolver      a canary container on a 203.0.113.x/28 network
--                             (TEST-NET-3), port 53: the agent's upstream
--                             DNS (where Docker's embedded DNS forwards)
--               neighbour_bundle  a second bottle's bundle (same recipe):
--                             $ENDPOINTS lists each of its addresses with
--                             each daemon port, and what it publishes
--             The agent's env holds the planted agent secret as
--             $CORK_ESCAPE_AGENT_SECRET (what an exfiltration would carry).
--   script    sh, run inside the agent as the agent's user; a line
--             "REACHED <evidence>" says it got through. M.PRELUDE comes
--             first: $PROXY_HOST and $PROXY_PORT (the agent's first hop,
--             from $HTTP_PROXY) and `ask REQUEST LABEL`, which sends
--             REQUEST (a printf format) to that proxy, keeps the answer in
--             $answer and prints "LABEL: <its status line>", or "LABEL:
--             answered by the upstream" when the suite's upstream answered
--   image     "bundle": run the script instead beside the agent with the
--             bundle image's tools, as the agent's uid with no capability and
--             no-new-privileges, in the agent's network namespace: for tools
--             the stand-in agent lacks (git). docker: a container of the
--             bundle's image that joins the agent's network namespace;
--             smolmachines: inside the VM, chrooted into the bundle image's
--             files (copied into the guest once, where the agent cannot read
--             them), with setpriv. Same network, same limits.
--   cap_add   { "NET_RAW" }: run the script beside the agent as root holding
--             that capability, which the agent lacks (a raw socket: ICMP):
--             what the network layer lets through even for a process that
--             could send anything. docker: a container of the stand-in image
--             that joins the agent's network namespace with every other
--             capability dropped and no-new-privileges; smolmachines: an
--             exec as root inside the VM. Not with image.
--   arrives   what an upstream target may receive: "nothing" (the default:
--             any request or connection is an escape) or "clean" (requests
--             may arrive, but none may carry a `leaks` secret)
--   leaks     planted secrets ("agent_secret") that must never reach the
--             upstream: not their second half (so neither the whole secret
--             nor both halves of a split one), not their base64
--   expect    strings the script's output must hold (else verdict "error":
--             e.g. the rejection message naming the detector)
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
  neighbour_bundle = true, smol_gateway = true, upstream = true, git_upstream = true }
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
  if a.image ~= nil and a.image ~= "bundle" then bad("image must be \"bundle\"") end
  if a.cap_add ~= nil then
    if type(a.cap_add) ~= "table" or #a.cap_add ~= 1 or a.cap_add[1] ~= "NET_RAW" then
      bad("cap_add must be { \"NET_RAW\" } (the one capability the suite lends a script beside the agent)")
    end
    if a.image ~= nil then bad("cap_add and image do not go together") end
  end
  if a.arrives ~= nil and a.arrives ~= "nothing" and a.arrives ~= "clean" then
    bad("arrives must be \"nothing\" or \"clean\"")
  end
  if a.script == nil and a.requires == nil and a.not_applicable == nil then bad("an attack needs a script (or requires = \"filtering bundle\", or not_applicable)") end
  for _, t in ipairs(a.targets or {}) do
    if not M.TARGETS[t] then
      local known = {}
      for k in pairs(M.TARGETS) do known[#known + 1] = k end
      table.sort(known)
      bad(("unknown target '%s' (known: %s)"):format(t, table.concat(known, ", ")))
    end
    if (t == "upstream" or t == "git_upstream") and a.requires ~= "filtering bundle" then
      bad(("target '%s' exists with a filtering bundle only: set requires = \"filtering bundle\""):format(t))
    end
  end
  if a.not_applicable ~= nil and (type(a.not_applicable) ~= "string" or a.not_applicable == "") then
    bad("not_applicable must be a non-empty string (why)")
  end
  a.id = tostring(a.id)
  a.targets = a.targets or {}
  a.secrets = a.secrets or {}
  a.sanity = a.sanity or {}
  a.leaks = a.leaks or {}
  a.expect = a.expect or {}
  a.arrives = a.arrives or "nothing"
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

-- plain_sub(s, what, with) -> s with every plain (not pattern) occurrence
-- of what replaced by with: how a planted secret is named, never shown
function M.plain_sub(s, what, with)
  local out, i = {}, 1
  while true do
    local a, b = s:find(what, i, true)
    if not a then break end
    out[#out + 1] = s:sub(i, a - 1) .. with
    i = b + 1
  end
  out[#out + 1] = s:sub(i)
  return table.concat(out)
end

-- tail(output, secrets) -> the output's last 240 bytes on one line, with
-- every planted secret's value replaced by <name>: what an attack that did
-- not run as meant printed, fit for a verdict, a log line or a test's name.
function M.tail(out, secrets)
  out = tostring(out or "")
  for name, v in pairs(secrets or {}) do
    if type(v) == "string" and v ~= "" then out = M.plain_sub(out, v, "<" .. name .. ">") end
  end
  out = out:gsub("%s+", " "):match("^%s*(.-)%s*$")
  if out == "" then return "nothing" end
  if #out > 240 then out = "..." .. out:sub(-240) end
  return out
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
  for _, want in ipairs(a.expect) do
    if not out:find(want, 1, true) then
      return { verdict = ("error: the output lacks \"%s\": the attack did not run as meant (it ended: %s)")
        :format(want, M.tail(out, r.secrets)), escaped = false, error = true, evidence = {} }
    end
  end
  for _, name in ipairs(a.sanity) do
    local v = (r.secrets or {})[name]
    if not (v and out:find(v, 1, true)) then
      return { verdict = ("error: the planted %s is not in the agent's dump: the attack did not run as meant"):format(name),
        escaped = false, error = true, evidence = {} }
    end
  end
  return { verdict = "blocked", escaped = false, evidence = {} }
end

-- What every script starts with (see `script` above). busybox nc half-closes
-- when its input ends, which a proxy may take for the client leaving: the
-- input stays open until the answer is in (at most 5 s).
M.PRELUDE = [=[
PROXY_HOST=; PROXY_PORT=
if [ -n "${HTTP_PROXY:-}" ]; then
  p=${HTTP_PROXY#*://}; p=${p%%/*}; PROXY_HOST=${p%:*}; PROXY_PORT=${p##*:}
fi
ASK_N=0
ask() {
  ASK_N=$((ASK_N + 1)); f=/tmp/escape-ask.$$.$ASK_N; : > "$f"; rm -f "$f.done"
  { printf "$1"; n=0; while [ ! -s "$f" ] && [ ! -e "$f.done" ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    sleep 0.3; } | { timeout 6 nc "$PROXY_HOST" "$PROXY_PORT" > "$f" 2>&1; : > "$f.done"; }
  answer=$(cat "$f"); rm -f "$f" "$f.done"
  case $answer in
    *"X-Canary: upstream"*) echo "$2: answered by the upstream";;
    *) echo "$2: $(printf '%s\n' "$answer" | head -n 1 | tr -d '\r')";;
  esac
}
]=]

-- The suite's upstream (a filtering bundle only), run by the stand-in
-- bundle's busybox: every HTTP request on 8080 (a connection that sends
-- nothing is none) is appended to
-- /rec/http.log ("== request", its head, its body) and its head and body
-- are echoed back with "X-Canary: upstream" (as httpbin's /anything does:
-- an upstream that echoes is what attack 6 needs); every connection on
-- 2222 appends a line to /rec/git.log (and gets an ssh banner that ssh
-- refuses: git-gate's fetches and pushes fail fast).
M.UPSTREAM_SH = [=[
mkdir -p /rec
cat > /rec/http.sh <<'EOF'
#!/bin/sh
len=0
hdr=
while IFS= read -r line; do
  line=$(printf '%s' "$line" | tr -d '\r')
  [ -z "$line" ] && break
  hdr="$hdr$line
"
  case $line in [Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Ll][Ee][Nn][Gg][Tt][Hh]:*) len=$(printf '%s' "${line#*:}" | tr -dc 0-9);; esac
done
# a connection that sends nothing (a proxy dialling ahead of a request) is no request
[ -n "$hdr" ] || exit 0
body=
[ "${len:-0}" -gt 0 ] && body=$(head -c "$len")
text="$hdr
$body"
printf '== request\n%s\n' "$text" >> /rec/http.log
printf 'HTTP/1.1 200 OK\r\nX-Canary: upstream\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "${#text}" "$text"
EOF
# an ssh client gets a banner it refuses at once (protocol 1), so that
# git-gate's ssh ends instead of waiting on a spliced tunnel
printf '#!/bin/sh\necho connection >> /rec/git.log\nprintf "SSH-1.0-cork-escape-canary\\r\\n"\nsleep 1\n' > /rec/git.sh
chmod 755 /rec/http.sh /rec/git.sh
: > /rec/http.log
: > /rec/git.log
nc -ll -p 8080 -e /rec/http.sh &
exec nc -ll -p 2222 -e /rec/git.sh
]=]

-- The git remote's declared host key: a well-formed ed25519 public key (its
-- 32 bytes spell "cork-escape-suite-canary-hostkey"); the upstream is no
-- ssh server and no ssh session ever gets that far.
M.UPSTREAM_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNvcmstZXNjYXBlLXN1aXRlLWNhbmFyeS1ob3N0a2V5"

return M
