-- cork.providers: agent provider templates (claude, codex, custom).
--
-- A template says what an agent provider needs from the bottle around it: the
-- hosts its own CLI talks to (pipelock's default allowlist), the placeholder
-- env its CLI wants before it starts (real credentials never enter the agent:
-- egress adds them on the wire), the command that starts it, its user and
-- home in the guest, and how it registers an MCP server.
local M = {}

-- The value a placeholder credential has inside the agent. egress replaces the
-- Authorization header on the wire; the CLI only needs something non-empty.
M.PLACEHOLDER = "cork-placeholder-injected-by-egress"

M.templates = {
  claude = {
    hosts = {"api.anthropic.com", "statsig.anthropic.com", "console.anthropic.com",
             "claude.ai"},
    env = {
      ANTHROPIC_API_KEY = M.PLACEHOLDER,
      DISABLE_AUTOUPDATER = "1",
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1",
    },
    command = {"claude"},
    -- where egress adds the agent's own credential (agent.token_ref)
    api = {host = "api.anthropic.com", auth = "header:x-api-key"},
    image = "cork-agent-claude:latest",
    user = "agent",
    home = "/home/agent",
    -- argv run as the agent user once the supervise URL is known
    mcp_register = {"claude", "mcp", "add", "--scope", "user", "--transport", "http",
                    "{name}", "{url}"},
    prompt_file = ".claude/CLAUDE.md",
    skills_dir = ".claude/skills",
  },
  codex = {
    hosts = {"api.openai.com", "auth.openai.com", "chatgpt.com"},
    env = {OPENAI_API_KEY = M.PLACEHOLDER},
    command = {"codex"},
    api = {host = "api.openai.com", auth = "bearer"},
    image = "cork-agent-codex:latest",
    user = "agent",
    home = "/home/agent",
    mcp_register = {"codex", "mcp", "add", "{name}", "--url", "{url}"},
    prompt_file = ".codex/AGENTS.md",
    skills_dir = ".codex/skills",
  },
  custom = {
    hosts = {},
    env = {},
    command = nil,          -- the bottle must give one
    image = nil,
    user = "agent",
    home = "/home/agent",
    mcp_register = nil,
    prompt_file = "AGENTS.md",
    skills_dir = ".skills",
  },
}

M.names = {"claude", "codex", "custom"}

local copy = require("cork.util").copy

-- The provider for a bottle's normalized `agent` block: the template with the
-- bottle's overrides applied. Returns a fresh table.
function M.resolve(agent)
  agent = agent or {provider = "claude"}
  local name = agent.provider or "claude"
  local tpl = assert(M.templates[name], "unknown provider " .. tostring(name))
  local p = copy(tpl)
  p.name = name
  if agent.image then p.image = agent.image end
  if agent.from then p.from = agent.from end
  if agent.command then p.command = copy(agent.command) end
  if agent.user then p.user = agent.user end
  if agent.home then p.home = agent.home
  elseif agent.user and agent.user ~= tpl.user then
    p.home = agent.user == "root" and "/root" or ("/home/" .. agent.user)
  end
  if agent.hosts then
    for _, h in ipairs(agent.hosts) do p.hosts[#p.hosts + 1] = h end
  end
  return p
end

return M
