-- cork.provision: the provisioning steps, as data.
--
-- After the agent's VM or container is up, the stock recipes run
-- `provision.steps` in order. The list is an ordinary value a user recipe
-- changes before it runs the stock recipe, without copying it:
--
--   local provision = require "cork.provision"
--   provision.steps:insert_after("ca", { name = "ripgrep", run = function(ctx)
--     ctx:exec({ "apt-get", "install", "-y", "ripgrep" })
--   end })
--   return require("cork.recipes").run("smolmachines", { ... })
--
-- A step is { name = "...", run = function(ctx) end }. ctx is the bottle
-- being provisioned:
--   ctx:exec(argv, {user=, env=, stdin=, check=true}) -> {status, stdout, stderr}
--   ctx:write(path, content, {mode=, owner=})   a file in the guest
--   ctx.plan, ctx.provider, ctx.env (the agent's env), ctx.backend, ctx.slug
local cork = require "cork"
local log = require "cork.log"

local M = {}

local Steps = {}
Steps.__index = Steps

local function check_step(step, what)
  if type(step) ~= "table" or type(step.name) ~= "string" or type(step.run) ~= "function" then
    error(what .. ": a step is { name = string, run = function(ctx) }", 3)
  end
end

function M.list(steps)
  local self = setmetatable({ items = {} }, Steps)
  for _, s in ipairs(steps or {}) do self:append(s) end
  return self
end

function Steps:index(name)
  for i, s in ipairs(self.items) do if s.name == name then return i end end
  return nil
end

local function must_index(self, name, what)
  local i = self:index(name)
  if not i then
    cork.error("usage", ("%s: no provisioning step named '%s' (steps: %s)"):format(what, tostring(name),
      table.concat(self:names(), ", ")))
  end
  return i
end

local function no_duplicate(self, step, what)
  if self:index(step.name) then
    cork.error("usage", ("%s: a step named '%s' already exists"):format(what, step.name))
  end
end

function Steps:append(step)
  check_step(step, "append"); no_duplicate(self, step, "append")
  table.insert(self.items, step); return self
end

function Steps:insert_before(name, step)
  check_step(step, "insert_before"); no_duplicate(self, step, "insert_before")
  table.insert(self.items, must_index(self, name, "insert_before"), step); return self
end

function Steps:insert_after(name, step)
  check_step(step, "insert_after"); no_duplicate(self, step, "insert_after")
  table.insert(self.items, must_index(self, name, "insert_after") + 1, step); return self
end

-- replace(name, step) or replace(name, function(ctx) ... end)
function Steps:replace(name, step)
  if type(step) == "function" then step = { name = name, run = step } end
  check_step(step, "replace")
  self.items[must_index(self, name, "replace")] = step; return self
end

function Steps:remove(name)
  table.remove(self.items, must_index(self, name, "remove")); return self
end

function Steps:names()
  local out = {}
  for i, s in ipairs(self.items) do out[i] = s.name end
  return out
end

-- Run every step in order; an error stops the run (the launch scope then
-- tears the bottle down). The error names the step, in its message and in
-- its `provision_step` field (which the `failed` event carries).
function Steps:run(ctx)
  for _, s in ipairs(self.items) do
    log.info(("provision: %s"):format(s.name), { provision = s.name })
    local ok, err = pcall(s.run, ctx)
    if not ok then
      if cork.is_error(err) then
        if not err.provision_step then
          err.provision_step = s.name
          err.message = ("provisioning step '%s' failed: %s"):format(s.name, tostring(err.message))
        end
        error(err, 0)
      end
      cork.error("provision", ("provisioning step '%s' failed: %s"):format(s.name, tostring(err)),
        { provision_step = s.name })
    end
  end
end

-- ---- the stock steps ------------------------------------------------------

local function sh_quote_path(p)
  if not p:match("^/[%w%._/%-]+$") then cork.error("usage", ("unsafe guest path: %s"):format(p)) end
  return p
end

-- ca: the bundle's CA certificates into the guest's trust store.
local function step_ca(ctx)
  local certs = {}
  for _, which in ipairs(ctx.plan.agent_ca.cas) do
    local slot = which == "egress" and ctx.plan.egress_plan.ca or ctx.plan.proxy_plan.ca
    if slot and slot.cert then certs[#certs + 1] = cork.fs.read(slot.cert) end
  end
  if #certs == 0 then return end
  local path = sh_quote_path(ctx.plan.agent_ca.path)
  ctx:write(path, table.concat(certs), { mode = "0644" })
  -- update-ca-certificates where the guest has it; the CA variables in the
  -- agent's env cover the rest.
  ctx:exec({ "sh", "-c", "command -v update-ca-certificates >/dev/null 2>&1 && update-ca-certificates >/dev/null 2>&1; exit 0" })
end

-- prompt: the bottle's and agent's prompt where the provider's CLI reads it.
local function step_prompt(ctx)
  local p = ctx.plan.prompt
  if not p then return end
  ctx:write(sh_quote_path(p.dest), p.text, { mode = "0644", owner = ctx.provider.user })
end

-- skills: each skill directory's files under the provider's skills dir.
local function step_skills(ctx)
  for _, s in ipairs(ctx.plan.skills or {}) do
    local function copy(src, dest)
      local st = cork.fs.stat(src)
      if not st then return end
      if st.type == "directory" then
        for _, n in ipairs(cork.fs.list(src)) do copy(src .. "/" .. n, dest .. "/" .. n) end
      elseif st.type == "file" then
        ctx:write(sh_quote_path(dest), cork.fs.read(src), { mode = "0644", owner = ctx.provider.user })
      end
    end
    copy(s.source, s.dest)
  end
end

-- git: the agent's git identity and the rewrites that send every upstream
-- through git-gate.
local function step_git(ctx)
  local user = ctx.provider.user
  local u = ctx.plan.git_user
  local gg = ctx.plan.git_gate_plan
  if u and u.name then ctx:exec({ "git", "config", "--global", "user.name", u.name }, { user = user }) end
  if u and u.email then ctx:exec({ "git", "config", "--global", "user.email", u.email }, { user = user }) end
  if gg and ctx.env.GIT_GATE_URL then
    for _, kv in ipairs(require("cork.gitgate").insteadof_config(gg, ctx.env.GIT_GATE_URL)) do
      ctx:exec({ "git", "config", "--global", "--add", kv.key, kv.value }, { user = user })
    end
  end
end

-- supervise: register the supervise MCP server with the agent's CLI.
local function step_supervise(ctx)
  local url = ctx.env.MCP_SUPERVISE_URL
  if not url then return end
  local argv = require("cork.plan").mcp_register_argv(ctx.plan, url)
  if argv then ctx:exec(argv, { user = ctx.provider.user }) end
end

-- isolation: before the bottle is handed over, check from inside the agent
-- that its first hop answers and that nothing it must not reach is
-- reachable (cork.isolation; kinds "unreachable" / "isolation").
local function step_isolation(ctx)
  if ctx.dry_run then log.info("would check the agent's isolation"); return end
  require("cork.isolation").run(ctx)
end

M.stock = {
  { name = "ca", run = step_ca },
  { name = "prompt", run = step_prompt },
  { name = "skills", run = step_skills },
  { name = "git", run = step_git },
  { name = "supervise", run = step_supervise },
  { name = "isolation", run = step_isolation },
}

-- The list the stock recipes run. Change it before running them.
M.steps = M.list(M.stock)

-- A fresh copy of the stock list.
function M.defaults() return M.list(M.stock) end

return M
