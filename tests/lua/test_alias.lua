-- cork.alias (the 198.18.0.0/15 pool, the address on lo and its guard) and
-- cork.canary. The address and guard half runs in a network namespace of its
-- own (unshare -n), so nothing touches this host's lo or firewall.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local alias = require "cork.alias"
local canary = require "cork.canary"
local proc, fs = cork.proc, cork.fs

-- ---- the pool ----------------------------------------------------------------
local saved = os.getenv("CORK_ALIAS_POOL")
if not saved then
  T.same({ alias.pool() }, { "198.18.0.1", "198.19.255.254" }, "default pool: 198.18.0.0/15 without its ends")
end
T.same({ alias.pool("10.9.8.0/30") }, { "10.9.8.1", "10.9.8.2" }, "a CIDR: network and broadcast left out")
T.same({ alias.pool("198.18.7.16-198.18.7.31") }, { "198.18.7.16", "198.18.7.31" }, "FIRST-LAST")
T.same({ alias.pool("198.18.0.5/32") }, { "198.18.0.5", "198.18.0.5" }, "a /32 is one address")
T.raises(function() alias.pool("127.0.0.16-127.0.0.31") end, "usage", "is loopback: a virtio%-net guest dials",
  "a loopback pool is refused")
T.raises(function() alias.pool("nonsense") end, "usage", "expected A%.B%.C%.D/N or FIRST%-LAST", "a bad pool")
T.raises(function() alias.pool("198.18.0.9-198.18.0.1") end, "usage", "is empty", "an empty range")

-- ---- cork.canary ---------------------------------------------------------------
do
  local c <close> = canary.open({ addrs = { "127.0.0.1", "127.0.0.3" } })
  local port = c:port()
  T.ok(port > 0, "canary: a port on every address")
  T.same(c:addrs(), { "127.0.0.1", "127.0.0.3" }, "canary: its addresses")
  T.is((c:hits()), 0, "canary: nothing yet")
  proc.run({ "sh", "-c", "echo | timeout 1 busybox nc 127.0.0.3 " .. port })
  local n, by = c:hits()
  T.is(n, 1, "canary: one connection counted, without cork accepting it at the time")
  T.same(by, { ["127.0.0.1"] = 0, ["127.0.0.3"] = 1 }, "canary: per address")
  T.raises(function() canary.open({ addrs = { "198.51.100.77" } }) end, "io",
    "cannot listen on 198%.51%.100%.77", "canary: an address this host lacks is kind io")
  local ok, err = pcall(canary.open, { addrs = { "127.0.0.1", "198.51.100.77" } })
  T.is(not ok and err.addr, "198.51.100.77", "canary: the error names the address")
  T.raises(function() canary.open({ addrs = { "x" } }) end, "usage", "not an IPv4 address", "canary: bad address")
  c:close()
  T.is(tostring(c), "cork.canary.Canary(closed)", "canary: closed")
  T.ok(not pcall(c.port, c), "canary: a closed canary raises")
end

-- ---- the address and its guard, in a namespace of our own -------------------------
if proc.run({ "id", "-u" }).stdout ~= "0\n" or proc.run({ "sh", "-c", "command -v iptables && command -v unshare" }).status ~= 0 then
  T.skip("needs root, iptables and unshare", 1)
else
  local tmp = fs.tempdir("cork-alias")
  fs.write(tmp .. "/child.lua", [[
local alias = require "cork.alias"
local journal = require "cork.journal"
local json = require "cork.json"
local out = {}
local function rules() return alias.guards("t1") end
cork.fs.mkdir(journal.root(), 448)
cork.fs.mkdir(journal.path("t1"), 448)
local ip = alias.reserve({ docker = { containers = function() return {} end }, slug = "t1",
  first = "198.18.3.1", last = "198.18.3.9" })
out.ip = ip
alias.up(ip, "t1")
out.on_lo = table.concat(cork.net.addresses("lo"), ",")
out.rules = rules()
-- another process put the next address on lo: reserve skips it, up refuses it
cork.net.alias_add("lo", "198.18.3.2")
local ok, err = pcall(alias.up, "198.18.3.2", "t2")
out.exists_kind = not ok and err.kind
alias.down("198.18.3.2", "t2")
out.after_foreign_down = table.concat(cork.net.addresses("lo"), ",")
out.next = alias.reserve({ docker = { containers = function() return {} end }, slug = "t3",
  first = "198.18.3.1", last = "198.18.3.9" })
alias.down(ip, "t1")
alias.down(ip, "t1")   -- idempotent
out.after_down = table.concat(cork.net.addresses("lo"), ",")
out.rules_after = rules()
print(json.encode(out))
]])
  local r = proc.run({ "unshare", "-n", os.getenv("CORK_BIN"), "script", tmp .. "/child.lua" },
    { env = { XDG_STATE_HOME = tmp .. "/state", CORK_ALIAS_GUARD = false } })
  local ok, v = pcall(cork.json.decode, r.stdout)
  v = ok and v or {}
  T.is(r.status, 0, "in a namespace of its own: ran", r.stderr)
  T.is(v.ip, "198.18.3.1", "reserve: the lowest free address")
  T.like(v.on_lo or "", "198%.18%.3%.1", "up: the address is on lo")
  T.is(#(v.rules or {}), 1, "up: one guard rule")
  T.like((v.rules or {})[1] or "", '^%-A PREROUTING %-d 198%.18%.3%.1/32 ! %-i lo %-m conntrack ! %-%-ctstate RELATED,ESTABLISHED %-m comment %-%-comment "?cork%-guard:t1"? %-j DROP$',
    "the guard drops packets for the alias from any interface but lo")
  T.is(v.exists_kind, "exists", "up: an address another process put on lo is kind exists")
  T.like(v.after_foreign_down or "", "198%.18%.3%.2", "down: an address this bottle did not add stays")
  T.is(v.next, "198.18.3.3", "reserve: skips an address already on lo")
  T.unlike((v.after_down or "198.18.3.1") .. ",", "198%.18%.3%.1,", "down: the address is gone from lo")
  T.same(v.rules_after, {}, "down: the guard is gone")
  fs.remove(tmp, { recursive = true })
end
T.done()
