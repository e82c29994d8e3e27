-- cork.manifest: locations, formats, extends, env, agents.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
local cork = require "cork"
local manifest = require "cork.manifest"

local fx <close> = F.setup()
local env = fx.env
local O = {env = env}
local cfg = fx.home .. "/.config/cork"

-- ---- locations --------------------------------------------------------------
T.same(manifest.dirs(O), {
  bottles = {cfg .. "/bottles", fx.home .. "/.bot-bottle/bottles"},
  agents = {cfg .. "/agents", fx.home .. "/.bot-bottle/agents", fx.cwd .. "/.cork/agents"},
}, "search dirs: XDG config dir, then ~/.bot-bottle; agents also ./.cork/agents")
do
  local e2 = {}
  for k, v in pairs(env) do e2[k] = v end
  e2.XDG_CONFIG_HOME = fx.dir .. "/xdg"
  T.is(manifest.dirs({env = e2}).bottles[1], fx.dir .. "/xdg/cork/bottles", "XDG_CONFIG_HOME honoured")
  e2.XDG_CONFIG_HOME = "relative/dir"
  T.is(manifest.dirs({env = e2}).bottles[1], cfg .. "/bottles", "a relative XDG_CONFIG_HOME is ignored")
end
T.is(manifest.find_bottle("dev", O), cfg .. "/bottles/dev.yaml", "bottle found in the config dir")
T.is(manifest.find_bottle("legacy", O), fx.home .. "/.bot-bottle/bottles/legacy.md", "bottle found in ~/.bot-bottle")
local err = T.raises(function() manifest.find_bottle("nope", O) end, "not_found", nil, "missing bottle")
T.is(err and err.message, ('no bottle named "nope" (looked in %s/bottles, %s/.bot-bottle/bottles; `cork bottles` lists them)'):format(cfg, fx.home),
  "missing bottle: exact message")
err = T.raises(function() manifest.find_bottle("lgeacy", O) end, "not_found", nil, "misspelled bottle")
T.is(err and err.suggestion, "legacy", "misspelled bottle: the suggestion")
T.like(err and err.message, '^no bottle named "lgeacy"; did you mean "legacy"%? %(looked in', "and in the message")
err = T.raises(function() manifest.find_agent("codr", O) end, "not_found", nil, "misspelled agent")
T.like(err and err.message, '^no agent named "codr"; did you mean "coder"%?', "misspelled agent: did you mean")
err = T.raises(function() manifest.named("bottle", "lgeacy", O) end, "not_found", nil, "named(): not_found still")
T.is(err and err.exit_code, 2, "named(): with exit code 2, a usage error's")
err = T.raises(function() manifest.find_bottle("../../etc/passwd", O) end, "usage", nil, "a path is not a name")
T.is(err and err.message, 'bottle name "../../etc/passwd" is not a plain name (bottles and agents are named, not given as paths)',
  "path as name: exact message")
T.same(manifest.list("bottle", O), {"base", "child", "cycle-a", "cycle-b", "cycle-c", "dev", "grandchild", "legacy",
  "minimal", "orphan", "orphan-child", "self"}, "list bottles")
T.same(manifest.list("agent", O), {"coder", "local", "reviewer"}, "list agents")

-- A bottle inside a git working tree is ignored with a warning.
do
  local repo = fx.dir .. "/repo"
  cork.fs.mkdir(repo .. "/.git/objects")
  cork.fs.mkdir(repo .. "/cfg/cork/bottles")
  cork.fs.write(repo .. "/cfg/cork/bottles/dev.yaml", "agent: codex\n")
  local e2 = {}
  for k, v in pairs(env) do e2[k] = v end
  e2.XDG_CONFIG_HOME = repo .. "/cfg"
  local warnings = {}
  local warn = function(msg) warnings[#warnings + 1] = msg end
  err = T.raises(function() manifest.find_bottle("dev", {env = e2, warn = warn}) end,
    "not_found", nil, "the only copy is in a git tree: not found")
  T.is(#warnings, 1, "one warning")
  T.is(warnings[1], ("ignoring bottle %s/cfg/cork/bottles/dev.yaml: it is inside the git working tree %s "
    .. "(bottles load only from your own config directory; if that tree is your own, trust the directory "
    .. "with CORK_TRUSTED_DIRS=%s/cfg/cork/bottles, see docs/manifests.md)"):format(repo, repo, repo),
    "warning names file and tree, and how to trust the directory")
  -- 19.18: an operator whose config dir is in a git tree of their own trusts it
  for _, trusted in ipairs({repo .. "/cfg/cork/bottles", repo .. "/cfg/", "/nowhere:" .. repo .. "/cfg"}) do
    e2.CORK_TRUSTED_DIRS = trusted
    T.is(manifest.find_bottle("dev", {env = e2, warn = warn}), repo .. "/cfg/cork/bottles/dev.yaml",
      "CORK_TRUSTED_DIRS=" .. trusted:gsub(fx.dir, "...") .. ": the bottle in a trusted git tree loads")
  end
  e2.CORK_TRUSTED_DIRS = repo .. "/cf"
  T.raises(function() manifest.find_bottle("dev", {env = e2, warn = warn}) end, "not_found", nil,
    "a trusted dir is a directory, not a prefix of a name")
  e2.CORK_TRUSTED_DIRS = nil
  -- a copy outside the tree, further down the search path, is used instead
  cork.fs.write(fx.home .. "/.bot-bottle/bottles/dev.md", "---\nagent: codex\n---\n")
  T.is(manifest.find_bottle("dev", {env = e2, warn = warn}), fx.home .. "/.bot-bottle/bottles/dev.md",
    "git-tree bottle skipped for the next one")
  cork.fs.remove(fx.home .. "/.bot-bottle/bottles/dev.md")
  -- a .git file (worktrees, submodules) counts too
  cork.fs.remove(repo .. "/.git", {recursive = true})
  cork.fs.write(repo .. "/.git", "gitdir: /elsewhere\n")
  T.is(manifest.git_worktree_of(repo .. "/cfg/cork/bottles/dev.yaml"), repo, ".git file detected")
  cork.fs.remove(repo .. "/.git")
  T.is(manifest.git_worktree_of(repo .. "/cfg/cork/bottles/dev.yaml"), nil, "no .git: not a tree")
end

-- ---- the full YAML bottle ------------------------------------------------------
local dev = manifest.load_bottle("dev", O)
T.is(dev.kind, "bottle", "kind")
T.is(dev.name, "dev", "name from the file name")
T.same(dev.chain, {"dev"}, "chain")
T.same(dev.agent, {provider = "claude"}, "agent: provider string")
T.same(dev.env.EDITOR, {name = "EDITOR", source = "literal", secret = false, value = "vim",
  where = cfg .. "/bottles/dev.yaml:5:3"}, "literal env")
T.is(dev.env.LOG_LEVEL.value, "3", "number env value as string")
T.is(dev.env.DEBUG.value, "false", "boolean env value as string")
T.same({dev.env.DB_PASSWORD.source, dev.env.DB_PASSWORD.secret, dev.env.DB_PASSWORD.prompt},
  {"ask", true, "DB_PASSWORD"}, '"?" asks, prompt is the name')
T.is(dev.env.STAGING_TOKEN.prompt, "Staging API token", '"?text" asks with the text')
T.same({dev.env.ANTHROPIC_API_KEY.source, dev.env.ANTHROPIC_API_KEY.secret, dev.env.ANTHROPIC_API_KEY.vars},
  {"host", true, {"CORK_TEST_ANTHROPIC_KEY"}}, "${VAR} copies from the host, secret")
T.same(dev.env.COMBINED.vars, {"CORK_TEST_USER", "CORK_TEST_HOST"}, "interpolation inside a string")
T.is(dev.env.LITERAL_DOLLAR.value, "price: $${not_a_var}", "$${ is a literal ${")
T.is(dev.env.LITERAL_DOLLAR.secret, false, "escaped: literal, not secret")
T.is(#dev.git.remotes, 3, "three remotes")
T.same({dev.git.remotes[1].name, dev.git.remotes[1].host, dev.git.remotes[1].port, dev.git.remotes[1].scheme},
  {"app", "github.com", 22, "ssh"}, "scp-like remote")
T.same({dev.git.remotes[2].name, dev.git.remotes[2].host, dev.git.remotes[2].port},
  {"lib", "git.example.com", 2222}, "ssh:// remote with port, name from the URL")
T.same({dev.git.remotes[3].name, dev.git.remotes[3].scheme}, {"docs", "https"}, "https remote")
T.same(dev.git.user, {name = "Dev Bot", email = "dev-bot@example.com"}, "git user")
T.is(#dev.egress.routes, 4, "routes")
T.same({dev.egress.routes[2].host, dev.egress.routes[2].auth, dev.egress.routes[2].token_ref,
  dev.egress.routes[2].paths, dev.egress.routes[2].tls_passthrough},
  {"api.github.com", "bearer", "CORK_TEST_GITHUB_TOKEN", {"/repos/acme/*"}, true},
  "route fields; tls_passthrough defaults to true with auth")
T.same({dev.egress.routes[4].auth, dev.egress.routes[4].tls_passthrough}, {"none", false},
  "route without auth: none, no passthrough")
T.same(dev.allowlist, {"files.pythonhosted.org", "*.npmjs.org"}, "allowlist")
T.is(dev.supervise, true, "supervise")
T.is(dev.prompt, "Work on acme/app. Run the tests before pushing.\n", "prompt")

-- ---- bot-bottle Markdown bottle, unchanged ---------------------------------------
local legacy = manifest.load_bottle("legacy", O)
T.is(legacy.format, "markdown", "markdown format")
T.is(legacy.prompt, "You maintain acme/legacy.\n\nKeep changes small.", "body is the prompt")
T.is(legacy.git.remotes[1].name, "legacy", "repos: is an alias of remotes")
T.same(legacy.git.remotes[1].host_keys,
  {"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"},
  "known_hosts-style host key kept")
T.same({legacy.egress.routes[1].auth, legacy.egress.routes[1].tls_passthrough}, {"token", false},
  "explicit tls_passthrough wins")
T.is(legacy.env.GH_TOKEN.source, "host", "unquoted ${VAR} in front matter")
T.is(legacy.description, "A bottle written for bot-bottle, loaded unchanged.", "description")

-- ---- extends -------------------------------------------------------------------
local child = manifest.load_bottle("child", O)
T.same(child.chain, {"child", "base"}, "chain child -> base")
T.is(child.env.EDITOR.value, "vim", "env: child wins")
T.is(child.env.PAGER.value, "less", "env: parent's other keys kept")
T.is(child.env.SHARED_TOKEN.source, "host", "env: parent's secret kept")
T.same(child.git.user, {name = "Base Bot", email = "child@example.com"}, "git.user merged field by field")
T.same(child.allowlist, {"crates.io"}, "allowlist replaced whole")
T.same(child.agent, {provider = "codex"}, "agent inherited")
T.is(child.supervise, true, "supervise inherited")
T.is(child.prompt, "base prompt", "prompt inherited")
local gc = manifest.load_bottle("grandchild", O)
T.same(gc.chain, {"grandchild", "child", "base"}, "three-level chain")
T.is(gc.supervise, false, "false replaces true")
T.is(gc.prompt, "grandchild prompt from the Markdown body", "markdown body replaces the prompt")
T.same(gc.allowlist, {"crates.io"}, "middle's block kept")
T.is(gc.file, cfg .. "/bottles/grandchild.md", "file is the child's")

err = T.raises(function() manifest.load_bottle("cycle-a", O) end, "manifest", nil, "cycle")
T.is(err and err.message, cfg .. "/bottles/cycle-c.yaml:1:1: extends: cycle in bottle chain cycle-a -> cycle-b -> cycle-c -> cycle-a",
  "cycle: exact message names the chain")
T.same(err and err.chain, {"cycle-a", "cycle-b", "cycle-c", "cycle-a"}, "cycle: chain detail")
err = T.raises(function() manifest.load_bottle("self", O) end, "manifest", nil, "self reference")
T.is(err and err.message, cfg .. '/bottles/self.yaml:2:1: extends: bottle "self" extends itself', "self: exact message")
err = T.raises(function() manifest.load_bottle("orphan-child", O) end, "manifest", nil, "missing parent")
T.is(err and err.message, ('%s/bottles/orphan.yaml:2:1: extends: parent bottle "nowhere" not found '
  .. '(chain orphan-child -> orphan -> nowhere; looked in %s/bottles, %s/.bot-bottle/bottles)'):format(cfg, cfg, fx.home),
  "missing parent: exact message names the chain")
err = T.raises(function() manifest.load_bottle("nope", O) end, "not_found", nil, "missing bottle itself: not_found")

-- ---- agents --------------------------------------------------------------------
local rev = manifest.load_agent("reviewer", O)
T.same({rev.kind, rev.name, rev.bottle, rev.prompt}, {"agent", "reviewer", "legacy", "Review the open pull requests."},
  "bot-bottle agent file")
T.same(rev.git.user, {name = "Reviewer Bot"}, "agent git user override")
T.is(rev.skills[1].spec, "lint", "agent skills")
T.is(manifest.load_agent("local", O).bottle, "minimal", "agent from ./.cork/agents")
T.is(manifest.find_agent("coder", O), cfg .. "/agents/coder.yaml", "the repo cannot shadow the operator's agent")
err = T.raises(function() manifest.load_agent("ghost", O) end, "not_found", nil, "missing agent")

-- ---- env resolution at launch ----------------------------------------------------
do
  local asked = {}
  local values = manifest.resolve_env(dev, {env = env, ask = function(prompt, name)
    asked[#asked + 1] = name .. "=" .. prompt
    return "typed-" .. name
  end})
  T.same(asked, {"DB_PASSWORD=DB_PASSWORD", "STAGING_TOKEN=Staging API token"}, "asked in name order with prompts")
  T.is(values.ANTHROPIC_API_KEY, F.secrets.CORK_TEST_ANTHROPIC_KEY, "${VAR} copied")
  T.is(values.COMBINED, "user:" .. F.secrets.CORK_TEST_USER .. "@" .. F.secrets.CORK_TEST_HOST, "interpolated")
  T.is(values.EDITOR, "vim", "literal")
  T.is(values.DB_PASSWORD, "typed-DB_PASSWORD", "asked value")
  T.is(cork.log.redact("x " .. values.COMBINED .. " " .. values.DB_PASSWORD), "x *** ***", "resolved secrets are registered")
  T.is(cork.log.redact("vim"), "vim", "literals are not secrets")
  local e2 = {HOME = env.HOME}
  err = T.raises(function() manifest.resolve_env(dev, {env = e2, ask = function() return "x" end}) end, "env", nil,
    "unset host variable")
  T.is(err and err.message, cfg .. "/bottles/dev.yaml:10:3: env ANTHROPIC_API_KEY: host variable CORK_TEST_ANTHROPIC_KEY is not set",
    "unset host variable: exact message, no value")
  err = T.raises(function() manifest.resolve_env(dev, {env = env, ask = function() return nil end}) end, "env", nil,
    "no terminal")
  T.like(err and err.message, "env DB_PASSWORD asks for a value on the terminal, but there is no terminal", "no tty message")
end

-- ---- pure helpers ----------------------------------------------------------------
T.same({manifest.split_front_matter("---\na: 1\n---\nbody\n")}, {"a: 1\n", "body\n", 1}, "front matter split")
T.same({manifest.split_front_matter("no front matter")}, {"", "no front matter", 0}, "no front matter")
T.same({manifest.split_front_matter("---\r\na: 1\r\n---\r\nbody")}, {"a: 1\r\n", "body", 1}, "CRLF front matter")
T.is(manifest.expand("a${X}b$${Y}c$d", function(v) return v:lower() end), "axb${Y}c$d", "expand")
T.same(manifest.parse_git_url("https://github.com/a/b.git"), {scheme = "https", host = "github.com", port = 443,
  path = "/a/b.git"}, "https URL")
T.done()
