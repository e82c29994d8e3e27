-- cork down SLUG... | --all: end everything of a bottle.
local cork = require "cork"
local args = require "cork.args"
local bottle = require "cork.bottle"
local journal = require "cork.journal"

local USAGE = "cork down SLUG... | --all"
local M = {}

M.help = [[
usage: ]] .. USAGE .. [[


Ends everything a bottle owns: its containers, VM, networks, alias (and guard)
and state dir, using the bottle's journal and then Docker's labels and
smolvm's machine list for anything the journal missed. A bottle whose cork
process is still running is asked to stop first (SIGTERM; its own cleanup
runs). Idempotent, and safe on half-built bottles (after a crash or
`kill -9`). --all ends every bottle with a journal or a cork label.]]

-- Every slug cork knows about: journals, labelled containers, VMs.
function M.all_slugs(d, smol)
  local seen, out = {}, {}
  local function add(s) if s and not seen[s] then seen[s] = true; out[#out + 1] = s end end
  for _, s in ipairs(journal.slugs()) do add(s) end
  if d then
    for _, c in ipairs(d:containers({ all = true, filters = { label = { "cork.slug" } } })) do
      add(c.Labels and c.Labels["cork.slug"])
    end
  end
  if smol then
    local ok, list = pcall(smol.ls, smol)
    if ok then for _, m in ipairs(list) do add(type(m.name) == "string" and m.name:match("^cork%-(.+)$")) end end
  end
  table.sort(out)
  return out
end

-- clients([consequence]) -> docker client or nil, smolvm driver or nil; the
-- warning when Docker is not there says what that means for the caller.
local function clients(consequence)
  local ok, d = pcall(function() return require("cork.docker").connect({ timeout = 60 }) end)
  if not ok then
    cork.log.warn(("Docker is not reachable (%s): %s")
      :format(cork.is_error(d) and d.message or tostring(d), consequence or "containers and networks are left alone"))
    d = nil
  end
  local smol = require("cork.smolvm").driver()
  local okv = pcall(smol.version, smol)
  return d, okv and smol or nil
end
M.clients = clients

function M.main(argv)
  local opts, rest = args.parse(argv, { all = "boolean" }, { usage = USAGE })
  if not opts.all and #rest == 0 then cork.error("usage", "down needs a SLUG or --all\nusage: " .. USAGE) end
  if opts.all and #rest > 0 then cork.error("usage", "give SLUGs or --all, not both\nusage: " .. USAGE) end
  local d, smol = clients()
  local slugs = opts.all and M.all_slugs(d, smol) or rest
  for _, slug in ipairs(slugs) do
    if not require("cork.plan").is_slug(slug) then cork.error("usage", ("not a bottle slug: %s"):format(slug)) end
  end
  local failed = 0
  for _, slug in ipairs(slugs) do
    local ok, res = pcall(bottle.down, slug, { docker = d, smolvm = smol })
    if ok then
      cork.log.info(("%s: %s"):format(slug, #res > 0 and ("removed " .. table.concat(res, ", ")) or "nothing left"),
        { slug = slug, removed = res })
      cork.log.event("down", { slug = slug, removed = res })
    else
      failed = failed + 1
      cork.log.error(("%s: %s"):format(slug, cork.is_error(res) and res.message or tostring(res)), { slug = slug })
    end
  end
  if opts.all and #slugs == 0 then cork.log.info("no bottles") end
  return failed > 0 and 1 or 0
end

return M
