-- cork.docker against a real engine (tests/lib/dockerd.sh): every call, the
-- error kinds, version negotiation, published ports, filters, no leaks.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local docker = require "cork.docker"

local d = H.connect(T)
local img = H.image()
local before = H.snapshot(d)
local s <close> = cork.scope("test_docker")
s:defer(function() H.sweep(d) end)

-- ---- connection and version negotiation ---------------------------------
local ping = d:ping()
T.like(ping.api_version, "^1%.%d+$", "ping reports the daemon's API version")
T.is(ping.os_type, "linux", "ping os_type")
local function minor(v) return tonumber(v:match("^1%.(%d+)$")) end
local want = minor(ping.api_version) < minor(docker.API_MAX) and ping.api_version or docker.API_MAX
T.is(d:api_version(), want, "negotiated the lower of the daemon's (" .. ping.api_version ..
  ") and cork's maximum (" .. docker.API_MAX .. ")")
T.like(tostring(d), "^cork.docker.Client %(unix://.*, API " .. want:gsub("%.", "%%.") .. "%)$", "tostring")
T.is(d:endpoint(), os.getenv("DOCKER_HOST"), "endpoint from DOCKER_HOST")
local v = d:version()
T.is(v.ApiVersion, ping.api_version, "version() is the /version answer")
T.ok(type(d:info().ID) == "string", "info() is the /info answer")
local pinned = docker.connect(nil, { api_version = "1.41" })
T.is(pinned:api_version(), "1.41", "api_version option pins the version (no negotiation)")
T.is(pinned:version().ApiVersion, v.ApiVersion, "a pinned client works")
pinned:close()
pinned:close()
T.raises(function() pinned:ping() end, nil, "closed docker client", "a closed client raises")

local e = T.raises(function() docker.connect("unix:///nonexistent/docker.sock") end, "unavailable",
  "^no Docker daemon answered at unix:///nonexistent/docker%.sock %(No such file or directory%)$",
  "no daemon: one clear line naming the socket")
T.is(e and e.endpoint, "unix:///nonexistent/docker.sock", "error carries the endpoint")
T.raises(function() docker.connect("ssh://host") end, nil, "unsupported Docker endpoint 'ssh://host'",
  "ssh:// is refused")
T.raises(function() docker.connect(nil, { timeuot = 1 }) end, nil, "unknown option 'timeuot'",
  "unknown connect option")
T.raises(function() d:network_create { name = "x", colour = "red" } end, nil, "unknown option 'colour'",
  "unknown call option")

-- ---- networks ------------------------------------------------------------
local net1, net2 = H.name("net"), H.name("net-b")
local n1 = d:network_create { name = net1, subnet = "10.231.7.0/24", gateway = "10.231.7.1",
  labels = H.labels }
T.like(n1.id, "^%x+$", "network_create returns the id")
T.same(n1.warnings, {}, "and no warnings")
s:defer(function() pcall(d.network_remove, d, n1.id) end)
local n2 = d:network_create { name = net2, internal = true, labels = H.labels }
s:defer(function() pcall(d.network_remove, d, n2.id) end)
e = T.raises(function() d:network_create { name = net1, labels = H.labels } end, "conflict",
  "^docker POST /networks/create: network with name " .. H.pat(net1) .. " already exists %(HTTP 409%)$",
  "duplicate network: kind conflict, exact message")
T.is(e and e.status, 409, "status 409")
T.is(e and e.method, "POST", "method")
T.is(e and e.path, "/networks/create", "path")
T.is(e and e.docker_message, "network with name " .. net1 .. " already exists", "Docker's own message")
-- request{redact}: the values given never appear in the error (as env values at create)
e = T.raises(function()
  d:request("POST", "/networks/create", { body = { Name = net1, CheckDuplicate = true }, redact = { net1 } })
end, "conflict", "^docker POST /networks/create: network with name %*%*%* already exists %(HTTP 409%)$",
  "request{redact}: the value is *** in the message")
T.is(e and e.docker_message, "network with name *** already exists", "request{redact}: and in docker_message")
T.raises(function() d:request("GET", "/_ping", { redact = "x" }) end, nil, "'redact' must be a list of strings",
  "request{redact}: a list")
local ni = d:network_inspect(net1)
T.is(ni.Name, net1, "network_inspect by name")
T.is(ni.IPAM.Config[1].Subnet, "10.231.7.0/24", "subnet")
T.is(ni.IPAM.Config[1].Gateway, "10.231.7.1", "gateway")
T.is(ni.Labels["cork.test"], H.id, "labels")
T.is(d:network_inspect(n2).Internal, true, "internal (ref given as the create result)")
e = T.raises(function() d:network_inspect(H.name("nope")) end, "not_found",
  "^docker GET /networks/" .. H.pat(H.name("nope")) .. ": network " .. H.pat(H.name("nope")) ..
  " not found %(HTTP 404%)$",
  "missing network: not_found")
local found = d:networks { filters = { label = { "cork.test=" .. H.id } } }
local names = {}
for _, n in ipairs(found) do names[#names + 1] = n.Name end
table.sort(names)
T.same(names, { net1, net2 }, "label filter finds exactly the networks created")
found = d:networks { filters = { name = net1 } }
T.is(#found, 2, "the name filter is an unanchored regex (matches " .. net1 .. " and " .. net2 .. ")")
found = d:networks { filters = { name = { "^" .. net1 .. "$" } } }
T.is(#found, 1, "anchor it for an exact name")

-- ---- containers ------------------------------------------------------------
local dir = cork.fs.tempdir("cork-docker-test")
s:defer(function() cork.fs.remove(dir, { recursive = true }) end)
cork.fs.write(dir .. "/index.html", "from-the-mount\n", { mode = tonumber("644", 8) })
cork.proc.run({ "chmod", "755", dir })   -- the container runs as nobody
local SECRET = "s3cr3t-token-value-" .. H.id
local cname = H.name("web")
local spec = {
  name = cname, image = img,
  cmd = { "httpd", "-f", "-p", "8080", "-h", "/www" },
  env = { TOKEN = SECRET, PLAIN = "x" },
  labels = { ["cork.test"] = H.id, role = "web" },
  user = "65534", workdir = "/www",
  mounts = { { source = dir, target = "/www", read_only = true } },
  ports = { { container_port = 8080, host_ip = "127.0.0.17", host_port = "" },
            { container_port = "9090/tcp", host_ip = "127.0.0.17" } },
  networks = { { name = net1, ip = "10.231.7.10", aliases = { "web" } }, net2 },
  cap_drop = { "ALL" }, read_only_rootfs = true, security_opt = { "no-new-privileges" },
  init = true, tmpfs = { "/tmp" },
}
local c = d:container_create(spec)
T.like(c.id, "^%x+$", "container_create returns the id")
s:defer(function() pcall(d.container_remove, d, c.id, { force = true }) end)
e = T.raises(function() d:container_create(spec) end, "conflict", 'The container name "/' .. H.pat(cname) ..
  '" is already in use', "duplicate container name: conflict")
T.unlike(tostring(e and e.message), SECRET, "the env secret is not in the error")
e = T.raises(function()
  d:container_create { image = "cork-no-such-image:latest", env = { TOKEN = SECRET }, labels = H.labels }
end, "not_found", "No such image: cork%-no%-such%-image:latest", "bad image: not_found")
T.is(e and e.status, 404, "status 404")
T.raises(function() d:container_create { image = img, ports = { { host_ip = "127.0.0.17" } } } end, nil,
  "ports%[1%]: 'container_port' is required", "a port without container_port is a usage error")

-- Empty option lists go out as JSON arrays: Docker refuses {} for a list
-- (lua-cjson would send {} for any empty table).
local ec = d:container_create { name = H.name("empty-lists"), image = img, entrypoint = { "sleep", "1" },
  cmd = {}, env = {}, extra_hosts = {}, cap_drop = {}, security_opt = {}, mounts = {}, labels = H.labels }
s:defer(function() pcall(d.container_remove, d, ec.id, { force = true }) end)
local eci = d:container_inspect(ec)
T.same(eci.Config.Entrypoint, { "sleep", "1" }, "empty lists accepted by the engine (cmd, env, extra_hosts, ...)")
T.ok(eci.Config.Cmd == nil or eci.Config.Cmd == cork.json.null or next(eci.Config.Cmd) == nil,
  "cmd = {} is an empty command, not the image's")
d:container_remove(ec)

local ci = d:container_inspect(c)
T.is(ci.Name, "/" .. cname, "container_inspect")
T.is(ci.Config.User, "65534", "user")
T.is(ci.Config.WorkingDir, "/www", "workdir")
T.is(ci.Config.Labels.role, "web", "labels")
local env = table.concat(ci.Config.Env, " ")
T.like(env, "PLAIN=x", "env")
T.is(ci.HostConfig.ReadonlyRootfs, true, "read_only_rootfs")
T.same(ci.HostConfig.CapDrop, { "ALL" }, "cap_drop")
T.same(ci.HostConfig.SecurityOpt, { "no-new-privileges" }, "security_opt")
T.is(ci.HostConfig.Init, true, "init")
T.is(ci.HostConfig.Mounts[1].ReadOnly, true, "read-only bind mount")
T.ok(ci.HostConfig.Tmpfs["/tmp"] ~= nil, "tmpfs")
T.ok(ci.NetworkSettings.Networks[net1] and ci.NetworkSettings.Networks[net2], "attached to both networks"
  .. " (API " .. d:api_version() .. ")")
T.is(ci.NetworkSettings.Networks[net1].IPAMConfig.IPv4Address, "10.231.7.10", "static ip")

T.is(d:container_start(c), true, "container_start")
-- a container in the network namespace of another (what the docker recipe's seal step does)
local shared = d:container_create { name = H.name("netns"), image = img, labels = H.labels, cmd = { "sleep", "60" },
  network_mode = "container:" .. c.id }
s:defer(function() pcall(d.container_remove, d, shared.id, { force = true }) end)
T.is(d:container_inspect(shared).HostConfig.NetworkMode, "container:" .. c.id, "network_mode container:<id>")
d:container_remove(shared, { force = true })
T.raises(function() d:container_create { image = img, network_mode = "none", networks = { net1 } } end, nil,
  "give 'network_mode' or 'networks', not both", "network_mode and networks are exclusive")
T.is(d:container_start(c.id), false, "starting a running container: false (304)")
local port = d:host_port(c, 8080, "127.0.0.17")
T.ok(math.type(port) == "integer" and port > 0, "host_port finds the assigned port: " .. tostring(port))
T.is(d:host_port(cname, "8080/tcp"), port, "host_port by name, any address")
local p2 = d:host_port(c, 9090, "127.0.0.17")
T.ok(p2 > 0 and p2 ~= port, "second published port")
local body
for _ = 1, 50 do
  local r = cork.proc.run({ "curl", "-s", "-m", "2", "http://127.0.0.17:" .. port .. "/index.html" })
  if r.status == 0 and r.stdout ~= "" then body = r.stdout break end
  cork.sleep(0.1)
end
T.is(body, "from-the-mount\n", "the port answers on 127.0.0.17 (served from the read-only mount)")
local r = cork.proc.run({ "curl", "-s", "-m", "2", "http://127.0.0.1:" .. port .. "/index.html" })
T.isnt(r.status, 0, "and only there (not on 127.0.0.1)")
e = T.raises(function() d:host_port(c, 7777, "127.0.0.17") end, "not_found",
  "^container " .. H.pat(cname) .. " has no host port for 7777/tcp on 127%.0%.0%.17$",
  "host_port of an unpublished port: not_found naming container and port")
e = T.raises(function() d:host_port(c, 8080, "127.0.0.18") end, "not_found", "on 127%.0%.0%.18",
  "host_port on another address: not_found")

-- filters: exactly what was created
local list = d:containers { filters = { label = { "cork.test=" .. H.id, "role=web" } } }
T.is(#list, 1, "label filter (two labels, AND) finds exactly one running container")
T.is(list[1] and list[1].Id, c.id, "the right one")
T.is(#d:containers { all = true, filters = { name = { "^/" .. cname .. "$" } } }, 1, "anchored name filter")
T.is(#d:containers { filters = { label = "cork.test=" .. H.id .. "-other" } }, 0, "no false match")

-- ---- exit codes, logs, wait, kill, stop ------------------------------------
local job = d:container_create { name = H.name("job"), image = img, labels = H.labels,
  cmd = { "sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 7" } }
s:defer(function() pcall(d.container_remove, d, job.id, { force = true }) end)
d:container_start(job)
local w = d:container_wait(job)
T.is(w.status, 7, "container_wait returns the exit code")
T.is(math.type(w.status), "integer", "as an integer")
local logs = d:container_logs(job)
T.is(logs.stdout, "out1\nout2\n", "logs: stdout")
T.is(logs.stderr, "err1\n", "logs: stderr, separate")
local lt = d:container_logs(job, { tail = 1 })
T.is(select(2, (lt.stdout .. lt.stderr):gsub("\n", "")), 1, "logs tail = 1: one line")
T.is(d:container_logs(job, { stderr = false }).stderr, "", "logs stderr = false")
T.is(d:container_stop(job), false, "stopping a stopped container: false")
d:container_remove(job)
T.raises(function() d:container_remove(job) end, "not_found", "No such container", "remove twice: not_found")
T.raises(function() d:container_start(H.name("nope")) end, "not_found", nil, "start missing: not_found")

local sl = d:container_create { name = H.name("sleeper"), image = img, labels = H.labels,
  cmd = { "sh", "-c", "trap 'exit 42' USR1; trap 'exit 43' TERM; echo trapped; while :; do sleep 0.1; done" } }
s:defer(function() pcall(d.container_remove, d, sl.id, { force = true }) end)
-- a signal sent before the shell has set its traps kills it with the
-- default action (seen under load: exit 138): wait for the shell's word
local function trapped(n)
  for _ = 1, 200 do
    local _, k = d:container_logs(sl).stdout:gsub("trapped", "")
    if k >= n then return true end
    cork.core.sleep(0.05)
  end
  return false
end
d:container_start(sl)
trapped(1)
T.is(d:container_stop(sl, { timeout = 5, signal = "SIGUSR1" }), true, "stop with a signal")
T.is(d:container_inspect(sl).State.ExitCode, 42, "the stop signal was the one given (API " ..
  d:api_version() .. ")")
d:container_start(sl)
trapped(2)
d:container_kill(sl, "TERM")
T.is(d:container_wait(sl).status, 43, "container_kill sends the signal")
T.raises(function() d:container_kill(sl) end, "conflict", "is not running", "kill a stopped container: conflict")
d:container_remove(sl, { force = true })

-- ---- images ------------------------------------------------------------------
local ii = d:image_inspect(img)
T.same(ii.Config.Cmd, { "/bin/sh" }, "image_inspect")
local tdir = cork.fs.tempdir("cork-img")
s:defer(function() cork.fs.remove(tdir, { recursive = true }) end)
cork.fs.mkdir(tdir .. "/root/etc")
cork.fs.write(tdir .. "/root/etc/hello", "hi\n")
T.is(cork.proc.run({ "tar", "-C", tdir .. "/root", "-cf", tdir .. "/r.tar", "." }).status, 0, "tar")
local ref = H.name("img") .. ":t1"
local im = d:image_import(tdir .. "/r.tar", { repo = H.name("img"), tag = "t1",
  changes = { "ENV A=b", 'CMD ["/bin/true"]' }, message = "cork test" })
T.like(im.id, "^sha256:%x+$", "image_import returns the image id")
s:defer(function() pcall(d.image_remove, d, ref, { force = true }) end)
local ii2 = d:image_inspect(ref)
T.is(ii2.Id, im.id, "imported image found by repo:tag")
T.same(ii2.Config.Env, { "A=b" }, "changes applied")
local f = assert(io.open(tdir .. "/r.tar", "rb"))
local im2 = d:image_import(f, { repo = H.name("img"), tag = "t2" })
f:close()
T.like(im2.id, "^sha256:%x+$", "import from an open file handle")
T.same(d:image_inspect(H.name("img") .. ":t2").Config.Env, cork.json.null, "without changes")
local rm = d:image_remove(H.name("img") .. ":t2")
T.is(rm[1] and rm[1].Untagged, H.name("img") .. ":t2", "image_remove untags")
d:image_remove(ref)
T.raises(function() d:image_inspect(ref) end, "not_found", "No such image", "removed image: not_found")
T.raises(function() d:image_import(tdir .. "/missing.tar") end, "not_found", "missing%.tar", "import of a missing file")
cork.fs.write(tdir .. "/bad.tar", "this is not a tar archive at all")
T.raises(function() d:image_import(tdir .. "/bad.tar", { repo = H.name("bad") }) end, nil, nil,
  "import of a bad archive raises")

-- ---- events ------------------------------------------------------------------
local since = os.time() - 1
local en = d:network_create { name = H.name("ev"), labels = H.labels }
d:network_remove(en)
local seen = {}
for ev in d:events { since = since, ["until"] = os.time() + 1,
  filters = { type = "network", network = H.name("ev") } } do
  if ev.Actor and ev.Actor.Attributes and ev.Actor.Attributes.name == H.name("ev") then
    seen[#seen + 1] = ev.Action
  end
end
T.same(seen, { "create", "destroy" }, "events: since/until/filters as a for-loop iterator")
local stream = d:events { filters = { type = "network" } }
T.is(stream:next(0.2), nil, "events:next(timeout) returns nil when nothing happens")
stream:close()

-- ---- raw requests ----------------------------------------------------------
local rr = d:request("GET", "/containers/json", { query = { all = true, filters = { label = { "cork.test=" .. H.id } } } })
T.is(rr.status, 200, "request: status")
T.ok(type(rr.body) == "table", "request: decoded body")
T.is(d:request("GET", "/v1.41/version").body.ApiVersion, v.ApiVersion, "request: explicit version prefix")
T.is(d:request("GET", "/_ping").body, "OK", "request: text answer")
T.raises(function() d:request("GET", "/containers/" .. H.name("nope") .. "/json") end, "not_found",
  "^docker GET /containers/" .. H.pat(H.name("nope")) .. "/json: No such container", "request: errors too")
T.raises(function() d:request("get", "/x") end, nil, "upper%-case", "request: method checked")

-- request{output}: the answer streams to a file, never whole in memory
local sdir = cork.fs.tempdir("cork-docker-save")
s:defer(function() cork.fs.remove(sdir, { recursive = true }) end)
local sv = d:request("GET", "/images/" .. img .. "/get", { output = sdir .. "/img.tar", timeout = 120 })
T.is(sv.status, 200, "request{output}: status")
T.is(sv.path, sdir .. "/img.tar", "request{output}: path")
T.is(sv.body, nil, "request{output}: no body in memory")
local st = cork.fs.stat(sdir .. "/img.tar")
T.is(sv.bytes, st and st.size, "request{output}: bytes = the file's size")
T.ok(sv.bytes > 100000, "request{output}: a whole image archive (" .. tostring(sv.bytes) .. " bytes)")
T.is(st and st.mode & 511, 384, "request{output}: the file is 0600")
local tl = cork.proc.run({ "tar", "-tf", sdir .. "/img.tar" })
T.ok(tl.status == 0 and tl.stdout:find("manifest.json", 1, true), "request{output}: a docker save archive")
T.raises(function()
  d:request("GET", "/images/" .. H.name("nope") .. "/get", { output = sdir .. "/nope.tar" })
end, "not_found", "No such image", "request{output}: an error answer raises")
T.is(cork.fs.stat(sdir .. "/nope.tar"), nil, "request{output}: and leaves no file")
T.raises(function()
  d:request("GET", "/images/" .. img .. "/get", { output = sdir .. "/no/dir/x.tar" })
end, "not_found", "cannot write", "request{output}: a missing directory")
cork.proc.run({ "ln", "-s", sdir .. "/target", sdir .. "/link" })
T.raises(function()
  d:request("GET", "/images/" .. img .. "/get", { output = sdir .. "/link" })
end, "io", "cannot write", "request{output}: a symlink is refused, not followed")
T.is(cork.fs.stat(sdir .. "/target"), nil, "request{output}: nothing written through the symlink")
T.raises(function() d:request("GET", "/_ping", { progress = function() end }) end, nil,
  "needs 'output'", "request: progress needs output")
-- extra headers (what a push needs: X-Registry-Auth; tests/integration/test_prepare.lua
-- pushes to a real registry with it)
T.is(d:request("GET", "/_ping", { headers = { ["X-Registry-Auth"] = "e30=" } }).body, "OK",
  "request{headers}: sent")
T.raises(function() d:request("GET", "/_ping", { headers = { ["X-Bad"] = "a\r\nInjected: 1" } }) end, nil,
  "bad header 'X%-Bad'", "request{headers}: a value with CR/LF is refused")
T.raises(function() d:request("GET", "/_ping", { headers = { ["Bad Name"] = "x" } }) end, nil,
  "bad header", "request{headers}: a bad name is refused")
T.raises(function() d:request("GET", "/_ping", { headers = "X: y" }) end, nil,
  "'headers' must be a table", "request{headers}: a table")

-- progress: a slow answer (a followed log) reports its bytes about once a second
local slow = d:container_create { name = H.name("slow"), image = img, labels = H.labels,
  cmd = { "sh", "-c", "for i in 1 2 3; do echo line-$i; sleep 1; done" } }
d:container_start(slow)
local calls, busy = {}, nil
local lg = d:request("GET", "/containers/" .. slow.id .. "/logs",
  { query = { follow = true, stdout = true }, output = sdir .. "/logs", timeout = 30,
    progress = function(n)
      calls[#calls + 1] = n
      if not busy then busy = select(2, pcall(d.ping, d)) end
    end })
T.ok(#calls >= 1 and calls[1] > 0, "request{progress}: called with the bytes so far (" .. #calls .. " calls)")
T.ok(lg.bytes >= calls[#calls], "request{progress}: the counts grow to the total")
T.like(cork.fs.read(sdir .. "/logs"), "line%-3", "request{output}: a streamed log, whole")
T.like(tostring(busy and busy.message or busy), "busy", "request{progress}: the client refuses reuse inside it")
d:container_wait(slow)
local slow2 = d:container_create { name = H.name("slow2"), image = img, labels = H.labels,
  cmd = { "sh", "-c", "for i in 1 2 3 4 5; do echo x-$i; sleep 1; done" } }
d:container_start(slow2)
local t0 = cork.time()
T.raises(function()
  d:request("GET", "/containers/" .. slow2.id .. "/logs",
    { query = { follow = true, stdout = true }, output = sdir .. "/logs2", timeout = 30,
      progress = function() error("enough") end })
end, nil, "enough", "request{progress}: its error ends the transfer")
T.ok(cork.time() - t0 < 3.5, "request{progress}: at once, not at the end of the stream")
T.is(cork.fs.stat(sdir .. "/logs2"), nil, "request{progress}: and the partial file is removed")
d:container_kill(slow2, "KILL")
d:container_remove(slow, { force = true })
d:container_remove(slow2, { force = true })

-- ---- cleanup -------------------------------------------------------------------
d:container_stop(c, { timeout = 0 })
d:container_remove(c, { volumes = true })
d:network_remove(n1)
d:network_remove(n2.id)
T.raises(function() d:network_remove(n1.id) end, "not_found", nil, "network removed twice: not_found")
H.no_leaks(T, d, before)
T.done()
