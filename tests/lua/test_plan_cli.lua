-- `cork plan`: human and --json output, usage errors, and no secret value
-- anywhere in the output.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
local cork = require "cork"

local fx <close> = F.setup()
local bin = os.getenv("CORK_BIN") or (os.getenv("CORK_ROOT") .. "/build/cork")

local function run(args, extra_env)
  local env = {HOME = fx.home, XDG_CONFIG_HOME = fx.home .. "/.config", XDG_STATE_HOME = fx.dir .. "/state",
    CORK_BUNDLE_IMAGE = "", DOCKER_HOST = "unix://" .. fx.dir .. "/no-docker.sock"}
  for k, v in pairs(F.secrets) do env[k] = v end
  for k, v in pairs(extra_env or {}) do env[k] = v end
  env.CORK_BUNDLE_IMAGE = nil
  local argv = {bin}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return cork.proc.run(argv, {env = env, cwd = fx.cwd, timeout = 30})
end

local function no_secret(text, name)
  local leaked = {}
  for k, v in pairs(F.secrets) do
    if text:find(v, 1, true) then leaked[#leaked + 1] = k end
    -- and no recognisable fragment of one either
    if text:find("FIXTURESECRET", 1, true) or text:find("SECRET", 1, true) then leaked[#leaked + 1] = k .. "(fragment)" end
  end
  T.is(#leaked, 0, name .. ": no secret value", table.concat(leaked, ", "))
end

-- --json: one event line holding the plan
local r = run({"--json", "plan", "--bottle", "dev"})
T.is(r.status, 0, "plan --json exits 0", r.stderr)
local lines = {}
for line in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = line end
local plan_event
for _, line in ipairs(lines) do
  local ok, ev = pcall(cork.json.decode, line)
  T.ok(ok, "stdout line is JSON")
  if ok and ev.event == "plan" then plan_event = ev end
end
T.ok(plan_event, "a plan event")
local p = plan_event and plan_event.plan or {}
T.like(p.slug, "^dev%-[a-z0-9]+$", "slug")
T.is(p.bottle and p.bottle.name, "dev", "bottle name")
T.is(p.egress_plan and p.egress_plan.token_env_map and p.egress_plan.token_env_map.EGRESS_TOKEN_2, "CORK_TEST_GITHUB_TOKEN",
  "token slots name host variables")
T.is(p.network and p.network.checked, false, "no Docker: subnet unchecked")
T.like(p.network and p.network.unchecked_reason, ".", "says why")
no_secret(r.stdout, "--json stdout")
no_secret(r.stderr, "--json stderr")

-- --json placed after the command works the same, and --contents shows the files
r = run({"plan", "--bottle", "dev", "--contents", "--json"})
T.is(r.status, 0, "plan --contents --json exits 0", r.stderr)
T.like(r.stdout, "api_allowlist", "rendered pipelock.yaml included")
T.like(r.stdout, "git daemon", "git-gate scripts included")
no_secret(r.stdout, "--contents stdout")

-- human output: YAML
r = run({"plan", "--bottle", "legacy", "--agent", "reviewer"})
T.is(r.status, 0, "human plan exits 0", r.stderr)
local ok, doc = pcall(cork.yaml.decode, r.stdout)
T.ok(ok and type(doc) == "table", "human output is YAML")
T.is(ok and doc.agent and doc.agent.name, "reviewer", "agent in the plan")
no_secret(r.stdout .. r.stderr, "human output")

-- --agent alone uses the agent's bottle
r = run({"plan", "--agent", "coder", "--no-docker"})
T.is(r.status, 0, "--agent alone", r.stderr)
T.like(r.stdout, "\nslug: coder%-", "slug from the agent")

-- errors: usage (2), invalid bottle (1 with the message), unknown option with a hint
r = run({"plan"})
T.is(r.status, 2, "no --bottle: exit 2")
T.like(r.stderr, "plan needs %-%-bottle NAME", "no --bottle: message")
r = run({"plan", "--botle", "dev"})
T.is(r.status, 2, "unknown option: exit 2")
T.like(r.stderr, "did you mean %-%-bottle", "unknown option: hint")
r = run({"plan", "--bottle", "ghost"})
T.is(r.status, 2, "missing bottle: exit 2 (a usage error, issue 19.10)")
T.like(r.stderr, 'no bottle named "ghost"', "missing bottle: message")
r = run({"plan", "--bottle", "dve"})
T.is(r.status, 2, "misspelled bottle: exit 2")
T.like(r.stderr, '^cork: no bottle named "dve"; did you mean "dev"%? %(looked in ', "misspelled bottle: did you mean")
r = run({"plan", "--bottle", "Dev"})
T.like(r.stderr, 'did you mean "dev"%?', "misspelled bottle: case aside")
cork.fs.write(fx.home .. "/.config/cork/bottles/broken.yaml", "agent: claude\nsupervize: true\n")
r = run({"plan", "--bottle", "broken"})
T.is(r.status, 2, "invalid bottle: exit 2 (manifest)")
T.like(r.stderr, "broken.yaml:2:1: supervize: unknown key %(did you mean \"supervise\"%?%)", "invalid bottle: file:line:col")
-- 19.9: unset host variables are warned about, with file:line, and plan still prints
r = run({"plan", "--bottle", "legacy", "--no-docker"}, {CORK_TEST_GITHUB_TOKEN = false})
T.is(r.status, 0, "plan with an unset variable: exit 0")
T.like(r.stderr, "warning: [^\n]*/legacy%.md:6:3: env GH_TOKEN: host variable CORK_TEST_GITHUB_TOKEN is not set "
  .. "%(a launch would stop here%)\n", "plan warns about the env entry's variable, with file:line:col")
T.like(r.stderr, "warning: [^\n]*/legacy%.md:18:7: egress token EGRESS_TOKEN_1: host variable CORK_TEST_GITHUB_TOKEN "
  .. "is not set", "and about the egress token's")
r = run({"plan", "--bottle", "legacy", "--no-docker"})
T.unlike(r.stderr, "is not set", "no warning when every variable is set")
r = run({"help", "plan"})
T.is(r.status, 0, "help plan")
T.like(r.stdout, "usage: cork plan", "help text")
T.done()
