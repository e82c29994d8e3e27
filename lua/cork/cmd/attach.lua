-- cork attach SLUG: attach a terminal to a running bottle's agent.
local cork = require "cork"
local args = require "cork.args"
local journal = require "cork.journal"

local M = {}
M.help = [[
usage: cork attach SLUG [--print]

Runs the bottle's agent command in this terminal (the command the launch
recorded in the bottle's journal). --print shows the command instead (what
an editor runs in its own terminal); with the global --json, as an event.]]

function M.command(slug)
  local st = journal.read(slug)
  if not st then cork.error("not_found", ("no bottle %s (see `cork ls`)"):format(slug), { slug = slug }) end
  local argv = st.meta.attach
  if type(argv) ~= "table" or #argv == 0 then
    cork.error("not_found", ("bottle %s has no agent to attach to yet"):format(slug), { slug = slug })
  end
  return argv
end

function M.main(argv)
  local opts, rest = args.parse(argv, { print = "boolean" }, { usage = "cork attach SLUG [--print]" })
  if #rest ~= 1 then cork.error("usage", "attach needs one SLUG\nusage: cork attach SLUG [--print]") end
  local cmd = M.command(rest[1])
  if cork.core.settings().json then cork.log.event("attach_command", { slug = rest[1], argv = cmd }); return 0 end
  if opts.print then print(table.concat(cmd, " ")); return 0 end
  return cork.proc.run(cmd, { interactive = true }).status
end

return M
