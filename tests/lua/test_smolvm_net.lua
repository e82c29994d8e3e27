-- The stand-in smolvm's virtio-net network (tests/fakes/smolvm-gateway):
-- the guest's own loopback, the gateway's mapping of 100.96.0.1 to the
-- host's 127.0.0.1, the allowlist on the original destination for TCP and
-- UDP, the floor modes, DNS through the gateway (and NXDOMAIN off an
-- --allow-host list; forwarded to FAKE_SMOLVM_RESOLVER), egress-events, and nothing left after delete or after
-- kill -9 of the gateway. The TSI dialect keeps the host's namespace.
--
-- "The host" here is a network namespace this test makes (held by a sleep):
-- every stand-in call runs in it, so the addresses the test puts on its lo
-- and the servers it starts there touch nothing outside the test.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local proc, fs, json = cork.proc, cork.fs, cork.json

local ROOT = os.getenv("CORK_ROOT")
local FAKE = ROOT .. "/tests/fakes/smolvm"
if cork.core.uid and cork.core.uid() ~= 0 then T.skip_all("needs root (network namespaces)") end
for _, tool in ipairs({ "unshare", "nsenter", "ip", "iptables", "python3" }) do
  if proc.run({ "sh", "-c", "command -v " .. tool }).status ~= 0 then T.skip_all("needs " .. tool) end
end
if proc.run({ "id", "-u" }).stdout ~= "0\n" then T.skip_all("needs root (network namespaces)") end

local tmp = fs.tempdir("cork-smolnet")
local s <close> = cork.scope("test_smolvm_net")
s:defer(fs.remove, tmp, { recursive = true, missing_ok = true })
local art = tmp .. "/agent.smolmachine"
fs.write(art, "user=agent\n")

-- the test's "host"
local holder = proc.spawn({ "unshare", "-n", "sleep", "3600" })
s:defer(holder.close, holder, 0)
local HNS = "--net=/proc/" .. holder:pid() .. "/ns/net"
local self_ns = fs.readlink and fs.readlink("/proc/self/ns/net")
  or proc.run({ "readlink", "/proc/self/ns/net" }).stdout:gsub("\n", "")
for _ = 1, 100 do
  if proc.run({ "readlink", "/proc/" .. holder:pid() .. "/ns/net" }).stdout:gsub("\n", "") ~= self_ns then break end
  cork.sleep(0.02)
end
local function host(argv, o)
  local a = { "nsenter", HNS }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  return proc.run(a, o)
end
host({ "ip", "link", "set", "lo", "up" })
for _, ip in ipairs({ "198.18.0.7", "198.18.0.8", "169.254.7.7", "10.99.0.1" }) do
  host({ "ip", "addr", "add", ip .. "/32", "dev", "lo" })
end

-- servers in the host: TCP answers "hello LABEL", UDP echoes "LABEL:DATA"
local SERVE = tmp .. "/serve.py"
fs.write(SERVE, [[
import socket, sys, threading
addr, port, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind((addr, port)); t.listen(16)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((addr, port))
def udp():
    while True:
        d, a = u.recvfrom(2048); u.sendto(label.encode() + b":" + d, a)
threading.Thread(target=udp, daemon=True).start()
print("ready", flush=True)
while True:
    c, _ = t.accept(); c.sendall(b"hello " + label.encode() + b"\n"); c.close()
]])
-- a probe: "tcp HOST PORT" / "udp HOST PORT" prints what came back, or why not
local PROBE = tmp .. "/probe.py"
fs.write(PROBE, [[
import socket, sys
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if kind == "tcp":
        c = socket.create_connection((host, port), timeout=2); print(c.recv(100).decode().strip() or "empty")
    else:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(1.5); u.connect((host, port))
        u.send(b"ping"); print(u.recv(100).decode())
except socket.timeout:
    print("timeout")
except OSError as e:
    print("error " + (e.strerror or str(e)))
]])
local PORT = 18700 + (cork.core.pid() % 200)
local servers = {}
local function serve(addr, label)
  local out = tmp .. "/serve-" .. label
  local p = proc.spawn({ "nsenter", HNS, "python3", SERVE, addr, tostring(PORT), label }, { stdout = out, stderr = out })
  servers[#servers + 1] = p
  s:defer(p.close, p, 0)
  for _ = 1, 100 do
    if fs.exists(out) and fs.read(out):find("ready", 1, true) then return end
    cork.sleep(0.05)
  end
  T.diag("server " .. label .. " did not start: " .. (fs.exists(out) and fs.read(out) or ""))
end
serve("127.0.0.1", "hostlo")
serve("198.18.0.7", "alias7")
serve("198.18.0.8", "alias8")
serve("169.254.7.7", "metadata")
serve("10.99.0.1", "private")

local HOSTS = tmp .. "/hosts"
fs.write(HOSTS, "198.18.0.7 api.test\n198.18.0.8 other.test\n")
local n = 0
local function world(extra)
  n = n + 1
  local st = ("%s/w%d"):format(tmp, n)
  fs.mkdir(st)
  local env = { FAKE_SMOLVM_STATE = st, FAKE_SMOLVM_HOSTS = HOSTS, SMOLVM_EGRESS_FLOOR = false,
    SMOLVM_PUBLISH_ADDR = false, SMOLVM_EGRESS_ALLOW_PRIVATE = false }
  for k, v in pairs(extra or {}) do env[k] = v end
  local w = { st = st, env = env }
  function w.sv(...)
    return host({ FAKE, ... }, { env = env })
  end
  function w.machine(name, flags)
    local a = { "machine", "create", "--name", name, "--from", art }
    for _, f in ipairs(flags or {}) do a[#a + 1] = f end
    local r = w.sv(table.unpack(a))
    if r.status ~= 0 then return r end
    return w.sv("machine", "start", "--name", name)
  end
  function w.gw(name)
    local t = fs.exists(st .. "/machines/" .. name .. "/gw") and fs.read(st .. "/machines/" .. name .. "/gw") or ""
    local pid, fd, ino = t:match("^(%d+) (%d+) (%d+)")
    return pid, fd, ino
  end
  -- run argv in the guest's network namespace (python probes need the host's files)
  function w.in_guest(name, argv)
    local pid, fd = w.gw(name)
    local a = { "nsenter", "--net=/proc/" .. tostring(pid) .. "/fd/" .. tostring(fd) }
    for _, x in ipairs(argv) do a[#a + 1] = x end
    return proc.run(a).stdout:gsub("\n$", "")
  end
  function w.probe(name, kind, addr, port)
    return w.in_guest(name, { "python3", PROBE, kind, addr, tostring(port or PORT) })
  end
  function w.exec(name, script)
    return w.sv("machine", "exec", "--name", name, "--", "sh", "-c", script)
  end
  function w.events(name)
    local r = w.sv("machine", "egress-events", "--name", name, "--json")
    local ok, v = pcall(json.decode, r.stdout)
    return ok and v or {}, r
  end
  return w
end
local function has_event(evs, op, dest)
  for _, e in ipairs(evs) do
    if e.operation == op and e.destination == dest then return true end
  end
  return false
end
local function ns_alive(ino)
  for _, p in ipairs(fs.list("/proc")) do
    if p:match("^%d+$") then
      local r = proc.run({ "readlink", "/proc/" .. p .. "/ns/net" }).stdout
      if r:find("net:[" .. ino .. "]", 1, true) then return true end
    end
  end
  return false
end
local function gateways(st)
  local c = 0
  for _, p in ipairs(fs.list("/proc")) do
    if p:match("^%d+$") then
      local f = io.open("/proc/" .. p .. "/cmdline", "rb")
      local cl = f and f:read("a") or ""
      if f then f:close() end
      if cl:find("smolvm-gateway", 1, true) and cl:find(st, 1, true) then c = c + 1 end
    end
  end
  return c
end
local host_rules = host({ "iptables-save" }).stdout:gsub("#[^\n]*\n", "")
local host_links = host({ "ip", "-o", "link" }).stdout

-- 1. TSI keeps the host's namespace -------------------------------------------
do
  local w = world({ FAKE_SMOLVM_VERSION = "0.8.2" })
  local r = host({ FAKE, "machine", "create", "tsi", "--from", art, "--net", "--allow-cidr", "198.18.0.7/32" },
    { env = w.env })
  T.is(r.status, 0, "0.8: create with an allowlist (TSI)", r.stderr)
  w.sv("machine", "start", "--name", "tsi")
  T.ok(not w.gw("tsi"), "0.8: no gateway, no namespace of its own")
  T.like(w.exec("tsi", "echo | nc -w 2 127.0.0.1 " .. PORT).stdout, "hello hostlo",
    "0.8 (TSI): the guest's 127.0.0.1 is the host's, and the allowlist is not enforced")
  w.sv("machine", "delete", "-f", "tsi")
  local w1 = world()
  w1.machine("plain", { "--net" })
  T.ok(not w1.gw("plain"), "1.x without a policy: TSI, no gateway")
  w1.sv("machine", "delete", "--name", "plain", "-f")
end

-- 2. the allowlist on the original destination, TCP and UDP --------------------
local w = world()
local r = w.machine("a", { "--net", "--allow-cidr", "198.18.0.7/32" })
T.is(r.status, 0, "1.x: create and start with --allow-cidr 198.18.0.7/32", r.stderr)
local pid, _, ino = w.gw("a")
T.ok(pid, "a gateway runs for the machine")
T.like(w.exec("a", "ip -4 addr show eth0; ip route").stdout, "inet 100%.96%.0%.2/30.*default via 100%.96%.0%.1",
  "the guest: 100.96.0.2, its default route via the gateway 100.96.0.1")
T.like(w.exec("a", "echo | nc -w 2 198.18.0.7 " .. PORT).stdout, "hello alias7",
  "TCP to the allowed address (machine exec, busybox nc)")
T.is(w.probe("a", "tcp", "198.18.0.7"), "hello alias7", "TCP: allowed address reached")
T.is(w.probe("a", "udp", "198.18.0.7"), "alias7:ping", "UDP: allowed address reached (relayed both ways)")
T.like(w.exec("a", "ping -c 1 -W 2 198.18.0.7").stdout, "1 packets received",
  "ICMP echo to the allowed address: relayed (icmp_relay.rs), the reply comes back from it")
T.like(w.exec("a", "ping -c 1 -W 2 198.18.0.8").stdout, " 0 packets received", "ICMP echo to another address: dropped")
T.like(w.exec("a", "ping -c 1 -W 2 100.96.0.1").stdout, " 0 packets received",
  "ICMP echo to the gateway (not allowlisted): no answer, not even from the gateway itself")
T.like(w.probe("a", "tcp", "198.18.0.8"), "^error", "TCP: another address on the host's lo is refused")
T.is(w.probe("a", "udp", "198.18.0.8"), "timeout", "UDP: to another address, dropped")
T.like(w.probe("a", "tcp", "100.96.0.1"), "^error", "TCP: the gateway (the host's 127.0.0.1) is refused")
T.is(w.probe("a", "udp", "100.96.0.1"), "timeout", "UDP: the gateway, dropped")
T.like(w.probe("a", "tcp", "127.0.0.1"), "^error", "the guest's 127.0.0.1 is its own loopback (nothing listens)")
-- the guest's own loopback works as a loopback
T.like(w.exec("a", "(echo guest-local | nc -l -p 4444 &) ; sleep 0.3; nc -w 2 127.0.0.1 4444 </dev/null").stdout,
  "guest%-local", "a server in the guest is reachable on the guest's own 127.0.0.1")
local evs, er = w.events("a")
T.ok(has_event(evs, "connect", "to 198.18.0.8:" .. PORT), "egress-events --json: the refused connect", er.stdout)
T.ok(has_event(evs, "sendto", "to 198.18.0.8:" .. PORT), "egress-events --json: the dropped UDP")
T.ok(has_event(evs, "connect", "to 100.96.0.1:" .. PORT), "egress-events --json: the gateway refused")
T.ok(not has_event(evs, "connect", "to 198.18.0.7:" .. PORT), "no event for the allowed address")
T.like(w.sv("machine", "egress-events", "--name", "a").stdout,
  "%d%d%d%d%-%d%d%-%d%dT[%d:]+Z egress policy denied connect to 198%.18%.0%.8:" .. PORT,
  "egress-events: smolvm's own line, egress policy denied <op> <dest>")

-- 3. the gateway: 100.96.0.1:P is the host's 127.0.0.1:P ------------------------
r = w.machine("g", { "--net", "--allow-cidr", "100.96.0.1/32" })
T.is(w.probe("g", "tcp", "100.96.0.1"), "hello hostlo", "allowlist 100.96.0.1/32: TCP to the gateway reaches the host's 127.0.0.1")
T.is(w.probe("g", "udp", "100.96.0.1"), "hostlo:ping", "and UDP")
T.like(w.probe("g", "tcp", "198.18.0.7"), "^error", "but nothing else")
T.like(w.exec("g", "ping -c 1 -W 2 198.18.0.7").stdout, " 0 packets received", "nor ICMP echo to anything else")

-- 4. floors -------------------------------------------------------------------
r = w.machine("f", { "--net", "--allow-cidr", "169.254.7.7/32", "--allow-cidr", "10.99.0.1/32" })
T.like(w.probe("f", "tcp", "169.254.7.7"), "^error", "default floor: link-local denied even when allowlisted")
T.is(w.probe("f", "tcp", "10.99.0.1"), "hello private", "default floor (metadata only): RFC 1918 allowlisted is reached")
local ws = world({ SMOLVM_EGRESS_FLOOR = "strict" })
ws.machine("s", { "--net", "--allow-cidr", "10.99.0.1/32", "--allow-cidr", "198.18.0.7/32", "--allow-cidr", "100.96.0.1/32" })
T.like(ws.probe("s", "tcp", "10.99.0.1"), "^error", "SMOLVM_EGRESS_FLOOR=strict: RFC 1918 denied even when allowlisted")
T.like(ws.probe("s", "tcp", "100.96.0.1"), "^error", "strict: the gateway (100.64.0.0/10) denied even when allowlisted")
T.is(ws.probe("s", "tcp", "198.18.0.7"), "hello alias7", "strict: 198.18.0.0/15 is not in the floor")
local wp = world({ SMOLVM_PUBLISH_ADDR = "127.0.0.1" })
wp.machine("p", { "--net", "--allow-cidr", "10.99.0.1/32" })
T.like(wp.probe("p", "tcp", "10.99.0.1"), "^error", "SMOLVM_PUBLISH_ADDR set: the strict floor")
local wo = world({ SMOLVM_EGRESS_FLOOR = "off" })
wo.machine("o", { "--net", "--allow-cidr", "169.254.7.7/32" })
T.is(wo.probe("o", "tcp", "169.254.7.7"), "hello metadata", "SMOLVM_EGRESS_FLOOR=off: no floor")

-- 5. DNS ---------------------------------------------------------------------------
T.like(w.exec("a", "nslookup api.test").stdout, "Address: 198%.18%.0%.7",
  "no --allow-host: every name is forwarded through the gateway (a channel out)")
T.like(w.exec("a", "cat /etc/resolv.conf").stdout, "nameserver 100%.96%.0%.1", "the guest's resolver is the gateway")
r = w.machine("d", { "--net", "--allow-cidr", "198.18.0.7/32", "--allow-host", "api.test" })
T.is(r.status, 0, "--allow-host NAME resolved at create", r.stderr)
T.like(w.exec("d", "nslookup api.test").stdout, "Address: 198%.18%.0%.7", "--allow-host: the listed name answers")
local nx = w.exec("d", "nslookup other.test 2>&1; nslookup exfil-secret.example 198.18.0.7 2>&1").stdout
T.like(nx, "can't find other%.test: NXDOMAIN", "--allow-host: a name off the list gets NXDOMAIN")
T.like(nx, "can't find exfil%-secret%.example: NXDOMAIN", "--allow-host: so does a query to any address (port 53 is the gateway's)")
T.like(w.exec("d", "nslookup host.smolvm.internal").stdout, "Address: 100%.96%.0%.1", "host.smolvm.internal is the gateway")
evs = w.events("d")
T.ok(has_event(evs, "resolve", "other.test"), "egress-events: the refused name")
r = w.machine("l", { "--net", "--allow-cidr", "198.18.0.7/32", "--allow-host", "198.18.0.7" })
T.is(r.status, 0, "--allow-host with an IP literal: kept as it is")
T.like(w.exec("l", "nslookup api.test 2>&1").stdout, "NXDOMAIN", "an IP literal turns the filter on: every name NXDOMAIN")
T.is(w.probe("l", "tcp", "198.18.0.7"), "hello alias7", "and the address itself stays reachable")
local ls = json.decode(w.sv("machine", "ls", "--json").stdout)
local hosts_of = {}
for _, m in ipairs(ls) do hosts_of[m.name] = m.network.allowed_hosts end
T.same(hosts_of.l, { "198.18.0.7" }, "ls --json: allowed_hosts")
r = w.sv("machine", "create", "--name", "bad", "--from", art, "--net", "--allow-host", "no-such-name.invalid")
T.is(r.status, 1, "an --allow-host that does not resolve fails the create")
T.like(r.stderr, "^Error: failed to resolve 'no%-such%-name%.invalid'", "with smolvm's message")
T.ok(not fs.exists(w.st .. "/machines/bad"), "and creates nothing")

-- FAKE_SMOLVM_RESOLVER: the host's resolver the gateway forwards to (a canary
-- of the test's here: it logs each name and answers NXDOMAIN)
local RESOLVER = tmp .. "/resolver.py"
fs.write(RESOLVER, [=[
import socket, sys
addr, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind((addr, port))
print("ready", flush=True)
while True:
    q, a = u.recvfrom(2048)
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    with open(log, "a") as f:
        f.write(".".join(labels) + "\n")
    u.sendto(q[:2] + b"\x81\x83" + q[4:6] + b"\x00" * 6 + q[12:i + 5], a)
]=])
local RLOG = tmp .. "/resolver.log"
local RPORT = PORT + 1
do
  local out = tmp .. "/resolver.out"
  local p = proc.spawn({ "nsenter", HNS, "python3", RESOLVER, "198.18.0.8", tostring(RPORT), RLOG }, { stdout = out, stderr = out })
  s:defer(p.close, p, 0)
  for _ = 1, 100 do
    if fs.exists(out) and fs.read(out):find("ready", 1, true) then break end
    cork.sleep(0.05)
  end
end
local wr = world({ FAKE_SMOLVM_RESOLVER = "198.18.0.8:" .. RPORT })
wr.machine("r", { "--net", "--allow-cidr", "198.18.0.7/32" })
local rr = wr.exec("r", "nslookup leak-one.example 2>&1; nslookup api.test 2>&1").stdout
local seen = fs.exists(RLOG) and fs.read(RLOG) or ""
T.like(seen, "leak%-one%.example\n", "FAKE_SMOLVM_RESOLVER: a CIDR-only policy forwards the name there", rr)
T.like(seen, "api%.test\n", "FAKE_SMOLVM_RESOLVER wins over FAKE_SMOLVM_HOSTS for DNS")
T.like(rr, "can't find leak%-one%.example: NXDOMAIN", "and its answer is relayed to the guest")
wr.machine("rf", { "--net", "--allow-cidr", "198.18.0.7/32", "--allow-host", "198.18.0.7" })
wr.exec("rf", "nslookup leak-two.example 2>&1")
seen = fs.exists(RLOG) and fs.read(RLOG) or ""
T.unlike(seen, "leak%-two", "with the DNS filter on, nothing reaches it")

-- 6. nothing left: delete, stop, kill -9 of the gateway ---------------------------
w.sv("machine", "delete", "--name", "a", "-f")
T.ok(not ns_alive(ino), "delete: the guest's namespace is gone")
local gpid, _, gino = w.gw("g")
w.exec("g", "sleep 300 >/dev/null 2>&1 &")
T.is(w.sv("machine", "stop", "--name", "g").status, 0, "stop")
T.ok(not ns_alive(gino), "stop: the namespace is gone, with the process that ran in it")
-- (gone, or a zombie its new parent has not reaped yet)
local function running(pid)
  local ok, st = pcall(fs.read, "/proc/" .. pid .. "/stat")
  return ok and not st:match("^%d+ %b() Z")
end
T.ok(not running(gpid), "stop: the gateway is gone")
w.sv("machine", "start", "--name", "g")
T.ok(w.gw("g"), "start again: a new gateway")
local kpid, _, kino = w.gw("f")
proc.run({ "kill", "-9", kpid })
cork.sleep(0.2)
T.ok(not ns_alive(kino), "kill -9 of the gateway: its namespaces vanish with it")
r = w.exec("f", "true")
T.is(r.status, 1, "exec after the gateway died fails")
T.like(r.stderr, "machine 'f' is unreachable", "as unreachable")
T.is(w.sv("machine", "delete", "--name", "f", "-f").status, 0, "and delete still works")
for _, x in ipairs({ { w, { "g", "d", "l" } }, { ws, { "s" } }, { wp, { "p" } }, { wo, { "o" } }, { wr, { "r", "rf" } } }) do
  for _, m in ipairs(x[2]) do x[1].sv("machine", "delete", "--name", m, "-f") end
end
local left = 0
for _, x in ipairs({ w, ws, wp, wo, wr }) do left = left + gateways(x.st) end
T.is(left, 0, "no gateway process left")
T.is(host({ "iptables-save" }).stdout:gsub("#[^\n]*\n", ""), host_rules, "the host's firewall rules are as before")
T.is(host({ "ip", "-o", "link" }).stdout, host_links, "the host's interfaces are as before")
s:close()   -- T.done() exits: stop the servers and the host namespace's holder now
T.done()
