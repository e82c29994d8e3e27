-- cork supervise [SLUG] | approve|deny ID [--note TEXT]: decide what agents ask for.
local cork = require "cork"
local args = require "cork.args"
local sv = require "cork.supervise"

local USAGE = "cork supervise [SLUG] | cork supervise approve|deny ID [--note TEXT]"
local M = {}

M.help = [[
usage: ]] .. USAGE .. [[


Agents in bottles with `supervise: true` ask for new access through the
bundle's supervise MCP server (a new egress route, or a new allowlist host,
with a justification). Each request waits in the bottle's queue until a
human decides here.

  cork supervise [SLUG]      list the pending requests (of one bottle)
  cork supervise approve ID  rewrite the bottle's live configs in place and
                             signal its bundle (SIGHUP): the new access works
                             without a relaunch
  cork supervise deny ID     change nothing
  --note TEXT                what the agent is told with the decision

The agent gets {status, note}. Every decision is appended to
$XDG_STATE_HOME/cork/SLUG/supervise/audit.log. With --json: a
supervise_request event per pending request, a supervise_decision event per
decision.]]

function M.main(argv)
  local opts, rest = args.parse(argv, { note = "string" }, { usage = USAGE })
  local verb = rest[1]
  if verb == "approve" or verb == "deny" then
    if #rest ~= 2 then cork.error("usage", ("supervise %s needs one request ID\nusage: %s"):format(verb, USAGE)) end
    local r = sv.decide(rest[2], verb, { note = opts.note })
    cork.log.info(("%s: %s %s %s%s"):format(r.slug, r.status, r.request.kind, r.request.host,
      #r.changed > 0 and " (configs rewritten, bundle signalled)" or ""))
    return 0
  end
  if opts.note then cork.error("usage", "--note goes with approve or deny\nusage: " .. USAGE) end
  if #rest > 1 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[2], USAGE)) end
  if verb and not require("cork.plan").is_slug(verb) then
    cork.error("usage", ("not a bottle slug: %s\nusage: %s"):format(verb, USAGE))
  end
  local list = sv.pending(verb)
  for _, r in ipairs(list) do
    cork.log.event("supervise_request", r)
    if not cork.core.settings().json then
      print(("%s  %s  %-9s %s%s\n    why: %s"):format(r.id, r.slug, r.kind, r.host,
        r.paths and (" " .. table.concat(r.paths, ",")) or "", r.justification or ""))
    end
  end
  if #list == 0 and not cork.core.settings().json then print("no pending requests") end
  return 0
end

return M
