-- The real bundle (cork-bundle:latest, `cork run bundle --from-apt`) against
-- real traffic: an HTTPS upstream in a container of this test's own, with a
-- certificate from a CA the test mints and hands over as bundle.extra_ca.
-- The test plays the agent from the host through the bundle's ports,
-- published on 127.0.0.1. No other address is ever contacted: every name is
-- mapped to the upstream (or to the bundle's own loopback) by
-- bundle.extra_hosts.
--
-- The root filesystem is built once (about 4 minutes) and cached under
-- build/bundle-cache (CORK_BUNDLE_CACHE), reused by content; the import
-- into a fresh engine takes about 20 s.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local cork = require "cork"
local bundle = require "cork.bundle"
local bottle = require "cork.bottle"
local launch = require "cork.launch"
local journal = require "cork.journal"

local d = H.connect(T)
if cork.core.uid() ~= 0 then T.skip_all("--from-apt needs root (debootstrap, chroot)") end
if not cork.fs.exists("/usr/sbin/debootstrap") then T.skip_all("debootstrap is not installed (tools/deps.sh)") end
local CURL = "/usr/bin/curl"
if not cork.fs.exists(CURL) then T.skip_all("curl is not installed") end

local snap = H.snapshot(d)
local cache = os.getenv("CORK_BUNDLE_CACHE") or (H.root .. "/build/bundle-cache")
local built = bundle.from_apt(d, { cache = cache, progress = false })
T.is(built.image, "cork-bundle:latest", "cork-bundle:latest built (or reused) from Debian packages")
T.diag(("bundle image: %s, %.0f s, %.0f MB"):format(built.version, built.seconds, (built.size or 0) / 1e6))
local again = bundle.from_apt(d, { cache = cache, progress = false })
T.ok(again.reused and again.version == built.version, "an unchanged build is reused (same content label)")
-- the bundle image stays for the later tests of this run; it is no leak
snap.images[d:image_inspect("cork-bundle:latest").Id] = true

local s <close> = cork.scope("test_bundle")
local dir = cork.fs.tempdir("cork-test-bundle")
s:defer(cork.fs.remove, dir, { recursive = true, missing_ok = true })

-- ---- the upstream --------------------------------------------------------
local ca = require "cork.ca"
local upca = ca.mint({ dir = dir .. "/upca", name = "ca", common_name = "test upstream CA" })
local leaf = ca.issue({ ca = upca, dir = dir .. "/upca", name = "leaf",
  dns = { "api.test", "open.test", "other.test", "new.test", "deny.test", "x.wild.test", "internal.test" } })
cork.fs.write(dir .. "/upstream.py", cork.fs.read(H.root .. "/tests/fixtures/bundle/upstream.py"))
for _, f in ipairs({ "leaf.pem", "leaf-key.pem" }) do
  cork.proc.run({ "chmod", "0644", dir .. "/upca/" .. f })
end
cork.proc.run({ "chmod", "0755", dir, dir .. "/upca" })
local upnet = H.name("up")
s:defer(function() pcall(d.network_remove, d, upnet) end)
d:network_create({ name = upnet, labels = H.labels })
local upname = H.name("upstream")
s:defer(function() pcall(d.container_remove, d, upname, { force = true }) end)
d:container_create({ name = upname, image = built.image, labels = H.labels, networks = { upnet },
  cmd = { "python3", "/srv/upstream.py", "/srv/leaf.pem", "/srv/leaf-key.pem" },
  mounts = { { source = dir .. "/upstream.py", target = "/srv/upstream.py" },
    { source = leaf.cert, target = "/srv/leaf.pem" }, { source = leaf.key, target = "/srv/leaf-key.pem" } } })
d:container_start(upname)
local netinfo = d:network_inspect(upnet)
local subnet = netinfo.IPAM.Config[1].Subnet
local upip = d:container_inspect(upname).NetworkSettings.Networks[upnet].IPAddress
T.like(upip, "^%d+%.%d+%.%d+%.%d+$", "the upstream runs at " .. upip)

-- ---- the bottle ------------------------------------------------------------
local TOKEN = ("tok-%08x%08x-upstream"):format(math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
local PLACEHOLDER = "placeholder-the-agent-holds"
local function hosts(names)
  local out = {}
  for _, n in ipairs(names) do out[#out + 1] = ('"%s:%s"'):format(n, upip) end
  return table.concat(out, ", ")
end
local BOTTLE = ([[
agent: { provider: custom, image: unused, command: [sh] }
egress:
  routes:
    - { host: api.test, auth: bearer, token_ref: CORK_TEST_TOKEN, paths: [/v1] }
allowlist: [open.test, "*.wild.test", internal.test]
supervise: true
bundle:
  extra_hosts: [%s, "internal.test:127.0.0.1"]
  extra_ca: %s
  ip_allowlist: ["%s"]
]]):format(hosts({ "api.test", "open.test", "other.test", "new.test", "deny.test", "x.wild.test" }), upca.cert, subnet)
local ctx = launch.prepare({ inline_bottle = bottle.inline(BOTTLE, "bundletest"), bundle_image = built.image,
  env = { CORK_TEST_TOKEN = TOKEN } }, "docker")
local p = ctx.plan
p.bundle.publish = p.daemons
local j = journal.open(p.slug, { backend = "docker", bottle = "bundletest" })
s:defer(journal.finish, p.slug)
launch.network(s, j, ctx)
launch.cas_and_configs(ctx)
launch.bundle(s, j, ctx, { host_ip = "127.0.0.1",
  networks = { { name = p.names.network, ip = p.bundle.ip }, { name = upnet } } })
local B = p.names.bundle
local port = {}
for _, dn in ipairs(p.daemons) do port[dn] = d:host_port(B, p.bundle.ports[dn], "127.0.0.1") end
local PL_CA = p.proxy_plan.ca.cert
local EG_CA = p.egress_plan.ca.cert

-- curl as the agent: through `proxy` (a daemon name), trusting `cacert`.
-- Returns status (the CONNECT's when it was refused), body.
local function curl(proxy, url, o)
  o = o or {}
  local argv = { CURL, "-s", "-m", "20", "--noproxy", "", "-x", "http://127.0.0.1:" .. port[proxy],
    "-o", dir .. "/body", "-w", "%{http_connect} %{http_code}" }
  if o.cacert ~= false then argv[#argv + 1] = "--cacert"; argv[#argv + 1] = o.cacert or PL_CA end
  for _, h in ipairs(o.headers or {}) do argv[#argv + 1] = "-H"; argv[#argv + 1] = h end
  if o.data then argv[#argv + 1] = "--data-binary"; argv[#argv + 1] = "@" .. dir .. "/data"; cork.fs.write(dir .. "/data", o.data) end
  argv[#argv + 1] = url
  cork.fs.write(dir .. "/body", "")
  local r = cork.proc.run(argv, { timeout = 30 })
  local connect, code = r.stdout:match("(%d+) (%d+)")
  local status = tonumber(code)
  if status == 0 and tonumber(connect) ~= 200 and tonumber(connect) ~= 0 then status = tonumber(connect) end
  return status, cork.fs.read(dir .. "/body"), r.status
end

-- the daemons listen within a few seconds (mitmdump starts slowly on 2 cores)
-- (a loaded machine: up to 120 s)
local function eventually(fn, secs)
  local deadline = cork.time() + (secs or 120)
  repeat
    if fn() then return true end
    cork.sleep(0.3)
  until cork.time() > deadline
  return false
end
T.ok(eventually(function() return curl("pipelock", "https://open.test/ping") == 200 end),
  "the bundle's filter answers through to the upstream")
eventually(function() return curl("egress", "https://api.test/v1/ping", { cacert = EG_CA }) == 200 end)

-- ---- egress: routes and credentials ---------------------------------------
local st, body = curl("egress", "https://api.test/v1/hello", { cacert = EG_CA,
  headers = { "Authorization: Bearer " .. PLACEHOLDER } })
T.is(st, 200, "a route's request goes through egress")
local echo = st == 200 and cork.json.decode(body) or { headers = {} }
T.is(echo.headers.Authorization, ("Bearer " .. TOKEN):reverse(), "the route's credential arrives at the upstream")
T.unlike(body, H.pat(PLACEHOLDER), "the agent's placeholder never does")
st, body = curl("egress", "https://api.test/v1/x", { cacert = EG_CA, headers = { "X-Other: 1" } })
T.is(st == 200 and cork.json.decode(body).headers.Authorization, ("Bearer " .. TOKEN):reverse(),
  "injected also when the agent sent none")
st, body = curl("egress", "https://api.test/v1/raw", { cacert = EG_CA })
T.is(st, 502, "an upstream that echoes the credential back: egress refuses the response")
T.is(body, "blocked: the upstream echoed the route's credential\n", "saying why, without the token")
st, body = curl("egress", "https://api.test/v2/x", { cacert = EG_CA })
T.is(st, 403, "a path outside the route's paths is refused")
T.like(body, "^blocked: path not allowed by route 1: /v2/x", "with a pipelock-style answer")
st, body = curl("egress", "https://api.test/v1x", { cacert = EG_CA })
T.is(st, 403, "a path that only starts like the prefix is refused too")
st, body = curl("egress", "https://api.test/v1/a", { cacert = EG_CA, headers = { "Host: open.test" } })
T.is(st, 403, "a route host with a spoofed Host header is refused")

-- ---- the filter: allowlist ---------------------------------------------------
st, body = curl("egress", "https://open.test/a")
T.is(st, 200, "an allowlisted host goes through (egress tunnels, the filter intercepts)")
st, body = curl("egress", "https://x.wild.test/a")
T.is(st, 200, "*.wild.test allows its subdomains")
st = curl("egress", "https://other.test/a")
T.is(st, 403, "a host off the allowlist is refused (by name)")
st, body = curl("pipelock", "http://other.test/a")
T.is(st, 403, "plain HTTP to it too")
T.like(body, "^blocked: domain not in allowlist: other.test", "answered as pipelock answers")
st = curl("egress", "https://" .. upip .. "/a")
T.is(st, 403, "an IP literal that is not allowed is refused")
st, body = curl("pipelock", "http://" .. upip .. "/a")
T.like(body, "^blocked: IP literal not in allowlist", "and says so")
st, body = curl("egress", "https://open.test/a", { headers = { "Host: other.test" } })
T.is(st, 403, "a Host header that disagrees with the CONNECT target is refused")
T.like(body, "authority mismatch", "authority mismatch")
st, body = curl("pipelock", "http://open.test/a", { headers = { "Host: other.test" } })
T.is(st, 403, "a spoofed Host on plain HTTP too")
st, body = curl("pipelock", "http://internal.test/a")
T.is(st, 502, "a name that resolves to an internal address not in ssrf.ip_allowlist is refused at dial time")
T.like(body, "SSRF", "the answer names SSRF")

-- ---- the filter: DLP ----------------------------------------------------------
local SAMPLES = {
  aws_access_key = "AKIA" .. string.rep("Z", 16),
  github_token = "ghp_" .. string.rep("a1", 18),
  github_pat = "github_pat_" .. string.rep("b2", 18),
  gitlab_pat = "glpat-" .. string.rep("c", 20),
  slack_token = "xoxb-" .. string.rep("1", 15),
  private_key = "-----BEGIN RSA PRIVATE KEY-----",
  anthropic_key = "sk-ant-api03-" .. string.rep("d", 12),
  openai_key = "sk-proj-" .. string.rep("e", 12),
  jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2ln",
}
local names = {}
for n in pairs(SAMPLES) do names[#names + 1] = n end
table.sort(names)
local function enc(v) return (v:gsub("[^%w%-_.]", function(c) return ("%%%02X"):format(c:byte()) end)) end
for _, n in ipairs(names) do
  local v = SAMPLES[n]
  local where = {
    { "URL", function() return curl("egress", "https://open.test/q?x=" .. enc(v)) end },
    { "header", function() return curl("egress", "https://open.test/h", { headers = { "X-Note: " .. v } }) end },
    { "body", function() return curl("egress", "https://open.test/b", { data = "note=" .. v }) end },
  }
  for _, w in ipairs(where) do
    local s2, b2 = w[2]()
    T.ok(s2 == 403 and b2:find("DLP match: " .. n, 1, true), ("%s in the %s: blocked, naming the detector"):format(n, w[1]),
      ("status %s body %s"):format(tostring(s2), b2))
  end
end
st = curl("egress", "https://open.test/b", { data = "an ordinary body" })
T.is(st, 200, "a clean body goes through")

-- ---- passthrough -----------------------------------------------------------------
-- api.test is a route with auth, so tls_passthrough: the filter splices it.
-- Straight to the filter with ONLY the upstream's CA: the upstream's own
-- certificate arrives (not decrypted); open.test is intercepted (the filter's).
st, body = curl("pipelock", "https://api.test/v1/splice", { cacert = upca.cert })
T.is(st, 200, "a passthrough domain is spliced: the upstream's own certificate reaches the client")
local _, _, rc = curl("pipelock", "https://open.test/x", { cacert = upca.cert })
T.is(rc, 60, "an intercepted host is not (the filter's CA signs it: curl exit 60 without that CA)")

-- ---- SIGHUP reloads the routes ------------------------------------------------------
local routes_path = p.egress_plan.config_path
local old = cork.fs.read(routes_path)
local doc = cork.yaml.decode(old)
doc.routes[1].paths = { "/v1", "/v2" }
local f = assert(io.open(routes_path, "wb"))   -- in place: the bind mount keeps the inode
f:write(cork.yaml.encode(doc)); f:close()
T.like(cork.fs.read(routes_path), "/v2", "routes.yaml now lets /v2 through")
d:request("POST", "/containers/" .. B .. "/kill", { query = { signal = "HUP" } })
local reloaded = eventually(function() return curl("egress", "https://api.test/v2/x", { cacert = EG_CA }) == 200 end, 30)
T.ok(reloaded, "SIGHUP reloads routes.yaml: /v2 goes through without a relaunch")

-- ---- supervise, end to end -------------------------------------------------------------
local function mcp(msg, timeout)
  cork.fs.write(dir .. "/mcp.json", cork.json.encode(msg))
  local r = cork.proc.run({ CURL, "-s", "-m", tostring(timeout or 20), "--noproxy", "*", "-H", "Content-Type: application/json",
    "--data-binary", "@" .. dir .. "/mcp.json", "http://127.0.0.1:" .. port.supervise .. "/" }, { timeout = (timeout or 20) + 5 })
  return r.stdout ~= "" and cork.json.decode(r.stdout) or nil
end
local init = mcp({ jsonrpc = "2.0", id = 1, method = "initialize", params = { protocolVersion = "2025-06-18",
  capabilities = {}, clientInfo = { name = "test", version = "1" } } })
T.is(init and init.result and init.result.serverInfo.name, "cork-supervise", "supervise answers MCP initialize")
local tl = mcp({ jsonrpc = "2.0", id = 2, method = "tools/list" })
local tnames = {}
for _, t in ipairs(tl and tl.result.tools or {}) do tnames[#tnames + 1] = t.name end
table.sort(tnames)
T.is(table.concat(tnames, ","), "request_allowlist_host,request_egress_route", "tools/list names both tools")
local bad = mcp({ jsonrpc = "2.0", id = 3, method = "tools/call", params = { name = "nope", arguments = {} } })
T.is(bad and bad.error and bad.error.code, -32602, "an unknown tool is -32602")

local CORK = os.getenv("CORK_BIN")
local function cork_cli(args_)
  local argv = { CORK }
  for _, a in ipairs(args_) do argv[#argv + 1] = a end
  return cork.proc.run(argv, { timeout = 60 })
end
-- the agent asks (in the background: it waits for the human)
local function ask(tool, arguments)
  cork.fs.write(dir .. "/ask.json", cork.json.encode({ jsonrpc = "2.0", id = 9, method = "tools/call",
    params = { name = tool, arguments = arguments } }))
  cork.fs.write(dir .. "/ask.out", "")
  return cork.proc.spawn({ CURL, "-s", "-m", "60", "--noproxy", "*", "-H", "Content-Type: application/json",
    "--data-binary", "@" .. dir .. "/ask.json", "-o", dir .. "/ask.out", "http://127.0.0.1:" .. port.supervise .. "/" })
end
local function answer_of()
  local text = cork.fs.read(dir .. "/ask.out")
  local ok, v = pcall(cork.json.decode, text)
  return ok and type(v) == "table" and v or {}
end
local function pending_id(host)
  for _ = 1, 200 do
    local r = cork_cli({ "--json", "supervise", p.slug })
    for line in r.stdout:gmatch("[^\n]+") do
      local ev = cork.json.decode(line)
      if ev.event == "supervise_request" and ev.host == host then return ev.id, ev end
    end
    cork.sleep(0.2)
  end
end
T.isnt(curl("egress", "https://new.test/api/x"), 200, "before: new.test is not reachable")
local asker = ask("request_egress_route", { host = "new.test", paths = { "/api" }, justification = "the task needs it" })
local id, req = pending_id("new.test")
T.ok(id, "cork supervise lists the agent's request", id)
T.is(req and req.justification, "the task needs it", "with its justification")
local pl_before = cork.fs.read(p.proxy_plan.config_path)
local r = cork_cli({ "supervise", "approve", id, "--note", "ok for today" })
T.is(r.status, 0, "cork supervise approve", r.stderr)
asker:wait(30)
local answer = answer_of()
local res = answer.result and answer.result.structuredContent or {}
T.is(res.status, "approved", "the agent gets status approved")
T.is(res.note, "ok for today", "and the note")
local works = eventually(function() return curl("egress", "https://new.test/api/x", { cacert = EG_CA }) == 200 end, 30)
T.ok(works, "the approved route works without a relaunch")
T.is(curl("egress", "https://new.test/other", { cacert = EG_CA }), 403, "only under its approved paths")
T.isnt(cork.fs.read(p.proxy_plan.config_path), pl_before, "the live pipelock.yaml was rewritten")
r = cork_cli({ "supervise", "approve", id })
T.isnt(r.status, 0, "a request is decided once")

asker = ask("request_allowlist_host", { host = "deny.test", justification = "curious" })
id = pending_id("deny.test")
local before_pl, before_eg = cork.fs.read(p.proxy_plan.config_path), cork.fs.read(routes_path)
r = cork_cli({ "supervise", "deny", id, "--note", "no" })
T.is(r.status, 0, "cork supervise deny")
asker:wait(30)
answer = answer_of()
T.is(answer.result and answer.result.structuredContent.status, "denied", "the agent gets status denied")
T.ok(cork.fs.read(p.proxy_plan.config_path) == before_pl and cork.fs.read(routes_path) == before_eg,
  "a denial leaves the configs unchanged")
T.is(curl("egress", "https://deny.test/"), 403, "and the host stays refused")
local audit = cork.fs.read(journal.dir(p.slug) .. "/supervise/audit.log")
local n = 0
for _ in audit:gmatch("[^\n]+") do n = n + 1 end
T.is(n, 2, "both decisions are in the audit log")

-- ---- one process, one secret ---------------------------------------------------------------
local logs = d:container_logs(B)
local all_logs = logs.stdout .. logs.stderr
T.unlike(all_logs, H.pat(TOKEN), "no token value in the bundle's log")
T.like(all_logs, '"verdict": "allow"', "(the log has the decisions)")
local ul = d:container_logs(upname)
T.unlike(ul.stdout .. ul.stderr, H.pat(TOKEN), "nor in the upstream's")
local ps = d:exec(B, { "sh", "-c", 'for p in /proc/[0-9]*; do tr "\\000" " " < $p/cmdline; echo; done' })
T.unlike(ps.stdout, H.pat(TOKEN), "no token value on any process's argv")
T.like(ps.stdout, "mitmdump", "(the argv list is real)")
local function environs(user)
  local e = d:exec(B, { "sh", "-c", 'for p in /proc/[0-9]*; do [ "$(stat -c %U $p)" = "$0" ] || continue; '
    .. '[ "$(cat $p/comm)" = sh ] && continue; echo "$(cat $p/comm): $(tr "\\000" " " < $p/environ)"; done', user },
    { user = user })
  return e.stdout
end
for _, u in ipairs({ "cork-pipelock", "cork-git", "cork-supervise" }) do
  local e = environs(u)
  T.unlike(e, "EGRESS_TOKEN", u .. "'s processes have no EGRESS_TOKEN_* in their environment")
  T.unlike(e, H.pat(TOKEN), u .. "'s processes never hold the value")
end
T.like(environs("cork-egress"), "EGRESS_TOKEN_1=", "egress alone has its token")
local users = d:exec(B, { "sh", "-c", 'for p in /proc/[0-9]*; do echo "$(cat $p/comm) $(stat -c %U $p)"; done' }).stdout
T.like(users, "mitmdump cork%-pipelock", "the filter runs as cork-pipelock")
T.like(users, "mitmdump cork%-egress", "egress runs as cork-egress")
T.like(users, "python3 cork%-supervise", "supervise runs as cork-supervise")

s:close()
H.no_leaks(T, d, snap)

-- ---- probe-bundle with the real image ---------------------------------------------------------
r = cork.proc.run({ CORK, "run", "examples/probe-bundle", "--image", built.image }, { timeout = 180 })
T.is(r.status, 0, "cork run examples/probe-bundle --image cork-bundle:latest passes", r.stdout .. r.stderr)
T.like(r.stdout .. r.stderr, "git%-gate +port 9418 .*answered", "git-gate answers a git request")
H.no_leaks(T, d, snap)
T.done()
