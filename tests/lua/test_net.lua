-- cork.net: loopback aliases, tested for real as root inside a fresh network
-- namespace (`unshare -n`), so the host's interfaces are never touched.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local proc = cork.proc

local function have(prog)
  local r = proc.run({ "sh", "-c", "command -v " .. prog })
  return r.status == 0
end

if os.getenv("CORK_TEST_IN_NETNS") ~= "1" then
  -- Outside the namespace: re-run this file inside a new one.
  local uid = proc.run({ "id", "-u" }).stdout:gsub("%s", "")
  if uid ~= "0" then
    -- On stderr too, so that prove shows it without -v.
    io.stderr:write("SKIP ****************************************************\n",
      "SKIP cork.net tests NOT RUN: they need root (they add addresses inside a\n",
      "SKIP fresh network namespace); running as uid " .. uid .. "\n",
      "SKIP ****************************************************\n")
    T.skip_all("cork.net tests need root for unshare -n")
  end
  if not have("unshare") then T.skip_all("cork.net tests need unshare (util-linux)") end
  local me = debug.getinfo(1, "S").source:gsub("^@", "")
  local r = proc.run({ "unshare", "-n", os.getenv("CORK_BIN"), "script", me },
    { env = { CORK_TEST_IN_NETNS = "1" }, timeout = 120 })
  io.stdout:write(r.stdout)
  io.stderr:write(r.stderr)
  os.exit(r.status == 0 and 0 or 1)
end

local net = require "cork.net"

-- A fresh namespace: lo exists, is down, and has no address.
T.is(net.default_iface, "lo", "default interface on Linux")
T.same(net.addresses("lo"), {}, "fresh namespace: lo has no IPv4 address")

-- Linux: the pool needs no alias, but 127.0.0.0/8 must be routed locally,
-- which it is not while lo is down.
local e = T.raises(function() net.ensure_pool() end, "not_local",
  "^127%.0%.0%.16 is not routed to this host %(is lo up%?%)$", "ensure_pool with lo down: not_local")

T.ok(have("ip"), "ip (iproute2) is present to bring lo up")
local up = proc.run({ "ip", "link", "set", "lo", "up" })
T.is(up.status, 0, "lo up (test setup, outside cork.net)")
T.same(net.addresses("lo"), { "127.0.0.1" }, "lo up: 127.0.0.1")

local pool = net.ensure_pool()
T.same(pool, { iface = "lo", first = "127.0.0.16", last = "127.0.0.31", added = {},
  platform = "linux", verified = true }, "ensure_pool: verified, nothing added")
T.same(net.addresses("lo"), { "127.0.0.1" }, "ensure_pool added nothing on Linux")
pool = net.ensure_pool { iface = "lo", first = "127.0.5.0", last = "127.0.5.255" }
T.is(pool.verified, true, "a larger pool elsewhere in 127/8 is local too")

-- add, list, idempotence
T.is(net.alias_add("lo", "127.0.0.16"), true, "alias_add returns true when it added")
T.same(net.addresses("lo"), { "127.0.0.1", "127.0.0.16" }, "the alias is listed")
local ipout = proc.run({ "ip", "-4", "-o", "addr", "show", "dev", "lo" }).stdout
T.like(ipout, "inet 127%.0%.0%.16/32 ", "the kernel shows it too (ip addr), as /32")
T.is(net.alias_add("lo", "127.0.0.16"), false, "adding twice is fine: false, nothing done")
T.same(net.addresses("lo"), { "127.0.0.1", "127.0.0.16" }, "no duplicate")
T.is(net.alias_add("lo", "127.0.0.1"), false, "an address lo already has (as /8) is not re-added")
T.is(net.alias_add("lo", "127.0.0.17"), true, "a second alias")
T.same(net.addresses("lo"), { "127.0.0.1", "127.0.0.16", "127.0.0.17" }, "both listed")

-- remove
T.is(net.alias_remove("lo", "127.0.0.16"), true, "alias_remove")
T.same(net.addresses("lo"), { "127.0.0.1", "127.0.0.17" }, "removed from the list")
e = T.raises(function() net.alias_remove("lo", "127.0.0.16") end, "not_assigned",
  "^127%.0%.0%.16 is not assigned to lo$", "removing a missing address: distinct kind not_assigned")
T.is(net.alias_remove("lo", "127.0.0.17"), true, "remove the second")
T.same(net.addresses("lo"), { "127.0.0.1" }, "back to the start")

-- bad input
T.raises(function() net.alias_add("lo", "127.0.0") end, "usage",
  "^alias_add: '127%.0%.0' is not an IPv4 address$", "not an IPv4 address (add)")
T.raises(function() net.alias_remove("lo", "::1") end, "usage",
  "^alias_remove: '::1' is not an IPv4 address$", "IPv6 is not IPv4 (remove)")
T.raises(function() net.alias_add("lo", "127.0.0.300") end, "usage", nil, "octet out of range")
T.raises(function() net.alias_add("nosuch0", "127.0.0.16") end, "not_found",
  "^no such network interface 'nosuch0'$", "no such interface (add)")
T.raises(function() net.alias_remove("nosuch0", "127.0.0.16") end, "not_found", nil,
  "no such interface (remove)")
T.raises(function() net.addresses("nosuch0") end, "not_found", nil, "no such interface (addresses)")
T.raises(function() net.ensure_pool { iface = "nosuch0" } end, "not_found", nil,
  "no such interface (ensure_pool)")
T.raises(function() net.addresses(string.rep("x", 40)) end, "usage", "^bad interface name",
  "an over-long interface name")
T.raises(function() net.ensure_pool { first = "127.0.0.31", last = "127.0.0.16" } end, "usage",
  "^ensure_pool: first 127%.0%.0%.31 is after last 127%.0%.0%.16$", "pool bounds reversed")
T.raises(function() net.ensure_pool { first = "10.0.0.1", last = "10.0.0.2" } end, "usage",
  "must lie in 127%.0%.0%.0/8", "a pool outside loopback")
T.raises(function() net.ensure_pool { frist = "127.0.0.1" } end, nil, "unknown option 'frist'",
  "unknown ensure_pool option names the key")
T.raises(function() net.alias_add("lo") end, nil, "bad argument #2", "missing ip is misuse")

-- Unprivileged: a clear permission error (CAP_NET_ADMIN), not a crash.
if have("setpriv") then
  local dir = cork.fs.tempdir("cork-net")
  proc.run({ "chmod", "755", dir }) -- tempdir is 0700; the script must be readable by nobody
  local f = dir .. "/unpriv.lua"
  cork.fs.write(f, [[
local net = require "cork.net"
local ok, e = pcall(net.alias_add, "lo", "127.0.0.18")
io.write(tostring(ok), " ", tostring(e.kind), " ", tostring(e.message), "\n")
]], { mode = 420 })
  local r = proc.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
    os.getenv("CORK_BIN"), "script", f })
  T.like(r.stdout, "^false permission adding 127%.0%.0%.18 on lo needs root %(CAP_NET_ADMIN%)",
    "unprivileged alias_add: kind permission")
  if r.stderr ~= "" then T.diag(r.stderr) end
  cork.fs.remove(dir, { recursive = true })
else
  T.skip("setpriv not installed", 1)
end
T.same(net.addresses("lo"), { "127.0.0.1" }, "nothing left behind")

T.done()
