-- cork.docker over tcp:// + TLS: a second private engine (tests/lib/dockerd.sh
-- with CORK_DOCKERD_TLS_ADDR) listening with --tlsverify on a loopback port,
-- certificates minted by cork.ca. A subset of the calls through it (also with
-- DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH in a child cork), and
-- the clear errors: a wrong CA, a client certificate the engine does not
-- trust, missing files, plain HTTP to a TLS port.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local docker = require "cork.docker"
local ca, fs, proc = cork.ca, cork.fs, cork.proc

if not os.getenv("DOCKER_HOST") then
  T.skip_all("DOCKER_HOST is not set (run through tests/run-all, which starts a private engine)")
end
if cork.core.uid() ~= 0 then T.skip_all("a second private engine needs root") end

local root = H.root
local s <close> = cork.scope("test_docker_tls")
local tmp = fs.tempdir("cork-docker-tls")
s:defer(function() fs.remove(tmp, { recursive = true }) end)

-- ---- certificates (cork.ca) ---------------------------------------------------
local IP = "127.0.0.41"
local PORT = 20000 + cork.core.pid() % 20000
local function copy(from, to, mode) fs.write(to, fs.read(from), { mode = mode }) end
local authority = ca.mint { dir = tmp .. "/ca", common_name = "cork test docker CA" }
local server = ca.issue { ca = authority, dir = tmp .. "/ca", name = "server", ips = { IP }, dns = { "localhost" } }
local client = ca.issue { ca = authority, dir = tmp .. "/ca", name = "client", common_name = "cork-test-client" }
-- the engine's files (dockerd.sh's layout) and the client's (DOCKER_CERT_PATH's)
local sdir, cdir = tmp .. "/server", tmp .. "/client"
fs.mkdir(sdir, tonumber("700", 8)); fs.mkdir(cdir, tonumber("700", 8))
copy(authority.cert, sdir .. "/ca.pem", tonumber("644", 8))
copy(server.cert, sdir .. "/server-cert.pem", tonumber("644", 8))
copy(server.key, sdir .. "/server-key.pem", tonumber("600", 8))
copy(authority.cert, cdir .. "/ca.pem", tonumber("644", 8))
copy(client.cert, cdir .. "/cert.pem", tonumber("644", 8))
copy(client.key, cdir .. "/key.pem", tonumber("600", 8))
-- a stranger: another CA with its own client certificate
local other = ca.mint { dir = tmp .. "/other", common_name = "some other CA" }
local ocl = ca.issue { ca = other, dir = tmp .. "/other", name = "client" }
local odir = tmp .. "/other-client"
fs.mkdir(odir, tonumber("700", 8))
copy(other.cert, odir .. "/ca.pem", tonumber("644", 8))
copy(ocl.cert, odir .. "/cert.pem", tonumber("644", 8))
copy(ocl.key, odir .. "/key.pem", tonumber("600", 8))

-- ---- the TLS engine ---------------------------------------------------------------
local edir = "/tmp/cork-dockerd.tls" .. cork.core.pid()
-- in the test's own network namespace (the one the first engine made, or the
-- caller's when run by hand), so that the test reaches its TLS port
local eenv = { CORK_DOCKERD_DIR = edir, CORK_DOCKERD_TLS_CERTS = sdir,
  CORK_DOCKERD_NETNS = os.getenv("CORK_DOCKERD_NETNS") or "current" }
s:defer(function() proc.run({ root .. "/tests/lib/dockerd.sh", "stop" }, { env = eenv, timeout = 60 }) end)
local t0 = cork.time()
local r
for try = 0, 2 do   -- another run may hold the port: the next one
  PORT = 20000 + (cork.core.pid() + 7919 * try) % 20000
  eenv.CORK_DOCKERD_TLS_ADDR = IP .. ":" .. PORT
  r = proc.run({ root .. "/tests/lib/dockerd.sh", "start" }, { env = eenv, timeout = 120 })
  if r.status == 0 or not r.stderr:match("address already in use") then break end
end
if r.status ~= 0 then T.skip_all("the TLS engine did not start: " .. r.stderr:gsub("\n", " ")) end
T.diag(string.format("TLS engine on tcp://%s:%d up in %.1f s", IP, PORT, cork.time() - t0))
local unix_ep = r.stdout:match("DOCKER_HOST='([^']+)'")
-- the test image, made through the engine's unix socket (mkimage.sh speaks unix only)
r = proc.run({ root .. "/tests/lib/mkimage.sh", H.IMAGE }, { env = { DOCKER_HOST = unix_ep }, timeout = 120 })
assert(r.status == 0, "mkimage.sh: " .. r.stderr)

local EP = "tcp://" .. IP .. ":" .. PORT
local d = docker.connect(EP, { tls_verify = true, cert_path = cdir })
s:defer(function() d:close() end)
local before = H.snapshot(d)

-- ---- calls over TLS -------------------------------------------------------------------
T.is(d:endpoint(), EP, "connected over tcp:// + TLS")
T.is(d:ping().os_type, "linux", "ping")
local v = d:version()
T.is(d:api_version(), v.ApiVersion, "negotiated over TLS: " .. d:api_version())
local n = d:network_create { name = H.name("tls-net"), subnet = "10.231.41.0/24", labels = H.labels }
s:defer(function() pcall(d.network_remove, d, n.id) end)
T.is(d:network_inspect(n).Name, H.name("tls-net"), "network_create / inspect")
T.raises(function() d:network_create { name = H.name("tls-net"), labels = H.labels } end, "conflict",
  "already exists %(HTTP 409%)$", "409 over TLS: conflict")
local c = d:container_create { name = H.name("tls-web"), image = H.IMAGE, labels = H.labels,
  cmd = { "httpd", "-f", "-p", "8080", "-h", "/www" }, networks = { H.name("tls-net") },
  ports = { { container_port = 8080, host_ip = "127.0.0.17", host_port = "" } }, env = { TOKEN = "tls-secret-value" } }
s:defer(function() pcall(d.container_remove, d, c.id, { force = true }) end)
T.is(d:container_start(c), true, "container_start")
local port = d:host_port(c, 8080, "127.0.0.17")
T.ok(math.type(port) == "integer" and port > 0, "host_port over TLS: " .. tostring(port))
local x = d:exec(c, { "sh", "-c", "echo out; echo err >&2; exit 4" })
T.same(x, { status = 4, stdout = "out\n", stderr = "err\n" }, "exec over TLS: status, stdout and stderr apart")
x = d:exec(c, { "sh", "-c", "yes tls-frame | head -c 300000 | wc -c" })
T.is(x.stdout, "300000\n", "exec over TLS: a larger output")
x = d:exec(c, { "cat" }, { stdin = "fed over TLS\n" })
T.same(x, { status = 0, stdout = "fed over TLS\n", stderr = "" }, "exec over TLS with stdin (close_notify, then EOF)")
local since = os.time() - 1
d:container_kill(c, "KILL")
T.is(d:container_wait(c).status, 137, "container_wait")
local seen = {}
for ev in d:events { since = since, ["until"] = os.time() + 1, filters = { container = { c.id }, event = { "die" } } } do
  seen[#seen + 1] = ev.Action
end
T.same(seen, { "die" }, "events over TLS")
T.is(d:container_remove(c), true, "container_remove")
T.raises(function() d:container_inspect(c.id) end, "not_found", "No such container", "404 over TLS: not_found")
d:network_remove(n)
H.no_leaks(T, d, before)

-- ---- the environment, as the docker CLI reads it --------------------------------------
local f = tmp .. "/env.lua"
fs.write(f, "local d = require('cork.docker').connect() print(d:endpoint(), d:ping().os_type)\n")
r = proc.run({ os.getenv("CORK_BIN"), "script", f },
  { env = { DOCKER_HOST = EP, DOCKER_TLS_VERIFY = "1", DOCKER_CERT_PATH = cdir } })
T.is(r.stdout, EP .. "\tlinux\n", "DOCKER_HOST + DOCKER_TLS_VERIFY + DOCKER_CERT_PATH: " .. r.stderr)

-- ---- clear errors -----------------------------------------------------------------------
local e = T.raises(function() docker.connect(EP, { tls_verify = true, cert_path = odir }) end, "unavailable",
  "^TLS with " .. H.pat(EP) .. " failed: SSL certificate problem: unable to get local issuer certificate %(CA " ..
  H.pat(odir) .. "/ca%.pem, client certificate " .. H.pat(odir) .. "/cert%.pem%)$",
  "a wrong CA: unavailable, one line naming the endpoint, the problem and the files")
T.is(e and e.tls, true, "the error says it is TLS (field tls)")
T.diag("wrong CA: " .. tostring(e and e.message))
-- our CA, but a client certificate from elsewhere: the engine refuses the handshake
fs.mkdir(tmp .. "/mixed", tonumber("700", 8))
copy(authority.cert, tmp .. "/mixed/ca.pem", tonumber("644", 8))
copy(ocl.cert, tmp .. "/mixed/cert.pem", tonumber("644", 8))
copy(ocl.key, tmp .. "/mixed/key.pem", tonumber("600", 8))
e = T.raises(function() docker.connect(EP, { tls_verify = true, cert_path = tmp .. "/mixed" }) end, "unavailable",
  "^TLS with " .. H.pat(EP) .. " failed: .*%(CA ", "an untrusted client certificate: unavailable, TLS named")
T.ok(e and (e.message:match("alert bad certificate") or e.message:match("does it trust this client certificate%?")),
  "and why: the engine's alert, or its closing the connection (a TLS 1.3 race)")
T.diag("untrusted client: " .. tostring(e and e.message))
T.raises(function() docker.connect(EP, { tls_verify = true, cert_path = tmp .. "/nowhere" }) end, "not_found",
  "^Docker TLS file " .. H.pat(tmp) .. "/nowhere/ca%.pem: No such file or directory %(set DOCKER_CERT_PATH%)$",
  "missing certificate files: not_found naming the file")
e = T.raises(function() docker.connect(EP, { tls_verify = false }) end, nil, nil,
  "plain HTTP to the TLS port fails")
T.diag("plain HTTP: " .. tostring(e and (e.message or e)))
T.raises(function() docker.connect("tcp://127.0.0.41:1", { tls_verify = true, cert_path = cdir }) end,
  "unavailable", "^no Docker daemon answered at tcp://127%.0%.0%.41:1 %(Connection refused%)$",
  "nothing listening: one clear line")

s:close()
r = proc.run({ root .. "/tests/lib/dockerd.sh", "status" }, { env = eenv })
T.isnt(r.status, 0, "the TLS engine is stopped")
T.ok(not fs.exists(edir), "and its directory removed")
T.done()
