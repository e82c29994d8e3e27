-- cork.teardown: removing what a bottle owns, forgetting nothing until its
-- removal is confirmed.
--
-- The rules (issue 20):
--   * a journal line goes ("removed") only when the engine said the thing is
--     gone: removed now, or not found *and* not listed by name;
--   * a removal that could not be done (engine away, frozen, smolvm not
--     there) leaves the journal as it is, and the caller says how to finish:
--     `cork down SLUG` once the engine is back;
--   * cleanups keep to one time limit in total (CORK_CLEANUP_TIMEOUT
--     seconds, default 60), say what they are doing, and leave what the limit
--     did not reach to `cork down`.
-- cork.bottle.remove.* and cork.bottle.down are these functions (cork.bottle
-- re-exports them for recipes written against it).
local cork = require "cork"
local log = require "cork.log"
local journal = require "cork.journal"
local alias = require "cork.alias"

local M = {}

M.DEFAULT_TIMEOUT = 60

-- timeout() -> seconds: CORK_CLEANUP_TIMEOUT, or the default when unset
-- (a value that is not a positive number is refused, loudly, once).
local warned
function M.timeout()
  local v = os.getenv("CORK_CLEANUP_TIMEOUT")
  if not v or v == "" then return M.DEFAULT_TIMEOUT end
  local n = tonumber(v)
  if not n or n <= 0 or n ~= n or n == math.huge then
    if not warned then
      warned = true
      log.warn(("CORK_CLEANUP_TIMEOUT=%s is not a positive number of seconds: using %d")
        :format(v, M.DEFAULT_TIMEOUT))
    end
    return M.DEFAULT_TIMEOUT
  end
  return n
end

-- budget([total]) -> {deadline, total}: one time limit for a whole teardown.
function M.budget(total)
  total = total or M.timeout()
  return { total = total, deadline = cork.time() + total }
end

-- The budget a removal keeps to: `cork down`'s own, or (inside scope
-- cleanups) the launch's, started by its first removal.
local function budget_for(j, explicit)
  if explicit then return explicit end
  if not cork.core.in_cleanup() then return nil end
  if j then
    j.cleanup_budget = j.cleanup_budget or M.budget()
    return j.cleanup_budget
  end
  M.loose_budget = M.loose_budget or M.budget()
  return M.loose_budget
end

local function remaining(b) return b and (b.deadline - cork.time()) or nil end

local function out_of_time(b, what)
  if b and remaining(b) <= 0 then
    cork.error("timeout", ("%s left in place: the cleanup time limit (%g s, CORK_CLEANUP_TIMEOUT) is used up")
      :format(what, b.total), { cleanup_timeout = b.total })
  end
end

-- A journal line that cannot be written (a read-only or full state dir) does
-- not stop the removals: the resource is gone either way, and the journal
-- line that stays only makes the next `cork down` look again.
local function note_removed(j, kind, name)
  if not j then return end
  local ok, err = pcall(j.removed, j, kind, name)
  if not ok then
    if cork.is_error(err, "interrupted") then error(err, 0) end
    if not j.write_warned then
      j.write_warned = true
      log.warn(("cannot update the journal %s: %s"):format(j.path or "?",
        cork.is_error(err) and err.message or tostring(err)))
    end
  end
end

-- One DELETE bounded by the budget: true removed, false not found; raises
-- anything else (kind of the HTTP status, or the transport error's). nil
-- without a budget (the caller uses the plain binding).
local function delete(d, path, query, b)
  if not b then return nil end
  local t = math.max(0.2, remaining(b))
  local ok, err = pcall(d.request, d, "DELETE", path, { query = query, timeout = t })
  if ok then return true end
  if cork.is_error(err, "not_found") then return false end
  error(err, 0)
end

-- Is a container (or network) of that exact name or id still listed?
local function listed(d, kind, name)
  if kind == "container" then
    for _, f in ipairs({ "name", "id" }) do
      -- the filter matches parts of names: the exact name is checked below
      for _, c in ipairs(d:containers({ all = true, filters = { [f] = { name } } })) do
        for _, n in ipairs(c.Names or {}) do if n == "/" .. name then return true end end
        if c.Id == name then return true end
      end
    end
  else
    for _, f in ipairs({ "name", "id" }) do
      for _, n in ipairs(d:networks({ filters = { [f] = { name } } })) do
        if n.Name == name or n.Id == name then return true end
      end
    end
  end
  return false
end

-- remove(d, kind, name, b, cause) -> true (removed) | false (was not there)
local function remove_docker(d, kind, name, b, cause)
  local what = kind .. " " .. name
  out_of_time(b, what)
  local function once()
    local gone
    if kind == "container" then
      gone = delete(d, "/containers/" .. name, { force = "1", v = "1" }, b)
      if gone == nil then
        local ok, err = pcall(d.container_remove, d, name, { force = true })
        if ok then gone = true elseif cork.is_error(err, "not_found") then gone = false else error(err, 0) end
      end
    else
      gone = delete(d, "/networks/" .. name, nil, b)
      if gone == nil then
        local ok, err = pcall(d.network_remove, d, name)
        if ok then gone = true elseif cork.is_error(err, "not_found") then gone = false else error(err, 0) end
      end
    end
    return gone
  end
  local t0 = cork.time()
  local removed
  while true do
    local ok, res = pcall(once)
    if ok then removed = res; break end
    -- another remover at work (`cork down` beside a launch's own unwind):
    -- wait for it to finish rather than fail
    if cork.is_error(res, "conflict") and (res.message or ""):find("in progress", 1, true)
      and cork.time() - t0 < (remaining(b) or 30) then
      cork.sleep(0.2)
    else
      error(res, 0)
    end
  end
  if removed then return true end
  -- "not found" is only believed once the engine's own listing agrees; after
  -- a create the engine may still be finishing (cause.uncertain), look again
  -- a moment later
  local looks = (type(cause) == "table" and cause.uncertain) and 3 or 1
  for i = 1, looks do
    if listed(d, kind, name) then
      if i == looks then return remove_docker(d, kind, name, b) end
    end
    if i < looks then cork.sleep(1) end
  end
  return false
end

local function say(kind, name)
  if cork.core.in_cleanup() then log.info(("cleanup: removing %s %s"):format(kind, name)) end
end

M.remove = {}

-- remove.container(d, name[, j[, cause]]) -> true removed | false was not there
function M.remove.container(d, name, j, cause, b)
  log.debug(("removing container %s"):format(name))
  say("container", name)
  local r = remove_docker(d, "container", name, budget_for(j, b), cause)
  note_removed(j, "container", name)
  return r
end

function M.remove.network(d, name, j, cause, b)
  log.debug(("removing network %s"):format(name))
  say("network", name)
  local r = remove_docker(d, "network", name, budget_for(j, b), cause)
  note_removed(j, "network", name)
  return r
end

function M.remove.volume(d, name, j, cause, b)
  b = budget_for(j, b)
  out_of_time(b, "volume " .. name)
  say("volume", name)
  local ok, err = pcall(d.request, d, "DELETE", "/volumes/" .. name,
    { query = { force = "1" }, timeout = b and math.max(0.2, remaining(b)) or nil })
  if not ok and not cork.is_error(err, "not_found") then error(err, 0) end
  note_removed(j, "volume", name)
  return ok
end

function M.remove.vm(smol, name, j, cause, b)
  b = budget_for(j, b)
  log.debug(("removing VM %s"):format(name))
  out_of_time(b, "VM " .. name)
  say("VM", name)
  local o = b and { timeout = math.max(1, remaining(b)) } or nil
  local ok, err = pcall(smol.delete, smol, name, o)
  local removed = ok
  if not ok then
    -- a machine that no longer exists is gone, whatever smolvm called it
    local okls, entry = pcall(smol.status, smol, name)
    if not okls or entry ~= nil then error(err, 0) end
  end
  note_removed(j, "vm", name)
  return removed
end

-- the address off lo, its guard, then the reservation
function M.remove.alias(ip, slug, j)
  log.debug(("removing alias %s"):format(ip))
  alias.down(ip, slug)
  alias.release(ip, slug)
  note_removed(j, "alias", ip)
  return true
end

-- ---- the whole bottle (cork down, cork gc) --------------------------------

local function msg_of(e) return cork.is_error(e) and e.message or tostring(e) end

-- Is pid alive (a zombie, exited but not yet reaped by its parent, is not)?
local function alive(pid)
  if not cork.core.pid_alive(pid) then return false end
  local ok, stat = pcall(cork.fs.read, "/proc/" .. pid .. "/stat")
  if ok and stat:match("^%d+ %b() (%a)") == "Z" then return false end
  return true
end
M.alive = alive

-- Ask a live launch to unwind itself, and wait for it: its own cleanup
-- removes what it made; racing it would only trade 409s.
local function stop_owner(st, slug, o)
  local pid = math.tointeger(st.pid)
  if not pid or pid <= 1 then return end
  log.info(("asking cork process %d to stop bottle %s..."):format(pid, slug))
  local r = cork.proc.run({ "kill", "-TERM", tostring(pid) })
  if r.status ~= 0 and alive(pid) then
    cork.error("cleanup", ("%s: cannot signal cork process %d: %s"):format(slug, pid,
      (r.stderr or ""):match("[^\n]*")), { pid = pid })
  end
  local wait = o.wait or (M.timeout() + 30)
  local t0 = cork.time()
  while alive(pid) and cork.time() - t0 < wait do cork.sleep(0.1) end
  if alive(pid) then
    cork.error("timeout", ("%s: cork process %d is still unwinding after %g s; nothing was touched "
      .. "(run `cork down %s` again later)"):format(slug, pid, wait, slug), { pid = pid })
  end
  log.info(("cork process %d has ended"):format(pid))
end

-- down(slug, {docker=, smolvm=, wait=, smolvm_why=}) -> removed, report:
--   removed: the list of what was removed ("container x", ...);
--   { removed = {"container x", ...}, already_gone = {...}, left = {...},
--     journal = true|false (there was one) }
-- Uses the journal, then Docker's labels (containers, networks, volumes) and
-- smolvm's list (by name, and by label where the dialect has labels) for
-- anything the journal missed. Raises (kind "not_found") when nothing of the
-- slug exists at all, and (kind "cleanup", or "unavailable" when an engine
-- was not reachable) when anything is left: the journal then stays.
function M.down(slug, o)
  o = o or {}
  local st = journal.read(slug)
  local stopped
  if st and st.owner_alive and math.tointeger(st.pid) ~= cork.core.pid() then
    stop_owner(st, slug, o)
    stopped = math.tointeger(st.pid)
    st = journal.read(slug)
  end
  -- lists stay lists in JSON even when empty ("removed": [], never {})
  local array = require("cork.json").array
  local rep = { removed = array(), already_gone = array(), left = array(), journal = st ~= nil, stopped = stopped }
  local j = st and journal.attach(slug)
  local d = o.docker
  -- smolvm may be a function returning the driver (or nil): it is called
  -- only when this bottle can have a VM, so a docker bottle's teardown runs
  -- no smolvm
  local smol_probed, smol_v
  local function smolvm_of()
    if not smol_probed then
      smol_probed = true
      if type(o.smolvm) == "function" then smol_v = o.smolvm() else smol_v = o.smolvm end
    end
    return smol_v
  end
  local b = M.budget()
  local unreachable = false
  local function try(kind, name, fn)
    local ok, res = pcall(fn)
    if ok then
      local list = res == false and rep.already_gone or rep.removed
      list[#list + 1] = kind .. " " .. name
    else
      if cork.is_error(res, "interrupted") then error(res, 0) end
      if cork.is_error(res, "unavailable") or cork.is_error(res, "timeout") then unreachable = true end
      rep.left[#rep.left + 1] = ("%s %s (%s)"):format(kind, name, msg_of(res))
    end
  end
  local function missing(kind, name, why)
    rep.left[#rep.left + 1] = ("%s %s (%s)"):format(kind, name, why)
    unreachable = true
  end
  local resources = st and st.resources or {}
  local done_names = {}
  -- reverse creation order: agent and bundle containers, VM, networks, alias
  for i = #resources, 1, -1 do
    local r = resources[i]
    done_names[r.kind .. "\0" .. r.name] = true
    if r.kind == "container" or r.kind == "network" or r.kind == "volume" then
      if d then try(r.kind, r.name, function() return M.remove[r.kind](d, r.name, j, nil, b) end)
      else missing(r.kind, r.name, "Docker is not reachable") end
    elseif r.kind == "vm" then
      local smol = smolvm_of()
      if smol then try("vm", r.name, function() return M.remove.vm(smol, r.name, j, nil, b) end)
      else
        local why = o.smolvm_why
        if type(why) == "function" then why = why() end
        missing("vm", r.name, why or "smolvm is not available (is CORK_SMOLVM set?)")
      end
    elseif r.kind == "alias" then
      try("alias", r.name, function() return M.remove.alias(r.name, slug, j) end)
    end
  end
  -- anything labelled with the slug that the journal did not know about
  local found_labelled = 0
  if d then
    local filters = { label = { "cork.slug=" .. slug } }
    local okl, err = pcall(function()
      for _, c in ipairs(d:containers({ all = true, filters = filters })) do
        local name = ((c.Names or {})[1] or c.Id):gsub("^/", "")
        if not done_names["container\0" .. name] then
          found_labelled = found_labelled + 1
          try("container", name, function() return M.remove.container(d, c.Id, nil, nil, b) end)
        end
      end
      for _, n in ipairs(d:networks({ filters = filters })) do
        local name = n.Name or n.Id
        if not done_names["network\0" .. name] then
          found_labelled = found_labelled + 1
          try("network", name, function() return M.remove.network(d, n.Id, nil, nil, b) end)
        end
      end
      for _, v in ipairs(M.volumes(d, filters)) do
        if not done_names["volume\0" .. v.Name] then
          found_labelled = found_labelled + 1
          try("volume", v.Name, function() return M.remove.volume(d, v.Name, nil, nil, b) end)
        end
      end
    end)
    if not okl then
      if cork.is_error(err, "interrupted") then error(err, 0) end
      unreachable = true
      rep.left[#rep.left + 1] = ("labelled resources (%s)"):format(msg_of(err))
    end
  end
  -- VMs the journal did not know about: not for a docker bottle (that
  -- recipe makes none), nor when the journal's own VM was just removed
  local vm_done = false
  for _, x in ipairs(rep.removed) do if x == "vm cork-" .. slug then vm_done = true end end
  local smol = not vm_done and not (st and st.backend == "docker") and smolvm_of() or nil
  if smol then
    local okl, list = pcall(smol.ls, smol)
    if okl then
      for _, m in ipairs(list) do
        local lbl = type(m.labels) == "table" and m.labels["cork.slug"]
        if type(m.name) == "string" and (m.name == "cork-" .. slug or lbl == slug)
          and not done_names["vm\0" .. m.name] then
          found_labelled = found_labelled + 1
          try("vm", m.name, function() return M.remove.vm(smol, m.name, nil, nil, b) end)
        end
      end
    elseif #resources > 0 or not st then
      rep.left[#rep.left + 1] = ("VMs (smolvm machine ls failed: %s)"):format(msg_of(list))
      unreachable = true
    end
  end
  -- a guard rule of the slug's that the journal did not know about: not for
  -- a docker bottle (that recipe adds no address, so no guard either)
  local guards = not (st and st.backend == "docker") and alias.guards(slug) or {}
  if #guards > 0 then
    found_labelled = found_labelled + 1
    try("guard", ("(%d rules)"):format(#guards), function() alias.unguard(nil, slug); return true end)
  end
  if not st and not stopped and found_labelled == 0 and #rep.left == 0 then
    if d then
      cork.error("not_found", ("no bottle %s: no journal, and nothing labelled cork.slug=%s (see `cork ls`)")
        :format(slug, slug), { slug = slug })
    end
    cork.error("unavailable", ("no journal for %s, and Docker is not reachable to look for what is labelled "
      .. "cork.slug=%s: run `cork down %s` once the engine is back"):format(slug, slug, slug), { slug = slug })
  end
  if #rep.left > 0 then
    local e = cork.core.new_error(unreachable and "unavailable" or "cleanup",
      ("%s: left in place: %s; %s"):format(slug, table.concat(rep.left, "; "),
        st and ("the journal is kept: run `cork down %s` once the engine is back"):format(slug)
          or ("run `cork down %s` once the engine is back"):format(slug)),
      { slug = slug, left = rep.left, removed = rep.removed })
    error(e, 0)
  end
  if st then
    local ok, err = pcall(journal.finish, slug, { force = true })
    if not ok then
      cork.error(cork.is_error(err) and err.kind or "io", ("%s: everything is removed, but the state dir %s "
        .. "could not be: %s"):format(slug, journal.dir(slug), msg_of(err)), { slug = slug })
    end
  end
  return rep.removed, rep
end

-- Labelled volumes (the Engine API through request: cork.docker has no
-- volume functions).
function M.volumes(d, filters)
  local r = d:request("GET", "/volumes", { query = { filters = filters } })
  if not r or r.status ~= 200 or type(r.body) ~= "table" then return {} end
  return r.body.Volumes or {}
end

return M
