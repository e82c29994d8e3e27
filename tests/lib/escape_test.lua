-- escape_test.lua: what the escape suite's integration tests share.
--   local E = dofile(CORK_ROOT .. "/tests/lib/escape_test.lua")(d, R, s)
--   E.home(name)                -> a recipe-test home with a TMPDIR of its own, removed by scope s
--   E.left(h, {locks=}, slug...) -> what the run left: containers and networks
--                                  with the suite's labels or a slug's, and
--                                  state files (lock files aside unless locks)
--   E.by_id(events)             -> the escape_attack events by attack id
local cork = require "cork"

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

  function E.by_id(events)
    local t = {}
    for _, e in ipairs(R.find(events, { event = "escape_attack" })) do t[e.id] = e end
    return t
  end

  return E
end
