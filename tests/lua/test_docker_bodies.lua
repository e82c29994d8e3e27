-- cork.docker's request bodies, built in lua/cork/docker.lua, checked
-- without an engine: what each call sends, as JSON (docker._encode is the
-- encoder request() uses), and the errors of bad options.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local docker = require "cork.docker"
local B, enc = docker._body, docker._encode
local json = cork.json

local function plain(fn, pattern, name)
  local ok, err = pcall(fn)
  T.ok(not ok and type(err) == "string" and err:find(pattern, 1, true) ~= nil, name,
    "  error: " .. tostring(err) .. "\n  want (plain): " .. pattern)
end

-- the public face is unchanged: the C client under it is cork._docker
T.is(docker.API_MIN, "1.41", "API_MIN")
T.is(docker.API_MAX, "1.52", "API_MAX")
T.is(type(docker.connect), "function", "connect")
T.is(docker._negotiate("1.47", "1.24"), "1.47", "_negotiate")
T.is(docker._filters({ label = "a=b" }), '{"label":{"a=b":true}}', "_filters")
T.is(require("cork._docker").connect, docker.connect, "connect is the C client's")
for _, m in ipairs({ "network_create", "container_create", "container_stop", "host_port", "exec", "events",
  "request", "image_import", "image_remove" }) do
  T.is(type(require("cork._docker")._Client[m]), "function", "client method " .. m)
end

-- arrays: an empty marked table is [], an unmarked one {}
T.is(enc(docker.array({})), "[]", "docker.array({}) encodes as []")
T.is(enc({}), "{}", "an unmarked empty table is {}")
T.is(enc({ 1, "a", true }), '[1,"a",true]', "a sequence is an array")

-- ---- network_create ----
local n = B.network_create { name = "n1", subnet = "10.1.0.0/24", gateway = "10.1.0.1", internal = true,
  labels = { ["cork.slug"] = "x", flag = true }, options = { mtu = 1400 } }
T.same(json.decode(enc(n)), { Name = "n1", CheckDuplicate = true, Driver = "bridge", Internal = true,
  Labels = { ["cork.slug"] = "x", flag = "true" }, Options = { mtu = "1400" },
  IPAM = { Driver = "default", Config = { { Subnet = "10.1.0.0/24", Gateway = "10.1.0.1" } } } },
  "network_create: the whole body")
T.same(json.decode(enc(B.network_create { name = "n2", driver = "macvlan", attachable = true })),
  { Name = "n2", CheckDuplicate = true, Driver = "macvlan", Internal = false, Attachable = true },
  "network_create: defaults, attachable")
plain(function() B.network_create { name = "n", gateway = "10.0.0.1" } end, "'gateway' needs 'subnet'", "gateway needs subnet")
plain(function() B.network_create {} end, "option 'name' is required", "name is required")
T.raises(function() B.network_create { name = "" } end, "usage", "option 'name' is empty", "an empty name: usage")
plain(function() B.network_create { name = "n", colour = "red" } end, "unknown option 'colour'", "unknown option")
plain(function() B.network_create { name = "n", internal = 1 } end, "option 'internal' must be a boolean (got number)",
  "internal must be a boolean")
plain(function() B.network_create { name = "n", labels = { "x" } } end, "option 'labels' keys must be strings",
  "labels: a map")

-- ---- container_create ----
local spec = {
  name = "c1", image = "img", cmd = {}, entrypoint = { "/init", 5 }, env = { B = "2", A = "1" },
  labels = {}, user = "1000", workdir = "/w", hostname = "h", stop_signal = "SIGINT", stop_timeout = 3.7,
  tty = true, open_stdin = true, cap_drop = { "ALL" }, cap_add = {}, security_opt = { "no-new-privileges" },
  extra_hosts = {}, dns = { "10.9.8.7" }, read_only_rootfs = true, init = true, auto_remove = true, memory = 1e9, pids_limit = 64,
  tmpfs = { "/tmp", ["/run"] = "size=1m" },
  mounts = { { source = "/a", target = "/b", read_only = true }, { type = "tmpfs", target = "/t" } },
  ports = { { container_port = 8888, host_ip = "127.0.0.17" }, { container_port = "53/udp", host_port = 5353 },
    { container_port = 8888, host_ip = "::1", host_port = "0" } },
  networks = { "net-a", { name = "net-b", ip = "10.2.0.5", aliases = { "bee" } } },
}
local body, path, secrets, nets = B.container_create(spec, 44)
T.is(path, "/containers/create?name=c1", "create path with the name")
table.sort(secrets)
T.same(secrets, { "1", "2" }, "env values kept for redaction")
T.is(#nets, 2, "both networks normalized")
local text = enc(body)
for _, want in ipairs({ '"Cmd":[]', '"CapAdd":[]', '"ExtraHosts":[]', '"Labels":{}', '"Entrypoint":["/init","5"]',
  '"Env":["A=1","B=2"]', '"StopTimeout":3', '"Memory":1000000000', '"PidsLimit":64', '"NetworkMode":"net-a"',
  '"net-a":{}', '"IPv4Address":"10.2.0.5"', '"Aliases":["bee"]', '"ReadonlyRootfs":true', '"Dns":["10.9.8.7"]' }) do
  T.ok(text:find(want, 1, true), "create body has " .. want, "  body: " .. text)
end
local b = json.decode(text)
T.same(b.HostConfig.Tmpfs, { ["/tmp"] = "", ["/run"] = "size=1m" }, "tmpfs: list and map")
T.same(b.HostConfig.Mounts, { { Type = "bind", Source = "/a", Target = "/b", ReadOnly = true },
  { Type = "tmpfs", Target = "/t", ReadOnly = false } }, "mounts")
T.same(b.ExposedPorts, { ["8888/tcp"] = {}, ["53/udp"] = {} }, "exposed ports")
T.same(b.HostConfig.PortBindings, { ["8888/tcp"] = { { HostIp = "127.0.0.17", HostPort = "" }, { HostIp = "::1", HostPort = "" } },
  ["53/udp"] = { { HostIp = "", HostPort = "5353" } } }, "port bindings (host_port 0 and \"0\" mean any)")
T.same({ b.User, b.WorkingDir, b.Hostname, b.StopSignal, b.Tty, b.OpenStdin },
  { "1000", "/w", "h", "SIGINT", true, true }, "plain fields")
T.same({ b.HostConfig.Init, b.HostConfig.AutoRemove, b.HostConfig.CapDrop, b.HostConfig.SecurityOpt },
  { true, true, { "ALL" }, { "no-new-privileges" } }, "host config fields")

-- API < 1.44: only the first network at create (the caller connects the rest)
local old = json.decode(enc((B.container_create(spec, 41))))
T.same(old.NetworkingConfig, { EndpointsConfig = { ["net-a"] = {} } }, "< 1.44: the first network only")

-- the smallest create
local min, mpath = B.container_create({ image = "i" }, 52)
T.same(json.decode(enc(min)), { Image = "i", HostConfig = {} }, "a bare create: image and an empty HostConfig")
T.ok(enc(min):find('"HostConfig":{}', 1, true), "an empty HostConfig is an object")
T.is(mpath, "/containers/create", "no name, no query")
T.is(select(2, B.container_create({ image = "i", name = "a b/c" }, 52)), "/containers/create?name=a%20b%2Fc",
  "the name is percent-encoded")
T.same(json.decode(enc(B.container_create({ image = "i", network_mode = "container:abc" }, 52))).HostConfig,
  { NetworkMode = "container:abc" }, "network_mode")
T.same(select(3, B.container_create({ image = "i", env = { "X=a=b", "Y=" } }, 52)), { "a=b", "" },
  "env as a list: values after the first =")

-- errors of bad options, exactly as the C builders had them
plain(function() B.container_create({}, 52) end, "option 'image' is required", "image is required")
plain(function() B.container_create({ image = "i", ports = { { host_ip = "127.0.0.17" } } }, 52) end,
  "ports[1]: 'container_port' is required (a number or \"80/tcp\")", "a port without container_port")
plain(function() B.container_create({ image = "i", ports = { { container_port = 70000 } } }, 52) end,
  "ports[1]: bad container_port '70000'", "a port out of range")
plain(function() B.container_create({ image = "i", ports = { { container_port = "80/tcp", protocol = "udp" } } }, 52) end,
  "ports[1]: give the protocol in 'container_port' or 'protocol', not both", "protocol twice")
plain(function() B.container_create({ image = "i", ports = { { container_port = 80, host_port = -1 } } }, 52) end,
  "ports[1]: bad host_port (a port number, or \"\" for any)", "a bad host_port")
plain(function() B.container_create({ image = "i", ports = { { container_port = 80, hostport = 1 } } }, 52) end,
  "unknown option 'hostport' (did you mean 'host_port'?)", "a typo in a port")
plain(function() B.container_create({ image = "i", mounts = { { target = "/x" } } }, 52) end,
  "mounts[1] needs 'source' and 'target'", "a bind mount needs a source")
plain(function() B.container_create({ image = "i", mounts = { "/x" } }, 52) end, "mounts[1] must be a table",
  "mounts are tables")
plain(function() B.container_create({ image = "i", networks = { { ip = "1.2.3.4" } } }, 52) end,
  "networks[1] needs a 'name'", "a network needs a name")
plain(function() B.container_create({ image = "i", networks = { 5 } }, 52) end, "networks[1] must be a name or a table",
  "networks are names or tables")
plain(function() B.container_create({ image = "i", network_mode = "none", networks = { "n" } }, 52) end,
  "give 'network_mode' or 'networks', not both", "network_mode excludes networks")
plain(function() B.container_create({ image = "i", tmpfs = { [1] = 5 } }, 52) end,
  "'tmpfs' must be a list of paths or a map path -> options", "tmpfs entries")
plain(function() B.container_create({ image = "i", cmd = { "a", {} } }, 52) end, "option 'cmd'[2] must be a string (got table)",
  "cmd entries are strings")
plain(function() B.container_create({ image = "i", env = { "NOEQUALS" } }, 52) end,
  "option 'env' entry must be \"NAME=value\"", "env list entries are K=V")
plain(function() B.container_create({ image = "i", env = { ["A=B"] = "x" } }, 52) end,
  "option 'env' has a bad variable name", "env names have no =")
plain(function() B.container_create({ image = "i", tty = "yes" }, 52) end, "option 'tty' must be a boolean (got string)",
  "tty must be a boolean")
plain(function() B.container_create({ image = "i", memory = "1g" }, 52) end, "option 'memory' must be a number (got string)",
  "memory must be a number")

-- paths: refs and queries are percent-encoded, nil values skipped, order kept
T.is(docker._path("/containers/", "a/b", "/stop", "t", 3, "signal", nil), "/containers/a%2Fb/stop?t=3",
  "path: escaped ref, nil skipped")
T.is(docker._path("/containers/json", nil, nil, "all", 1, "filters", '{"a":1}'),
  "/containers/json?all=1&filters=%7B%22a%22%3A1%7D", "path: query values escaped")

T.done()
