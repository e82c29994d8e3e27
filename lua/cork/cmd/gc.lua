-- cork gc [--yes]: find bottles whose cork process is gone and end them.
local cork = require "cork"
local args = require "cork.args"
local journal = require "cork.journal"
local bottle = require "cork.bottle"
local down = require "cork.cmd.down"

local M = {}
M.help = [[
usage: cork gc [--yes]

Finds journals whose cork process is gone and that were not detached on
purpose (a crash, a `kill -9`), lists them, and with --yes (or after a "y"
on the terminal) ends them as `cork down` would. Detached bottles are left
alone: end those with `cork down SLUG`.]]

function M.orphans()
  local out = {}
  for _, slug in ipairs(journal.slugs()) do
    local st = journal.read(slug)
    if st and not st.detached and not st.owner_alive then out[#out + 1] = st end
  end
  return out
end

function M.main(argv)
  local opts = args.parse(argv, { yes = "boolean" }, { usage = "cork gc [--yes]" })
  local list = M.orphans()
  if #list == 0 then cork.log.info("nothing to collect"); return 0 end
  for _, st in ipairs(list) do
    cork.log.info(("orphaned: %s (%s, cork pid %s gone, %d resources)"):format(st.slug, st.backend or "?",
      tostring(st.pid), #st.resources), { slug = st.slug })
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
  local d, smol = down.clients()
  local failed = 0
  for _, st in ipairs(list) do
    local ok, res = pcall(bottle.down, st.slug, { docker = d, smolvm = smol })
    if ok then cork.log.event("down", { slug = st.slug, removed = res })
      cork.log.info(("%s: removed %s"):format(st.slug, #res > 0 and table.concat(res, ", ") or "nothing"))
    else failed = failed + 1; cork.log.error(("%s: %s"):format(st.slug, tostring(res))) end
  end
  return failed > 0 and 1 or 0
end

return M
