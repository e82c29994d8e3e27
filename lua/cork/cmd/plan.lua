-- cork plan --bottle NAME [--agent NAME] [--json] [--contents]
--
-- Prints the plan a launch would follow, with every secret redacted (a plan
-- holds none: secrets are named, and resolved only at launch). What an
-- operator reads before launching, and what editor tooling shows.
local cork = require "cork"
local args = require "cork.args"
local manifest = require "cork.manifest"
local plan = require "cork.plan"

local USAGE = "cork plan --bottle NAME [--agent NAME] [--json] [--contents] [--no-docker]"

local M = {}

M.help = [[
usage: ]] .. USAGE .. [[


Loads the bottle (and agent), validates them, and prints the plan a launch
would follow: names, labels, state dir, bundle subnet, daemons and their
config files, token slots, git-gate upstreams, the agent's environment.
Secret values never appear: secret env is listed by name and source. Each
host variable the bottle's secrets name that is not set is a warning (on
stderr, with the file:line that names it): a launch would stop there.

  --bottle NAME   the bottle ($XDG_CONFIG_HOME/cork/bottles, ~/.bot-bottle/bottles)
  --agent NAME    an agent file naming a bottle (config dirs, ./.cork/agents);
                  with --agent alone, the agent's bottle is used
  --json          the plan as one JSON event line ({"event":"plan","plan":{...}})
  --contents      include the rendered config files and scripts in full
  --no-docker     do not ask Docker which subnets are taken

exit codes: 0 ok, 1 failed, 2 usage or invalid bottle/agent]]

-- The subnets Docker has, or nil and why not.
local function docker_subnets()
  local ok, docker = pcall(require, "cork.docker")
  if not ok or type(docker) ~= "table" or not docker.connect then return nil, "cork.docker unavailable" end
  local ok2, res = pcall(function()
    local d <close> = docker.connect({timeout = 3, connect_timeout = 1})
    return plan.docker_subnets(d)
  end)
  if ok2 then return res end
  return nil, cork.is_error(res) and res.message or tostring(res)
end

function M.main(argv)
  local opts, rest = args.parse(argv, {bottle = "string", agent = "string", json = "boolean",
    contents = "boolean", no_docker = "boolean"}, {usage = USAGE})
  if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], USAGE)) end
  if not opts.bottle and not opts.agent then
    cork.error("usage", "plan needs --bottle NAME (or --agent NAME)\nusage: " .. USAGE)
  end
  local agent = opts.agent and manifest.named("agent", opts.agent) or nil
  local bottle_name = opts.bottle or agent.bottle
  if agent and opts.bottle and agent.bottle ~= opts.bottle then
    cork.log.warn(("agent %s names bottle %s; using --bottle %s"):format(agent.name, agent.bottle, opts.bottle))
  end
  local bottle = manifest.named("bottle", bottle_name)
  local subnets, why
  if not opts.no_docker then subnets, why = docker_subnets() end
  local p = plan.build(bottle, agent, {subnets = subnets})
  if not subnets then p.network.unchecked_reason = why or "--no-docker" end
  -- what a launch would stop at: every unset host variable, said now
  for _, m in ipairs(plan.unset_variables(p, bottle)) do
    cork.log.warn(m.message .. " (a launch would stop here)", {variable = m.variable, where = m.where})
  end
  local s = plan.summary(p, {contents = opts.contents})
  if opts.json or cork.core.settings().json then
    if cork.core.settings().json then
      cork.log.event("plan", {plan = s})
    else
      io.stdout:write(cork.log.redact(cork.json.encode(s)), "\n")
    end
  else
    io.stdout:write(cork.log.redact(cork.yaml.encode(s)))
  end
  return 0
end

return M
