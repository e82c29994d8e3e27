-- cork attach SLUG: attach a terminal to a running bottle's agent.
local cork = require "cork"
local args = require "cork.args"
local journal = require "cork.journal"

local M = {}
M.help = [[
usage: cork attach SLUG [--print]

Runs the bottle's agent command in this terminal (the command the launch
recorded in the bottle's journal) and exits with the agent's status. It
needs a terminal: without one (stdin is not a TTY) it says so and exits 1.
--print shows the command instead, quoted for a POSIX shell (what an editor
runs in its own terminal); with the global --json, as an attach_command
event whose argv is a list of words, which needs no quoting.]]

-- quote(argv) -> one line a POSIX shell reads back as exactly argv.
function M.quote(argv)
  local words = {}
  for i, a in ipairs(argv) do
    a = tostring(a)
    if a ~= "" and a:match("^[%w@%%+=:,./_-]+$") then words[i] = a
    else words[i] = "'" .. a:gsub("'", "'\\''") .. "'" end
  end
  return table.concat(words, " ")
end

-- The check a terminal session needs before it starts (Docker's own
-- "the input device is not a TTY" says nothing of what to do instead).
function M.need_tty(slug, launch)
  if cork.core.isatty(0) then return end
  if launch then
    cork.error("no_tty", ("attaching the agent needs a terminal, and stdin is not one: launch with --detach, "
      .. "then `cork attach SLUG` from a terminal (bottle %s is being torn down)"):format(slug), { slug = slug })
  end
  cork.error("no_tty", ("cork attach needs a terminal, and stdin is not one: run it from a terminal, "
    .. "or `cork attach %s --print` for the command to run in one"):format(slug), { slug = slug })
end

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
  if cork.core.settings().json then cork.log.event("attach_command", { slug = rest[1], argv = cork.json.array(cmd) }); return 0 end
  if opts.print then print(M.quote(cmd)); return 0 end
  M.need_tty(rest[1])
  return cork.proc.run(cmd, { interactive = true }).status
end

return M
