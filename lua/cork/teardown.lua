-- cork.teardown: removing what a launch made, idempotently: each kind of
-- resource (the scope's cleanups and `cork down` use the same functions),
-- and a whole bottle (cork down).
local cork = require "cork"
local log = require "cork.log"
local journal = require "cork.journal"
local alias = require "cork.alias"

local M = {}

-- ---- removing resources (idempotent) ---------------------------------------

local function gone_ok(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok or cork.is_error(err, "not_found") then return true end
  error(err, 0)
end

M.remove = {}

function M.remove.container(d, name, j)
  log.debug(("removing container %s"):format(name))
  gone_ok(d.container_remove, d, name, { force = true })
  if j then j:removed("container", name) end
end

function M.remove.network(d, name, j)
  log.debug(("removing network %s"):format(name))
  gone_ok(d.network_remove, d, name)
  if j then j:removed("network", name) end
end

function M.remove.vm(smol, name, j)
  log.debug(("removing VM %s"):format(name))
  local ok, err = pcall(smol.delete, smol, name)
  if not ok and not cork.is_error(err, "not_found") then
    -- a machine that no longer exists is gone, whatever smolvm called it
    local okls, entry = pcall(smol.status, smol, name)
    if not okls or entry ~= nil then error(err, 0) end
  end
  if j then j:removed("vm", name) end
end

-- the address off lo, its guard, then the reservation
function M.remove.alias(ip, slug, j)
  log.debug(("removing alias %s"):format(ip))
  alias.down(ip, slug)
  alias.release(ip, slug)
  if j then j:removed("alias", ip) end
end

-- ---- teardown of a whole bottle (cork down) -------------------------------

-- down(slug, {docker=, smolvm=, wait=}) -> list of what was removed.
-- Uses the journal, then Docker's labels and smolvm's list for anything the
-- journal missed. Safe on half-built bottles; idempotent.
function M.down(slug, o)
  o = o or {}
  local st = journal.read(slug)
  local done = {}
  if st and st.owner_alive and st.pid ~= cork.core.pid() then
    -- a run is in progress: ask it to unwind its own scope first
    log.info(("asking cork process %d to stop bottle %s"):format(st.pid, slug))
    cork.proc.run({ "kill", "-TERM", tostring(st.pid) })
    local t0 = cork.time()
    while cork.core.pid_alive(st.pid) and cork.time() - t0 < (o.wait or 30) do cork.sleep(0.1) end
    st = journal.read(slug)
  end
  local j = journal.attach(slug)
  local d = o.docker
  local smol = o.smolvm
  local resources = st and st.resources or {}
  -- reverse creation order: agent and bundle containers, VM, networks, alias
  for i = #resources, 1, -1 do
    local r = resources[i]
    if r.kind == "container" then
      if d then M.remove.container(d, r.name, j); done[#done + 1] = "container " .. r.name end
    elseif r.kind == "vm" then
      if smol then M.remove.vm(smol, r.name, j); done[#done + 1] = "vm " .. r.name end
    elseif r.kind == "network" then
      if d then M.remove.network(d, r.name, j); done[#done + 1] = "network " .. r.name end
    elseif r.kind == "alias" then
      M.remove.alias(r.name, slug, j); done[#done + 1] = "alias " .. r.name
    end
  end
  -- anything labelled with the slug that the journal did not know about
  if d then
    for _, c in ipairs(d:containers({ all = true, filters = { label = { "cork.slug=" .. slug } } })) do
      M.remove.container(d, c.Id); done[#done + 1] = "container " .. ((c.Names or {})[1] or c.Id)
    end
    for _, n in ipairs(d:networks({ filters = { label = { "cork.slug=" .. slug } } })) do
      M.remove.network(d, n.Id); done[#done + 1] = "network " .. (n.Name or n.Id)
    end
  end
  if smol then
    local ok, entry = pcall(smol.status, smol, "cork-" .. slug)
    if ok and entry then M.remove.vm(smol, "cork-" .. slug); done[#done + 1] = "vm cork-" .. slug end
  end
  -- a guard rule of the slug's that the journal did not know about
  local guards = alias.guards(slug)
  if #guards > 0 then alias.unguard(nil, slug); done[#done + 1] = ("guard (%d rules)"):format(#guards) end
  journal.finish(slug)
  return done
end

return M
