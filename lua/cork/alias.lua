-- cork.alias: the bottle address pool (198.18.0.0/15 by default).
--
-- Each smolmachines bottle gets one host-local address of its own (its
-- alias): its bundle's agent-facing ports are published on it, and the VM's
-- egress allowlist is exactly that address. Under smolvm's virtio-net
-- backend the guest's 127.0.0.0/8 is its own loopback and any other address
-- is dialled from the host as it is, so the alias comes from a non-loopback
-- range (RFC 2544's benchmarking range: never routed on the internet, not in
-- smolvm's strict floor), added to the host's `lo` while the bottle runs.
-- The pool is CORK_ALIAS_POOL (a CIDR, or FIRST-LAST), else 198.18.0.0/15.
--
-- Linux accepts a packet for any local address on any interface, so an
-- address on `lo` is reachable from the LAN: each alias gets a guard, an
-- iptables rule (mangle PREROUTING) that drops packets for it arriving on
-- any interface other than `lo`, unless they belong to a connection this
-- host opened, added before the address and removed after it.
-- On macOS cork adds the alias to lo0 and the pf guard is the operator's
-- (docs/security.md).
--
-- Docker is the source of truth for what is in use (the HostIp of every
-- running bundle's published ports); a reservation file per address covers
-- the window between choosing an address and the bundle container existing.
-- Choosing happens under a lock, so concurrent launches never get the same
-- address.
local cork = require "cork"
local fs = require "cork.fs"
local journal = require "cork.journal"

local M = {}

M.POOL = "198.18.0.0/15"
M.IFACE = require("cork.net").default_iface

local function ip2n(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then cork.error("usage", ("not an IPv4 address: %s"):format(tostring(ip))) end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

local function n2ip(n)
  return ("%d.%d.%d.%d"):format(n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)
end

-- pool([spec]) -> first, last (dotted). spec: "A.B.C.D/N" (its network and
-- broadcast addresses left out) or "FIRST-LAST"; default CORK_ALIAS_POOL,
-- else M.POOL. Loopback (127.0.0.0/8) is refused: a virtio-net guest's
-- 127/8 is its own.
function M.pool(spec)
  spec = spec or os.getenv("CORK_ALIAS_POOL")
  if not spec or spec == "" then spec = M.POOL end
  local first, last
  local a, b = spec:match("^%s*([%d%.]+)%s*%-%s*([%d%.]+)%s*$")
  if a then
    first, last = ip2n(a), ip2n(b)
  else
    local base, bits = spec:match("^%s*([%d%.]+)/(%d+)%s*$")
    bits = tonumber(bits)
    if not base or bits > 32 then
      cork.error("usage", ("alias pool '%s': expected A.B.C.D/N or FIRST-LAST (CORK_ALIAS_POOL)"):format(spec))
    end
    local size = 1 << (32 - bits)
    local net = ip2n(base) & ~(size - 1) & 0xffffffff
    first, last = net, net + size - 1
    if size > 2 then first, last = first + 1, last - 1 end
  end
  if first > last then
    cork.error("usage", ("alias pool '%s' is empty"):format(spec))
  end
  if first >> 24 == 127 or last >> 24 == 127 then
    cork.error("usage", ("alias pool '%s' is loopback: a virtio-net guest dials 127.0.0.0/8 on its own "
      .. "loopback, never the host (use a range such as 198.18.0.0/15)"):format(spec))
  end
  return n2ip(first), n2ip(last)
end

local function res_dir() return journal.root() .. "/aliases" end

-- Addresses used as HostIp by running cork bundles, per Docker.
function M.in_use(docker)
  local used = {}
  local list = docker:containers({ filters = { label = { "cork.role=bundle" } } })
  for _, c in ipairs(list) do
    for _, p in ipairs(c.Ports or {}) do
      if p.IP and p.IP ~= "" then used[p.IP] = c.Labels and c.Labels["cork.slug"] or true end
    end
  end
  return used
end

-- A reservation is live while its bottle's journal exists (a bottle that
-- was torn down, or never got past its first step, frees its address).
local function reservations()
  local out, dir = {}, res_dir()
  if not fs.exists(dir) then return out end
  for _, ip in ipairs(fs.list(dir)) do
    -- (only addresses: IP.tmp.XXXXXX is another launch's write in progress)
    if ip:match("^%d+%.%d+%.%d+%.%d+$") then
      local ok, text = pcall(fs.read, dir .. "/" .. ip)
      local slug = ok and text:match("^(%S+)") or nil
      if slug and fs.exists(journal.path(slug)) then out[ip] = slug
      elseif ok then fs.remove(dir .. "/" .. ip, { missing_ok = true }) end
    end
  end
  return out
end

-- reserve{docker, slug, first, last} -> ip (first/last default: M.pool()).
-- Kind "pool_exhausted" when all addresses are taken.
function M.reserve(o)
  local pf, pl
  if not (o.first and o.last) then pf, pl = M.pool() end
  local first, last = ip2n(o.first or pf), ip2n(o.last or pl)
  fs.mkdir(journal.root(), 448)
  fs.mkdir(res_dir(), 448)
  local lk <close> = fs.lock(journal.root() .. "/aliases.lock", { timeout = 60 })
  local used = M.in_use(o.docker)
  for ip, slug in pairs(reservations()) do used[ip] = used[ip] or slug end
  -- an address already on lo is someone else's (another user's cork, another
  -- engine): never share it
  local okl, onlo = pcall(require("cork.net").addresses, M.IFACE)
  for _, ip in ipairs(okl and onlo or {}) do used[ip] = used[ip] or true end
  for n = first, last do
    local ip = n2ip(n)
    if not used[ip] then
      fs.write(res_dir() .. "/" .. ip, o.slug .. "\n", { mode = 384 })
      return ip
    end
  end
  cork.error("pool_exhausted", ("alias pool %s-%s exhausted: %d bottles hold every address "
    .. "(see `cork ls`; end one with `cork down SLUG`)"):format(n2ip(first), n2ip(last), last - first + 1),
    { first = n2ip(first), last = n2ip(last) })
end

-- ---- the address on lo and its guard ------------------------------------------

local function guard_comment(slug) return "cork-guard:" .. slug end

local function iptables(args)
  local argv = { "iptables", "-w", "5" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local ok, r = pcall(cork.proc.run, argv, { timeout = 30 })
  if not ok then
    if cork.is_error(r, "not_found") then
      cork.error("unprotected", "cannot guard the bottle's address: iptables is not installed (cork drops "
        .. "packets for the alias that arrive on any interface other than lo; install iptables, or set "
        .. "CORK_ALIAS_GUARD=off if this host is guarded otherwise)")
    end
    error(r, 0)
  end
  return r
end

-- The guard lives in mangle, after conntrack: an engine with iptables on
-- DNATs the host's own connection to alias:P (the VM's, relayed by smolvm)
-- to the bundle's container, that connection keeps the alias as its source,
-- and the bundle's replies come back on the bridge. A guard in raw (before
-- conntrack) dropped them and every launch failed closed; here only what
-- is not part of a connection this host opened is dropped.
local GUARD_TABLE = "mangle"
local function guard_spec(ip, slug)
  return { "PREROUTING", "-d", ip .. "/32", "!", "-i", M.IFACE, "-m", "conntrack", "!", "--ctstate",
    "ESTABLISHED,RELATED", "-m", "comment", "--comment", guard_comment(slug), "-j", "DROP" }
end

local function guard_wanted()
  return M.IFACE == "lo" and os.getenv("CORK_ALIAS_GUARD") ~= "off"
end

-- guard(ip, slug): drop packets for ip that arrive on any interface but lo.
-- Kind "unprotected" when the rule cannot be added.
function M.guard(ip, slug)
  ip2n(ip)
  if not guard_wanted() then return false end
  local a = { "-t", GUARD_TABLE, "-I" }
  for _, x in ipairs(guard_spec(ip, slug)) do a[#a + 1] = x end
  local r = iptables(a)
  if r.status ~= 0 then
    cork.error("unprotected", ("cannot guard the bottle's address %s: iptables: %s"):format(ip,
      (r.stderr or ""):match("[^\n]*")), { alias = ip, stderr = r.stderr })
  end
  return true
end

-- guards(slug) -> the rules (iptables -S lines) that guard slug's aliases
function M.guards(slug)
  local out = {}
  if M.IFACE ~= "lo" then return out end
  local ok, r = pcall(iptables, { "-t", GUARD_TABLE, "-S", "PREROUTING" })
  if not ok or r.status ~= 0 then return out end
  for line in r.stdout:gmatch("[^\n]+") do
    local c = line:match('%-%-comment "?([^%s"]+)')
    if c == guard_comment(slug) then out[#out + 1] = line end
  end
  return out
end

-- unguard(ip, slug): remove slug's guard rules (idempotent; every rule of the
-- slug, so a guard whose address the journal never learnt goes too)
function M.unguard(ip, slug)
  if M.IFACE ~= "lo" then return end
  for _, line in ipairs(M.guards(slug)) do
    local a = { "-t", GUARD_TABLE, "-D" }
    for _, x in ipairs(guard_spec(line:match("%-d ([%d%.]+)/") or ip, slug)) do a[#a + 1] = x end
    iptables(a)
  end
end

-- up(ip, slug): the guard, then the address on lo (macOS: lo0, no guard)
-- (the reservation file says "up" from just before the address is added, so
-- that down() removes an address from lo only when this bottle added it)
function M.up(ip, slug)
  M.guard(ip, slug)
  local path = res_dir() .. "/" .. ip
  do
    local lk <close> = fs.lock(journal.root() .. "/aliases.lock", { timeout = 60 })
    fs.write(path, slug .. "\nup\n", { mode = 384 })
  end
  if not require("cork.net").alias_add(M.IFACE, ip) then
    local lk <close> = fs.lock(journal.root() .. "/aliases.lock", { timeout = 60 })
    fs.write(path, slug .. "\n", { mode = 384 })
    cork.error("exists", ("address %s is already on %s: another process took it between reserving and adding "
      .. "it; launch again"):format(ip, M.IFACE), { alias = ip })
  end
end

-- down(ip, slug): the address off lo, then its guard (idempotent)
function M.down(ip, slug)
  local path = res_dir() .. "/" .. ip
  local mine = fs.exists(path) and fs.read(path) == slug .. "\nup\n"
  if mine then
    local ok, err = pcall(require("cork.net").alias_remove, M.IFACE, ip)
    if not ok and not cork.is_error(err, "not_assigned") and not cork.is_error(err, "not_found") then
      error(err, 0)
    end
  end
  M.unguard(ip, slug)
end

-- release(ip, slug): drop the reservation (only when slug holds it).
function M.release(ip, slug)
  local path = res_dir() .. "/" .. ip
  if fs.exists(path) and (fs.read(path):match("^(%S+)")) == slug then
    fs.remove(path, { missing_ok = true })
  end
end

return M
