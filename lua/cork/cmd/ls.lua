-- cork ls [--json]: the bottles there are, from Docker's labels, smolvm's
-- machine list and the journals under the state dir.
local cork = require "cork"
local args = require "cork.args"
local journal = require "cork.journal"
local down = require "cork.cmd.down"

local M = {}
M.help = [[
usage: cork ls

Lists bottles: slug, backend, loopback alias, age, status, the VM's state
and the published ports.

  status   running, partial, starting, or stale (a journal whose cork
           process is gone and nothing runs); a `cork run prepare` at work
           is backend prepare, status preparing
  VM       the machine's state as `smolvm machine ls` reports it
           (smolmachines bottles; "missing" when smolvm does not list it)

With the global --json, one `bottle` event per bottle.]]

local function age(ts)
  if not ts then return "?" end
  local s = math.floor(os.time() - ts)
  if s < 120 then return s .. "s" end
  if s < 7200 then return (s // 60) .. "m" end
  if s < 172800 then return (s // 3600) .. "h" end
  return (s // 86400) .. "d"
end

-- One `smolvm machine ls` for all rows: name -> entry (nil when smolvm is
-- not there or the call failed: the VM column then says "?").
local function machines(smol)
  if not smol then return nil end
  local ok, list = pcall(smol.ls, smol)
  if not ok then
    cork.log.warn(("smolvm machine ls failed: %s"):format(cork.is_error(list) and list.message or tostring(list)))
    return nil
  end
  local by = {}
  for _, m in ipairs(list) do if type(m.name) == "string" then by[m.name] = m end end
  return by
end

-- Every bottle from one Docker listing, one smolvm listing and the journals.
function M.collect()
  local d, smol = down.clients()
  local vms = machines(smol)
  local seen, slugs, by_slug = {}, {}, {}
  local function add(slug)
    if slug and not seen[slug] then seen[slug] = true; slugs[#slugs + 1] = slug; by_slug[slug] = {} end
  end
  for _, slug in ipairs(journal.slugs()) do add(slug) end
  if d then
    for _, c in ipairs(d:containers({ all = true, filters = { label = { "cork.slug" } } })) do
      local slug = c.Labels and c.Labels["cork.slug"]
      add(slug)
      if slug then table.insert(by_slug[slug], c) end
    end
  end
  for name in pairs(vms or {}) do add(name:match("^cork%-(.+)$")) end
  table.sort(slugs)
  local rows = {}
  for _, slug in ipairs(slugs) do
    local st = journal.read(slug) or { meta = {}, resources = {} }
    local row = { slug = slug, backend = st.backend or "?", alias = st.meta.alias, ports = st.meta.ports,
      started = st.started, pid = st.pid, detached = st.detached or false, containers = {}, vm = nil }
    local running = 0
    for _, c in ipairs(by_slug[slug]) do
      row.containers[#row.containers + 1] = { name = (c.Names or {})[1], state = c.State }
      if c.State == "running" then running = running + 1 end
      if row.backend == "?" and c.Labels and c.Labels["cork.role"] == "agent" then row.backend = "docker" end
    end
    local m = vms and vms["cork-" .. slug]
    if m then
      row.vm = { name = m.name, state = m.state }
      if row.backend == "?" then row.backend = "smolmachines" end
      if m.state == "running" then running = running + 1 end
    elseif row.backend == "smolmachines" then
      -- the VM's state as smolvm reports it: gone, or unknown without smolvm
      row.vm = { name = "cork-" .. slug, state = vms and "missing" or "unknown" }
    end
    -- both backends run two things: the bundle, and the agent's container or
    -- VM; `cork run prepare` (backend "prepare") is at work or was killed
    if row.backend == "prepare" then row.status = st.owner_alive and "preparing" or "stale"
    elseif running >= 2 then row.status = "running"
    elseif running > 0 then row.status = "partial"
    elseif st.owner_alive then row.status = "starting"
    else row.status = "stale" end
    row.age = age(row.started)
    rows[#rows + 1] = row
  end
  return rows
end

function M.main(argv)
  args.parse(argv, {}, { usage = "cork ls" })
  local rows = M.collect()
  if cork.core.settings().json then
    for _, r in ipairs(rows) do cork.log.event("bottle", r) end
    return 0
  end
  if #rows == 0 then print("no bottles"); return 0 end
  local fmt = "%-28s %-13s %-12s %-6s %-9s %-9s %s"
  print(fmt:format("SLUG", "BACKEND", "ALIAS", "AGE", "STATUS", "VM", "PORTS"))
  for _, r in ipairs(rows) do
    local ports = {}
    for k, v in pairs(r.ports or {}) do
      ports[#ports + 1] = k .. "=" .. (math.tointeger(v) and ("%d"):format(math.tointeger(v)) or tostring(v))
    end
    table.sort(ports)
    print(fmt:format(r.slug, r.backend, r.alias or "-", r.age, r.status, r.vm and r.vm.state or "-",
      #ports > 0 and table.concat(ports, ",") or "-"))
  end
  return 0
end

return M
