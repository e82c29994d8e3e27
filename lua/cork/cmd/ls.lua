-- cork ls [--json]: the bottles there are, from Docker's labels, smolvm's
-- machine list and the journals under the state dir.
local cork = require "cork"
local args = require "cork.args"
local journal = require "cork.journal"
local down = require "cork.cmd.down"

local M = {}
M.help = [==[
usage: cork ls [--watch [--interval SECONDS]]

Lists bottles: slug, backend, alias, age, status, the VM's state
and the published ports.

  status   running; starting (its cork process is at work); partial
           (one of bundle and agent runs, nobody is starting it); stale
           (its cork process is gone and nothing runs: end it with
           `cork down SLUG` or `cork gc`); a `cork run prepare` at work
           is backend prepare, status preparing
  VM       the machine's state as `smolvm machine ls` reports it
           (smolmachines bottles; "missing" when smolvm does not list it)

With the global --json, one `bottle` event per bottle.

--watch keeps going: the list again whenever it changes (Docker's events
for cork's containers and networks wake it at once; VMs and journals are
looked at every --interval seconds, default 2), until Ctrl-C (exit 0).
With --json, a `bottle` event for each new or changed bottle and a
`bottle_gone` event (slug) for each one that is no longer there.]==]

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

local NO_DOCKER = "bottles are listed from the journals and smolvm only"

-- Every bottle from one Docker listing, one smolvm listing and the journals.
-- d, smol: clients to reuse (--watch); by default made here.
function M.collect(d, smol)
  if d == nil and smol == nil then d, smol = down.clients(NO_DOCKER) end
  local vms = machines(smol)
  local seen, slugs, by_slug = {}, {}, {}
  local function add(slug)
    if slug and not seen[slug] then seen[slug] = true; slugs[#slugs + 1] = slug; by_slug[slug] = {} end
  end
  for _, slug in ipairs(journal.slugs()) do add(slug) end
  local nets, vols = {}, {}
  if d then
    local filters = { label = { "cork.slug" } }
    for _, c in ipairs(d:containers({ all = true, filters = filters })) do
      local slug = c.Labels and c.Labels["cork.slug"]
      add(slug)
      if slug then table.insert(by_slug[slug], c) end
    end
    -- networks and volumes too: a launch interrupted mid-create can leave
    -- only those
    for _, n in ipairs(d:networks({ filters = filters })) do
      local slug = n.Labels and n.Labels["cork.slug"]
      if slug then add(slug); nets[slug] = nets[slug] or {}; table.insert(nets[slug], n.Name) end
    end
    for _, v in ipairs(require("cork.teardown").volumes(d, filters)) do
      local slug = v.Labels and v.Labels["cork.slug"]
      if slug then add(slug); vols[slug] = vols[slug] or {}; table.insert(vols[slug], v.Name) end
    end
  end
  for name, m in pairs(vms or {}) do
    add(type(m.labels) == "table" and m.labels["cork.slug"] or name:match("^cork%-(.+)$"))
  end
  table.sort(slugs)
  local rows = {}
  for _, slug in ipairs(slugs) do
    local st = journal.read(slug) or { meta = {}, resources = {} }
    local row = { slug = slug, backend = st.backend or "?", alias = st.meta.alias, ports = st.meta.ports,
      started = st.started, pid = st.pid, detached = st.detached or false, containers = cork.json.array(), vm = nil,
      networks = cork.json.array(nets[slug] or {}), volumes = cork.json.array(vols[slug] or {}) }
    local running = 0
    for _, c in ipairs(by_slug[slug]) do
      row.containers[#row.containers + 1] = { name = (c.Names or {})[1], state = c.State }
      if c.State == "running" then running = running + 1 end
      if row.backend == "?" and c.Labels and c.Labels["cork.role"] == "agent" then row.backend = "docker" end
    end
    local m = vms and vms["cork-" .. slug]
    if not m then
      for _, x in pairs(vms or {}) do
        if type(x.labels) == "table" and x.labels["cork.slug"] == slug then m = x; break end
      end
    end
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
    -- (a launch at work is starting until both run, not partial)
    if row.backend == "prepare" then row.status = st.owner_alive and "preparing" or "stale"
    elseif running >= 2 then row.status = "running"
    elseif st.owner_alive then row.status = "starting"
    elseif running > 0 then row.status = "partial"
    else row.status = "stale" end
    if row.status == "stale" or row.status == "partial" then
      row.hint = ("end it with `cork down %s` (or `cork gc` for every stale bottle)"):format(slug)
    end
    row.age = age(row.started)
    rows[#rows + 1] = row
  end
  return rows
end

local function print_table(rows)
  if #rows == 0 then print("no bottles"); return end
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
  for _, r in ipairs(rows) do
    if r.hint then print(("%s is %s: %s"):format(r.slug, r.status, r.hint)) end
  end
end

-- What makes a row different for --watch: everything but its age, written
-- with sorted keys (pairs order is not stable across tables).
local function canon(v, out)
  if type(v) ~= "table" then out[#out + 1] = ("%q"):format(v); return end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  out[#out + 1] = "{"
  for _, k in ipairs(keys) do
    out[#out + 1] = tostring(k) .. "="
    canon(v[k], out)
    out[#out + 1] = ","
  end
  out[#out + 1] = "}"
end

local function fingerprint(r)
  local out = {}
  local keep = {}
  for k, v in pairs(r) do if k ~= "age" then keep[k] = v end end
  canon(keep, out)
  return table.concat(out)
end

-- Docker's events for cork's resources, or nil (no Docker: polling only).
local function event_stream(d)
  if not d then return nil end
  local ok, st = pcall(d.events, d, { filters = { label = { "cork.slug" } } })
  if ok then return st end
  cork.log.warn(("Docker events unavailable (%s): looking every interval only")
    :format(cork.is_error(st) and st.message or tostring(st)))
  return nil
end

-- Whether the `cork serve` that started us is gone: we were handed to
-- another parent (Linux: /proc), else that pid no longer exists.
local function owner_gone(owner)
  local f = io.open("/proc/self/stat", "rb")
  if f then
    local st = f:read("a")
    f:close()
    local ppid = tonumber(st:match("%)%s+%S+%s+(%d+)") or "")
    if ppid then return ppid ~= owner end
  end
  return not cork.core.pid_alive(owner)
end

local function watch(interval, json)
  -- started by `cork serve` (CORK_SERVE_PID): a watch is part of that
  -- session, and stops when the server is gone, even killed outright
  local owner = tonumber(os.getenv("CORK_SERVE_PID") or "")
  local d, smol = down.clients(NO_DOCKER)
  local stream = event_stream(d)
  local last, shown = {}, false
  local function show()
    local rows = M.collect(d or false, smol or false)
    local now, changed = {}, false
    for _, r in ipairs(rows) do
      local fp = fingerprint(r)
      now[r.slug] = fp
      if last[r.slug] ~= fp then
        changed = true
        if json then cork.log.event("bottle", r) end
      end
    end
    local gone = {}
    for slug in pairs(last) do if not now[slug] then gone[#gone + 1] = slug end end
    table.sort(gone)
    for _, slug in ipairs(gone) do
      changed = true
      if json then cork.log.event("bottle_gone", { slug = slug }) end
    end
    if not json and (changed or not shown) then
      if shown then print(("-- %s"):format(os.date("%H:%M:%S"))) end
      print_table(rows)
    end
    io.stdout:flush()
    shown = true
    last = now
  end
  local ok, err = pcall(function()
    show()
    while true do
      if stream then
        if stream:next(interval) then
          -- a burst (create, connect, start, ...) is one change: let it settle
          while stream:next(0.3) do end
        end
      else
        cork.sleep(interval)
      end
      if owner and owner_gone(owner) then return end
      show()
    end
  end)
  if stream then stream:close() end
  -- Ctrl-C is how a watch ends; SIGTERM / SIGHUP stay interruptions (130)
  if cork.is_error(err, "interrupted") and (err.signal == 2 or not err.signal or err.signal == 0) then
    cork.core.clear_interrupt()
    return 0
  end
  if not ok then error(err, 0) end
end

function M.main(argv)
  local o = args.parse(argv, { watch = "boolean", interval = "number" },
    { usage = "cork ls [--watch [--interval SECONDS]]" })
  local json = cork.core.settings().json
  if o.interval and not o.watch then cork.error("usage", "--interval needs --watch") end
  if o.watch then
    local interval = o.interval or 2
    if interval < 0.1 or interval > 3600 then
      cork.error("usage", "--interval must be between 0.1 and 3600 seconds")
    end
    return watch(interval, json)
  end
  local rows = M.collect()
  if json then
    for _, r in ipairs(rows) do cork.log.event("bottle", r) end
    return 0
  end
  print_table(rows)
  return 0
end

return M
