-- escape_test.lua: what the escape suite's integration tests share.
--   local E = dofile(CORK_ROOT .. "/tests/lib/escape_test.lua")(d, R, s)
--   E.home(name)                -> a recipe-test home with a TMPDIR of its own, removed by scope s
--   E.left(h, {locks=}, slug...) -> what the run left: containers and networks
--                                  with the suite's labels or a slug's, and
--                                  state files (lock files aside unless locks)
--   E.by_id(events)             -> the escape_attack events by attack id
--   E.smol_home(name, K, commands) -> E.home for --backend smolmachines: the
--                                  alias pool 198.18.K.0/24, an empty hosts
--                                  file for the stand-in, an agent.smolmachine
--   E.smol_left(h, K, o, slug)  -> E.left plus what a smolmachines run can
--                                  leave: VMs, machine dirs, guards, aliases
--                                  in 198.18.K, host canaries and gateways,
--                                  and (o.temp) cork-escape temp files
local cork = require "cork"
local json = require "cork.json"
local alias = require "cork.alias"

return function(d, R, s)
  local E = {}

  function E.home(name)
    local h = R.home(name)
    h.env.TMPDIR = h.dir .. "/tmp"
    cork.fs.mkdir(h.env.TMPDIR, tonumber("0700", 8))
    s:defer(cork.fs.remove, h.dir, { recursive = true })
    return h
  end

  function E.left(h, o, ...)
    local left, filters = {}, { "cork.bottle=escape", "cork.role=canary" }
    for i = 1, select("#", ...) do
      local slug = select(i, ...)
      if slug then filters[#filters + 1] = "cork.slug=" .. slug end
    end
    for _, f in ipairs(filters) do
      for _, c in ipairs(d:containers({ all = true, filters = { label = { f } } })) do left[#left + 1] = "container " .. c.Names[1] end
      for _, n in ipairs(d:networks({ filters = { label = { f } } })) do left[#left + 1] = "network " .. n.Name end
    end
    local files = R.files(h.env.XDG_STATE_HOME)
    if not o.locks then files = files:gsub("[^\n]*/cork/[%a]+%.lock\n?", "") end
    if files ~= "" then left[#left + 1] = "files " .. files end
    return left
  end

  function E.smol_home(name, K, commands)
    local h = E.home(name)
    h.env.CORK_ALIAS_POOL = ("198.18.%d.1-198.18.%d.254"):format(K, K)
    -- the stand-in resolves names from this (empty) file only; the suite
    -- points its gateway's DNS forwarder at the suite's canary resolver
    cork.fs.write(h.dir .. "/hosts", "")
    h.env.FAKE_SMOLVM_HOSTS = h.dir .. "/hosts"
    cork.fs.write(h.dir .. "/agent.smolmachine", "user=agent\ncommands=" .. commands .. "\n")
    return h
  end

  function E.smol_left(h, K, o, slug)
    local left = E.left(h, o, slug)
    local r = cork.proc.run({ R.root .. "/tests/fakes/smolvm", "machine", "ls", "--json" }, { env = h.env })
    local ok, vms = pcall(json.decode, r.stdout)
    for _, m in ipairs(ok and type(vms) == "table" and vms or {}) do left[#left + 1] = "VM " .. tostring(m.name) end
    local vmdirs = cork.proc.run({ "sh", "-c", 'ls -A "$0"/machines 2>/dev/null', h.env.FAKE_SMOLVM_STATE }).stdout
    if vmdirs ~= "" then left[#left + 1] = "stand-in machine dirs " .. vmdirs end
    if slug then
      for _, rule in ipairs(alias.guards(slug)) do left[#left + 1] = "guard " .. rule end
    end
    for _, a in ipairs(cork.net.addresses(alias.IFACE)) do
      if a:match("^198%.18%." .. K .. "%.") then left[#left + 1] = "alias " .. a end
    end
    -- processes of this run: host canaries (busybox httpd in TMPDIR) and the
    -- stand-in's gateways (each holds a guest's network namespaces)
    local ps = cork.proc.run({ "sh", "-c", "ps -eo pid,args | grep -F -e \"$0\" -e \"$1\" | grep -v grep || true",
      h.env.TMPDIR .. "/cork-escape-www", h.env.FAKE_SMOLVM_STATE }).stdout
    if ps ~= "" then left[#left + 1] = "process " .. ps end
    if o.temp then
      local tmp = cork.proc.run({ "sh", "-c", 'ls -A "$0" | grep "^cork-escape" || true', h.env.TMPDIR }).stdout
      if tmp ~= "" then left[#left + 1] = "temp " .. tmp end
    end
    return table.concat(left, "; ")
  end

  function E.by_id(events)
    local t = {}
    for _, e in ipairs(R.find(events, { event = "escape_attack" })) do t[e.id] = e end
    return t
  end

  return E
end
