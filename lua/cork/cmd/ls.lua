-- cork ls [--json]: the bottles there are, from Docker's labels, smolvm's
-- machine list and the journals under the state dir.
local cork = require "cork"
local args = require "cork.args"
local journal = require "cork.journal"
local down = require "cork.cmd.down"

local M = {}
M.help = [[
usage: cork ls

Lists bottles: slug, backend, loopback alias, published ports, age and
status (running, partial, stale: a journal whose cork process is gone and
nothing runs). With the global --json, one `bottle` event per bottle.]]

local function age(ts)
  if not ts then return "?" end
  local s = math.floor(os.time() - ts)
  if s < 120 then return s .. "s" end
  if s < 7200 then return (s // 60) .. "m" end
  if s < 172800 then return (s // 3600) .. "h" end
  return (s // 86400) .. "d"
end

function M.collect()
  local d, smol = down.clients()
  local rows = {}
  for _, slug in ipairs(down.all_slugs(d, smol)) do
    local st = journal.read(slug) or { meta = {}, resources = {} }
    local row = { slug = slug, backend = st.backend or "?", alias = st.meta.alias, ports = st.meta.ports,
      started = st.started, pid = st.pid, detached = st.detached or false, containers = {}, vm = nil }
    local running = 0
    if d then
      for _, c in ipairs(d:containers({ all = true, filters = { label = { "cork.slug=" .. slug } } })) do
        row.containers[#row.containers + 1] = { name = (c.Names or {})[1], state = c.State }
        if c.State == "running" then running = running + 1 end
        if row.backend == "?" and c.Labels and c.Labels["cork.role"] == "agent" then row.backend = "docker" end
      end
    end
    if smol then
      local ok, m = pcall(smol.status, smol, "cork-" .. slug)
      if ok and m then row.vm = { name = m.name, state = m.state }; if m.state == "running" then running = running + 1 end end
    end
    local expected = row.backend == "smolmachines" and 2 or 2
    if running >= expected then row.status = "running"
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
  print(("%-28s %-13s %-12s %-6s %-9s %s"):format("SLUG", "BACKEND", "ALIAS", "AGE", "STATUS", "PORTS"))
  for _, r in ipairs(rows) do
    local ports = {}
    for k, v in pairs(r.ports or {}) do ports[#ports + 1] = k .. "=" .. tostring(v) end
    table.sort(ports)
    print(("%-28s %-13s %-12s %-6s %-9s %s"):format(r.slug, r.backend, r.alias or "-", r.age, r.status,
      table.concat(ports, ",")))
  end
  return 0
end

return M
