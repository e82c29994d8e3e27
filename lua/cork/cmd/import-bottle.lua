-- cork import-bottle FILE
--
-- Prints a bottle or agent file (bot-bottle's format, any era, or cork's
-- own) in cork's native form, so an operator can move to it when they want
-- to. cork loads bot-bottle files as they are; nothing needs converting.
local cork = require "cork"
local args = require "cork.args"
local manifest = require "cork.manifest"
local botbottle = require "cork.botbottle"

local USAGE = "cork import-bottle FILE [--agent]"

local M = {}

M.help = [[
usage: ]] .. USAGE .. [[


Prints FILE (a bottle, or an agent file with --agent or a bottle: key) in
cork's native form on stdout: bot-bottle's git.remotes mapping and
git-gate.repos become git.remotes, agent_provider becomes agent, a route's
auth mapping, path_allowlist, pipelock and matches become auth, token_ref,
paths, tls_passthrough and bundle.ip_allowlist (docs/manifests.md has the
whole mapping). A .md file stays Markdown (the body is kept).
Comments in FILE are not carried over (a note on stderr says so); each
field cork has no equivalent for is a warning on stderr and a comment line
in the output. FILE itself is not changed.

exit codes: 0 ok, 1 failed, 2 usage or invalid file]]

function M.main(argv)
  local opts, rest = args.parse(argv, {agent = "boolean"}, {usage = USAGE})
  if #rest ~= 1 then
    cork.error("usage", (#rest == 0 and "import-bottle needs a FILE" or ("unexpected argument '%s'"):format(rest[2]))
      .. "\nusage: " .. USAGE)
  end
  local file = rest[1]
  local text = cork.fs.read(file)
  local kind = opts.agent and "agent" or "bottle"
  if not opts.agent then
    -- an agent file names its bottle; a bottle never has that key
    local y = file:find("%.md$") and manifest.split_front_matter(text) or text
    local ok, doc = pcall(cork.yaml.decode, y or "")
    if ok and type(doc) == "table" and doc.bottle ~= nil then kind = "agent" end
  end
  local doc, meta = manifest.parse(text, file, kind)
  for _, w in ipairs(meta.warnings) do cork.log.warn(w, {file = file}) end
  io.stdout:write(botbottle.native_text(doc, meta, kind, meta.warnings, cork.yaml))
  io.stderr:write(("note: comments in %s are not carried over; %s\n"):format(file, meta.botbottle
    and "the output is its native form" or "it was already in cork's native form"))
  return 0
end

return M
