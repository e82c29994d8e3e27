-- bench/lib/replay.lua: the floor of a cork command: the Docker calls,
-- smolvm and iptables spawns and alias changes it made (recorded by bench/lib/steps.lua), issued again back
-- to back from one process that is already running, with nothing between
-- them: no process start, no Lua modules, no manifests, no journal, no CA.
--
--   local replay = dofile(root .. "/bench/lib/replay.lua")
--   local ms = replay(d, calls, { ids = {}, subst = { [from] = to } })
--
-- `d` is a connected cork.docker client; `ids` maps the recorded run's
-- container and network ids to this run's (filled as calls return, shared
-- between the launch's and the teardown's replays); `subst` rewrites other
-- strings (a state dir the recorded run has since removed, say); `ports`
-- (filled as inspects return) maps the host ports Docker picked for the
-- recorded run to this run's, so a probe of the bundle's port reaches the
-- replayed bundle. Returns the
-- wall time in seconds and a list of { name, ms } per call.
-- host ports: an argument that is the port, or ":PORT" at a number's end
local function reports(v, ports)
  for from, to in pairs(ports) do
    if v == from then return to end
    v = v:gsub(":" .. from .. "%f[%D]", ":" .. to)
  end
  return v
end

local function rewrite(v, map, ports)
  if type(v) == "string" then
    for from, to in pairs(map) do
      if v:find(from, 1, true) then v = v:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%"))) end
    end
    return ports and reports(v, ports) or v
  elseif type(v) == "table" then
    local out = {}
    for k, x in pairs(v) do out[k] = rewrite(x, map, ports) end
    return out
  elseif math.type(v) == "float" and math.tointeger(v) then
    return math.tointeger(v)   -- JSON gave back 9099.0 for 9099
  end
  return v
end

return function(d, calls, o)
  local ids, subst = o.ids or {}, o.subst or {}
  local ports = o.ports or {}
  o.ports = ports
  local per = {}
  local t0 = cork.time()
  for _, c in ipairs(calls) do
    local map = {}
    for k, v in pairs(subst) do map[k] = v end
    for k, v in pairs(ids) do map[k] = v end
    local t1 = cork.time()
    if c.docker == "ping" then
      d:ping()
    elseif c.docker then
      local args = {}
      for i, box in ipairs(c.args) do args[i] = rewrite(box.v, map, ports) end
      local res = d[c.docker](d, table.unpack(args, 1, #c.args))
      if c.ports then
        -- host_port's answer, or an inspect's ports by container port
        local now = {}
        if math.type(res) == "integer" or type(res) == "string" then
          now[1] = tostring(res)
        elseif type(res) == "table" and type(res.NetworkSettings) == "table" then
          local keys = {}
          for k in pairs(res.NetworkSettings.Ports or {}) do keys[#keys + 1] = k end
          table.sort(keys)
          for _, k in ipairs(keys) do
            for _, b in ipairs(res.NetworkSettings.Ports[k] or {}) do now[#now + 1] = b.HostPort end
          end
        end
        for i, old in ipairs(c.ports) do if now[i] and now[i] ~= old then ports[old] = now[i] end end
      end
      local got = {}
      if type(res) == "table" then
        for _, k in ipairs({ "id", "Id" }) do if type(res[k]) == "string" then got[#got + 1] = res[k] end end
      end
      for i, old in ipairs(c.ids or {}) do if got[i] then ids[old] = got[i] end end
    elseif c.net then
      local args = {}
      for i, box in ipairs(c.args) do args[i] = box.v end
      cork.net[c.net](table.unpack(args, 1, #c.args))
    else
      cork.proc.run(rewrite(c.spawn, map, ports), rewrite(c.opts, map, ports))
    end
    per[#per + 1] = { name = c.docker or c.net or (c.spawn[2] or "?"), ms = (cork.time() - t1) * 1e3 }
  end
  return cork.time() - t0, per
end
