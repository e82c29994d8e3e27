-- cork.alias: the loopback alias pool (127.0.0.16-127.0.0.31 by default).
--
-- Each smolmachines bottle gets one loopback address of its own: its bundle's
-- agent-facing ports are published on it, and the VM's egress allowlist is
-- exactly that address. Docker is the source of truth for what is in use
-- (the HostIp of every running bundle's published ports); a reservation file
-- per address covers the window between choosing an address and the bundle
-- container existing. Choosing happens under a lock, so concurrent launches
-- never get the same address.
local cork = require "cork"
local fs = require "cork.fs"
local journal = require "cork.journal"

local M = {}

M.FIRST, M.LAST = "127.0.0.16", "127.0.0.31"

local function ip2n(ip)
  local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then cork.error("usage", ("not an IPv4 address: %s"):format(tostring(ip))) end
  return ((tonumber(a) * 256 + tonumber(b)) * 256 + tonumber(c)) * 256 + tonumber(d)
end

local function n2ip(n)
  return ("%d.%d.%d.%d"):format(n >> 24 & 255, n >> 16 & 255, n >> 8 & 255, n & 255)
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
    local slug = (fs.read(dir .. "/" .. ip):match("^(%S+)"))
    if slug and fs.exists(journal.path(slug)) then out[ip] = slug
    else fs.remove(dir .. "/" .. ip, { missing_ok = true }) end
  end
  return out
end

-- reserve{docker, slug, first, last} -> ip. Kind "pool_exhausted" when all
-- addresses are taken.
function M.reserve(o)
  local first, last = ip2n(o.first or M.FIRST), ip2n(o.last or M.LAST)
  fs.mkdir(journal.root(), 448)
  fs.mkdir(res_dir(), 448)
  local lk <close> = fs.lock(journal.root() .. "/aliases.lock", { timeout = 60 })
  local used = M.in_use(o.docker)
  for ip, slug in pairs(reservations()) do used[ip] = used[ip] or slug end
  for n = first, last do
    local ip = n2ip(n)
    if not used[ip] then
      fs.write(res_dir() .. "/" .. ip, o.slug .. "\n", { mode = 384 })
      return ip
    end
  end
  cork.error("pool_exhausted", ("loopback alias pool %s-%s exhausted: %d bottles hold every address "
    .. "(see `cork ls`; end one with `cork down SLUG`)"):format(n2ip(first), n2ip(last), last - first + 1),
    { first = n2ip(first), last = n2ip(last) })
end

-- release(ip, slug): drop the reservation (only when slug holds it).
function M.release(ip, slug)
  local path = res_dir() .. "/" .. ip
  if fs.exists(path) and (fs.read(path):match("^(%S+)")) == slug then
    fs.remove(path, { missing_ok = true })
  end
end

return M
