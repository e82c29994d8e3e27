-- upstream_debs.lua: the Debian packages a test's own ssh upstream is made
-- of (openssh-server on top of the bundle's root filesystem), downloaded
-- once into CACHE/debs with apt-get and reused afterwards.
--   local debs = dofile(CORK_ROOT .. "/tests/lib/upstream_debs.lua")(cache)
-- The integration tests run in the private engine's network namespace,
-- which cannot reach Debian's archive: tests/run-all calls this first, from
-- the host's namespace (next to the bundle's root filesystem).
local cork = require "cork"

local PACKAGES = { "openssh-server", "libwrap0" }

return function(cache)
  local debs = cache .. "/debs"
  cork.fs.mkdir(debs, tonumber("0755", 8))
  local have = {}
  for _, f in ipairs(cork.fs.list(debs)) do
    local name = f:match("^([^_]+)_.*%.deb$")
    if name then have[name] = true end
  end
  local missing = {}
  for _, p in ipairs(PACKAGES) do if not have[p] then missing[#missing + 1] = p end end
  if #missing == 0 then return debs end
  local argv = { "apt-get", "download", "-q" }
  for _, p in ipairs(missing) do argv[#argv + 1] = p end
  local r = cork.proc.run(argv, { cwd = debs, timeout = 300 })
  if r.status ~= 0 then
    error(("apt-get download %s into %s failed (%d), is Debian's archive reachable from here? %s"):format(
      table.concat(missing, " "), debs, r.status, (r.stderr or ""):gsub("%s+$", "")), 0)
  end
  return debs
end
