-- cork down SLUG... | --all: end everything of a bottle.
local cork = require "cork"
local args = require "cork.args"
local teardown = require "cork.teardown"   -- not cork.bottle: down loads no planner or manifest loader
local journal = require "cork.journal"

local USAGE = "cork down SLUG... | --all"
local M = {}

M.help = [[
usage: ]] .. USAGE .. [[


Ends everything a bottle owns: its containers, VM, networks, alias (and guard)
and state dir, using the bottle's journal and then Docker's labels and
smolvm's machine list for anything the journal missed. A bottle whose cork
process is still running is asked to stop first (SIGTERM; its own cleanup
runs, and down waits for it). Idempotent, and safe on half-built bottles
(after a crash or `kill -9`). --all ends every bottle with a journal or a
cork label (containers, networks, volumes, VMs).

A resource leaves the journal only once its removal is confirmed: when
Docker or smolvm cannot be reached (or CORK_CLEANUP_TIMEOUT, default 60 s,
runs out), the journal stays, down says what is left and exits 1; run it
again once the engine is back. A SLUG with no journal and nothing labelled
is an error (exit 1).]]

-- Every slug cork knows about: journals, and everything labelled
-- cork.slug (containers, networks, volumes; VMs by label where smolvm's
-- dialect has labels, else by their cork-SLUG name).
function M.all_slugs(d, smol)
  local seen, out = {}, {}
  local function add(s) if type(s) == "string" and s ~= "" and not seen[s] then seen[s] = true; out[#out + 1] = s end end
  for _, s in ipairs(journal.slugs()) do add(s) end
  if d then
    local filters = { label = { "cork.slug" } }
    for _, c in ipairs(d:containers({ all = true, filters = filters })) do add(c.Labels and c.Labels["cork.slug"]) end
    for _, n in ipairs(d:networks({ filters = filters })) do add(n.Labels and n.Labels["cork.slug"]) end
    for _, v in ipairs(require("cork.teardown").volumes(d, filters)) do add(v.Labels and v.Labels["cork.slug"]) end
  end
  if smol then
    local ok, list = pcall(smol.ls, smol)
    if ok then
      for _, m in ipairs(list) do
        add(type(m.labels) == "table" and m.labels["cork.slug"] or nil)
        add(type(m.name) == "string" and m.name:match("^cork%-(.+)$") or nil)
      end
    end
  end
  table.sort(out)
  return out
end

-- docker_client([consequence]) -> docker client or nil; the warning when
-- Docker is not there says what that means for the caller.
local function docker_client(consequence)
  local ok, d = pcall(function() return require("cork.docker").connect({ timeout = 60 }) end)
  if not ok then
    cork.log.warn(("Docker is not reachable (%s): %s")
      :format(cork.is_error(d) and d.message or tostring(d), consequence or "containers and networks are left alone"))
    d = nil
  end
  return d
end

-- smolvm() -> the smolvm driver when smolvm answers, else nil and why not
local function smolvm()
  local smol = require("cork.smolvm").driver()
  local okv, verr = pcall(smol.version, smol)
  if okv then return smol end
  local env = os.getenv("CORK_SMOLVM")
  local msg = cork.is_error(verr) and verr.message or tostring(verr)
  return nil, (env == nil or env == "") and ("smolvm is not available (CORK_SMOLVM is unset and %s)"):format(msg)
    or ("smolvm is not available: %s"):format(msg)
end

-- clients([consequence]) -> docker client or nil, smolvm driver or nil, and
-- why smolvm is not there (for messages)
local function clients(consequence)
  local d = docker_client(consequence)
  return d, smolvm()
end
M.clients = clients

-- One line for a down report: what was found and what was done.
function M.summary(slug, rep)
  local parts = {}
  if #rep.removed > 0 then parts[#parts + 1] = "removed " .. table.concat(rep.removed, ", ") end
  if #rep.already_gone > 0 then parts[#parts + 1] = "already gone: " .. table.concat(rep.already_gone, ", ") end
  if rep.stopped then table.insert(parts, 1, ("cork process %d stopped it"):format(rep.stopped)) end
  if #parts == 0 then parts[1] = rep.journal and "its journal listed nothing left to remove" or "nothing to remove" end
  return ("%s: %s%s"):format(slug, table.concat(parts, "; "), rep.journal and "; journal removed" or "")
end

-- down_one(slug, d, smol, why) -> ok; logs the outcome and emits `down`.
-- smol may be a function returning the driver (asked only when the bottle
-- can have a VM), why a function or a string.
function M.down_one(slug, d, smol, why)
  local ok, res, rep = pcall(teardown.down, slug, { docker = d, smolvm = smol, smolvm_why = why })
  if ok then
    cork.log.info(M.summary(slug, rep), { slug = slug, removed = rep.removed })
    cork.log.event("down", { slug = slug, removed = res, already_gone = rep.already_gone })
    return true
  end
  if cork.is_error(res, "interrupted") then error(res, 0) end
  cork.log.error(cork.is_error(res) and res.message or tostring(res),
    { slug = slug, kind = cork.is_error(res) and res.kind or nil, left = cork.is_error(res) and res.left or nil })
  return false, res
end

function M.main(argv)
  local opts, rest = args.parse(argv, { all = "boolean" }, { usage = USAGE })
  if not opts.all and #rest == 0 then cork.error("usage", "down needs a SLUG or --all\nusage: " .. USAGE) end
  if opts.all and #rest > 0 then cork.error("usage", "give SLUGs or --all, not both\nusage: " .. USAGE) end
  local function check(slugs)
    for _, slug in ipairs(slugs) do
      if not journal.is_slug(slug) then cork.error("usage", ("not a bottle slug: %s"):format(slug)) end
    end
  end
  check(rest)
  local d = docker_client()
  -- smolvm is asked about only when a bottle may have a VM (not a docker
  -- bottle's teardown), and then once
  local probed, smol, why = false, nil, nil
  local function smol_once()
    if not probed then probed = true; smol, why = smolvm() end
    return smol
  end
  local slugs = opts.all and M.all_slugs(d, smol_once()) or rest
  check(slugs)
  local failed = 0
  for _, slug in ipairs(slugs) do
    if not M.down_one(slug, d, smol_once, function() return why end) then failed = failed + 1 end
  end
  if opts.all and #slugs == 0 then cork.log.info(d and "no bottles" or "no bottles with a journal") end
  return failed > 0 and 1 or 0
end

return M
