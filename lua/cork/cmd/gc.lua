-- cork gc [--yes]: find bottles whose cork process is gone and end them.
local cork = require "cork"
local args = require "cork.args"
local journal = require "cork.journal"
local down = require "cork.cmd.down"

local M = {}
M.help = [[
usage: cork gc [--yes]

Finds what crashed or killed runs left: journals whose cork process is gone
and that were not detached on purpose (a crash, a `kill -9`), and anything
labelled cork.slug (containers, networks, volumes, VMs) that no journal
accounts for. Lists them by slug, and with --yes (or after a "y" on the
terminal) ends them as `cork down` would. Detached bottles are left alone:
end those with `cork down SLUG`.]]

-- orphans([d, smol]) -> list of {slug, backend, pid, resources, journal=bool}
function M.orphans(d, smol)
  local out, seen = {}, {}
  for _, slug in ipairs(journal.slugs()) do
    local st = journal.read(slug)
    if st then
      seen[slug] = true
      if not st.detached and not st.owner_alive then st.journal = true; out[#out + 1] = st end
    end
  end
  if d or smol then
    for _, slug in ipairs(down.all_slugs(d, smol)) do
      if not seen[slug] then out[#out + 1] = { slug = slug, resources = {}, journal = false } end
    end
  end
  table.sort(out, function(a, b) return a.slug < b.slug end)
  return out
end

function M.main(argv)
  local opts = args.parse(argv, { yes = "boolean" }, { usage = "cork gc [--yes]" })
  local d, smol, why = down.clients()
  local list = M.orphans(d, smol)
  if #list == 0 then cork.log.info("nothing to collect"); return 0 end
  for _, st in ipairs(list) do
    if st.journal then
      cork.log.info(("orphaned: %s (%s, cork pid %s gone, %d resources in its journal)"):format(st.slug,
        st.backend or "?", st.pid and ("%d"):format(st.pid) or "?", #st.resources), { slug = st.slug })
    else
      cork.log.info(("orphaned: %s (labelled resources, no journal)"):format(st.slug), { slug = st.slug })
    end
  end
  if not opts.yes then
    if not cork.core.isatty(0) then
      cork.log.warn("not a terminal: pass --yes to clean them")
      return 1
    end
    io.stderr:write(("end these %d bottles? [y/N] "):format(#list))
    local a = io.read("l")
    if not a or not a:match("^[yY]") then return 1 end
  end
  local failed = 0
  for _, st in ipairs(list) do
    if not down.down_one(st.slug, d, smol, why) then failed = failed + 1 end
  end
  return (failed > 0 or not d) and 1 or 0
end

return M
