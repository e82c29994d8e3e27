-- bot-bottle's own bottle and agent files load as they are: every era of the
-- format (tests/fixtures/manifest/twins/bot-bottle) has a native twin
-- (twins/native) and `cork plan --json` shows the same plan for both;
-- extends chains mix the two formats both ways; each field cork has no
-- equivalent for is one warning; `cork import-bottle` prints a native file
-- whose plan is the same again.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
local cork = require "cork"
local manifest = require "cork.manifest"

local root = os.getenv("CORK_ROOT") .. "/tests/fixtures/manifest/twins"
local bin = os.getenv("CORK_BIN") or (os.getenv("CORK_ROOT") .. "/build/cork")
local dir = cork.fs.tempdir("cork-twins-")
local _ <close> = setmetatable({}, {__close = function() cork.fs.remove(dir, {recursive = true}) end})

-- HOME holds the bot-bottle files (~/.bot-bottle); XDG config "a" holds the
-- native halves of mixed chains, "b" the native twins (found first, so they
-- shadow every bot-bottle file of the same name), "c" the imported files.
local home = dir .. "/home"
F.copy_tree(root .. "/bot-bottle", home .. "/.bot-bottle/bottles")
F.copy_tree(root .. "/agents-bot-bottle", home .. "/.bot-bottle/agents")
F.copy_tree(F.root .. "/home/.bot-bottle/skills", home .. "/.bot-bottle/skills")
F.copy_tree(F.root .. "/home/keys", home .. "/keys")
F.copy_tree(root .. "/config", dir .. "/a/cork/bottles")
F.copy_tree(root .. "/native", dir .. "/b/cork/bottles")
F.copy_tree(root .. "/agents-native", dir .. "/b/cork/agents")
cork.fs.mkdir(dir .. "/c/cork/bottles", tonumber("0700", 8))
cork.fs.mkdir(dir .. "/c/cork/agents", tonumber("0700", 8))
cork.fs.mkdir(dir .. "/cwd", tonumber("0700", 8))

local function run(xdg, args)
  local env = {HOME = home, XDG_CONFIG_HOME = dir .. "/" .. xdg, XDG_STATE_HOME = dir .. "/state",
    DOCKER_HOST = "unix://" .. dir .. "/no-docker.sock"}
  for k, v in pairs(F.secrets) do env[k] = v end
  local argv = {bin}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return cork.proc.run(argv, {env = env, cwd = dir .. "/cwd", timeout = 30})
end

-- The plan with what names its files (file, files, where) left out, the
-- random slug replaced and the slug-derived subnet dropped.
local function strip(v)
  if type(v) ~= "table" then return v end
  for _, k in ipairs({"file", "files", "where"}) do v[k] = nil end
  for _, x in pairs(v) do strip(x) end
  return v
end
local function plan_of(xdg, args)
  local argv = {"plan", "--json", "--no-docker"}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = run(xdg, argv)
  if r.status ~= 0 then return nil, r end
  local p
  for line in r.stdout:gmatch("[^\n]+") do
    local ev = cork.json.decode(line)
    if ev.event == "plan" then p = ev.plan end
  end
  local text = cork.json.encode(p):gsub(p.slug:gsub("%-", "%%-"), "SLUG")
  p = cork.json.decode(text)
  p.network, p.bundle.ip = nil, nil
  return strip(p), r
end

local names = {}
for _, f in ipairs(cork.fs.list(root .. "/bot-bottle")) do names[#names + 1] = f:match("^(.-)%.") end
for _, f in ipairs(cork.fs.list(root .. "/config")) do names[#names + 1] = f:match("^(.-)%.") end
table.sort(names)
T.ok(#names >= 7, "twin pairs: " .. table.concat(names, ", "))

-- ---- every bot-bottle file's plan equals its native twin's -----------------------
local warned = {}
for _, name in ipairs(names) do
  local got, r1 = plan_of("a", {"--bottle", name})
  local want, r2 = plan_of("b", {"--bottle", name})
  T.ok(got, name .. ": loads as bot-bottle / mixed", got == nil and r1.stderr or nil)
  T.ok(want, name .. ": native twin loads", want == nil and r2.stderr or nil)
  if got and want then
    T.same(got, want, name .. ": plan --json equals the native twin's")
    T.unlike(r2.stderr, "warning:", name .. ": the native twin warns about nothing")
    warned[name] = r1.stderr
  end
end
do
  local got, r1 = plan_of("a", {"--agent", "bb-reviewer"})
  local want = plan_of("b", {"--agent", "bb-reviewer"})
  T.ok(got and want, "agent with Claude subagent fields: both load", r1.stderr)
  T.same(got, want, "agent with Claude subagent fields: plan equals the native twin's")
  T.is(got and got.prompt and got.prompt.text, "Review the open pull requests.\n", "the body is the prompt")
  local n = 0
  for _ in r1.stderr:gmatch("a Claude subagent field; cork does not use it") do n = n + 1 end
  T.is(n, 3, "model, color, memory: one warning each")
end

-- ---- what the plans hold (the mapping, not only the equality) --------------------
do
  local p = plan_of("a", {"--bottle", "era-remotes"})
  local gg = p and p.git_gate_plan or {}
  T.same({gg.upstreams and gg.upstreams[1].name, gg.upstreams and gg.upstreams[2].name}, {"app", "lib"},
    "git.remotes mapping: Name, else the name from the Upstream, in file order")
  T.same(gg.extra_hosts, {"github.com:140.82.112.3"}, "ExtraHosts become HOST:IP")
  T.is(p and p.provider.name, "codex", "agent_provider.template")
  T.is(p and p.egress_plan.token_env_map.EGRESS_TOKEN_1, "CORK_TEST_OPENAI_KEY",
    "agent_provider.auth_token: egress adds it for the provider's API host")
  T.same(p and p.egress_plan.routes, {{host = "api.openai.com", auth = "bearer", token_env = "EGRESS_TOKEN_1"}},
    "the provider's API route")
  p = plan_of("a", {"--bottle", "era-gitgate"})
  T.same(p and p.egress_plan.routes[1], {host = "api.github.com", auth = "bearer", token_env = "EGRESS_TOKEN_1",
    paths = {"/repos/acme/*", "/user"}}, "auth mapping (Bearer) and path_allowlist")
  T.same(p and p.proxy_plan.passthrough, {"gitea.example.com"}, "pipelock.tls_passthrough, both ways")
  T.same(p and p.proxy_plan.ip_allowlist, {"10.0.0.0/8", "192.168.7.1/32"},
    "pipelock.ssrf_ip_allowlist of every route: bundle.ip_allowlist (a bare address is a /32)")
  T.like(p and p.proxy_plan.config or "", "\nssrf:\n  ip_allowlist:\n  %- 10%.0%.0%.0/8\n", "in pipelock.yaml")
  p = plan_of("a", {"--bottle", "era-matches"})
  T.same(p and p.egress_plan.routes[1].paths, {"/repos/acme/*", "/user", "/search*"},
    "matches: prefix paths end in *, exact ones do not")
  T.is(p and p.egress_plan.routes[2].paths, nil, "a match without paths allows every path")
  p = plan_of("a", {"--bottle", "mixed-child"})
  T.same(p and p.bottle.chain, {"mixed-child", "bb-parent"}, "a native child of a bot-bottle parent")
  T.same(p and p.git_user, {name = "Parent Bot", email = "child@example.com"}, "git.user merged field by field")
  T.same(p and {p.agent_env.EDITOR, p.agent_env.PAGER}, {"vim", "less"}, "env merged key by key")
  T.ok(p and p.supervise_plan, "supervise inherited")
  p = plan_of("a", {"--bottle", "bb-child"})
  T.same(p and p.bottle.chain, {"bb-child", "native-parent"}, "a bot-bottle child of a native parent")
  T.same(p and p.git_gate_plan and p.git_gate_plan.upstreams[1].url, "ssh://git@github.com/acme/child.git",
    "git.remotes replaced whole")
  T.is(p and #p.git_gate_plan.upstreams, 1, "the parent's remote is gone")
  T.is(p and p.supervise_plan, nil, "supervise: false replaces true")
  T.same(p and {p.agent_env.EDITOR, p.agent_env.LANG}, {"nano", "C.UTF-8"}, "env merged key by key")
  T.same(p and p.git_user, {name = "BB Child", email = "np@example.com"}, "git.user merged field by field")
end

-- ---- warnings: one line per field, FILE:LINE:COL: PATH: what cork does ------------
local function warnings(name)
  local path = root .. "/bot-bottle/" .. name .. ".md"
  local _, meta = manifest.parse(cork.fs.read(path), name .. ".md", "bottle")
  return meta.warnings
end
T.same(warnings("era-remotes"), {
  "era-remotes.md:5:3: agent_provider.dockerfile: cork does not build agent images; not used "
    .. "(give agent.image for docker, agent.from for smolmachines)",
  "era-remotes.md:7:3: agent_provider.forward_host_credentials: cork never forwards host credentials into "
    .. "the agent (egress adds them on the wire); not used",
}, "era-remotes: dockerfile and forward_host_credentials warn")
T.same(warnings("era-gitgate"), {
  "era-gitgate.md:17:7: egress.routes[1].role: cork has no route roles; \"forge\" is not used",
}, "era-gitgate: role warns; key.provider static and ssrf_ip_allowlist do not")
T.same(warnings("era-matches"), {
  "era-matches.md:14:11: egress.routes[1].matches[1].methods: cork's egress does not restrict methods; "
    .. "every method is allowed on these paths",
  "era-matches.md:16:11: egress.routes[1].matches[2].headers: cork's egress does not match on headers; not used",
  "era-matches.md:18:9: egress.routes[1].dlp.outbound_detectors: cork's filter runs all its detectors "
    .. "(aws_access_key, aws_secret_key, github_token, github_pat, gitlab_pat, slack_token, private_key, "
    .. "anthropic_key, openai_key, jwt) on every request to every host; this list neither narrows nor "
    .. "extends them; cork has no detector for pii",
  "era-matches.md:19:9: egress.routes[1].dlp.inbound_detectors: cork does not scan responses; not used",
  "era-matches.md:20:9: egress.routes[1].dlp.outbound_on_match: cork blocks a request that matches a "
    .. "detector (it does not redact)",
  "era-matches.md:24:11: egress.routes[2].matches[1].methods: cork's egress does not restrict methods; "
    .. "every method is allowed on these paths",
}, "era-matches: methods, headers and dlp warn; outbound_on_match: block does not")
T.same(warnings("bb-parent"), {}, "bb-parent: everything maps")
T.like(warned["era-remotes"] or "", "warning: [^\n]*era%-remotes%.md:5:3: agent_provider%.dockerfile: ",
  "cork plan shows the warnings on stderr")
do
  local text = "git-gate:\n  key: {provider: gitea}\n  repos:\n    app: {url: 'https://x.example/a.git'}\n"
    .. "egress:\n  routes:\n    - host: a.example\n      dlp: {outbound_on_match: supervise}\n"
    .. "git:\n  remotes:\n    gh.example:\n      Upstream: ssh://git@ssh.gh.example:443/a/b.git\n"
    .. "      IdentityFile: ~/k\n      KnownHostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq\n"
  local ok, err = pcall(manifest.parse, text, "g.yaml", "bottle")
  T.is(ok, false, "git and git-gate together: an error")
  T.is(not ok and err.message, 'g.yaml:1:1: git-gate: "git-gate" is also given as "git"; keep one',
    "git and git-gate: exact message")
  local _, meta = manifest.parse(text:gsub("git:\n.*$", ""), "g.yaml", "bottle")
  T.same(meta.warnings, {
    "g.yaml:2:9: git-gate.key.provider: cork does not mint deploy keys through Gitea; each ssh repo uses "
      .. "its own identity file",
    "g.yaml:8:13: egress.routes[1].dlp.outbound_on_match: cork blocks a request that matches a detector "
      .. "(it does not ask supervise)",
  }, "key.provider gitea and outbound_on_match supervise warn")
  _, meta = manifest.parse(text:gsub("^.-git:\n", "git:\n"), "h.yaml", "bottle")
  T.same(meta.warnings, {"h.yaml:3:5: git.remotes.gh.example: the Upstream's host is ssh.gh.example; "
    .. "cork goes by the Upstream and does not use this key"}, "a remotes key that is not the Upstream's host")
end

-- an auth mapping with the token_ref beside it (a half-moved file) loads
do
  local doc = manifest.parse("egress: {routes: [{host: a.example, auth: {scheme: Bearer}, token_ref: X}]}\n",
    "m.yaml", "bottle")
  T.same({doc.egress.routes[1].auth, doc.egress.routes[1].token_ref}, {"bearer", "X"},
    "auth: {scheme} with token_ref beside it")
end

-- the detector names are the bundle's own
do
  local botbottle = require "cork.botbottle"
  local py = cork.fs.read(os.getenv("CORK_ROOT") .. "/lua/cork/assets/bundle/detectors.py")
  local names = {}
  for n in py:match("DEFAULTS = %[(.-)\n%]"):gmatch('%("([%w_]+)", r"') do names[#names + 1] = n end
  T.same(botbottle.DETECTORS, names, "botbottle.DETECTORS are detectors.py's, in its order")
  T.same(botbottle.missing_detectors({"aws", "GitHub", "private-key", "jwt", "pii", "prompt_injection"}),
    {"pii", "prompt_injection"}, "bot-bottle detector names cork has no detector for")
end

-- ---- cork import-bottle: the native text, whose plan is the same again ----------
for _, f in ipairs(cork.fs.list(root .. "/bot-bottle")) do
  local name = f:match("^(.-)%.")
  local r = run("a", {"import-bottle", home .. "/.bot-bottle/bottles/" .. f})
  T.is(r.status, 0, f .. ": import-bottle exits 0", r.stderr)
  T.like(r.stderr, "note: comments in [^\n]* are not carried over", f .. ": says comments are lost")
  cork.fs.write(dir .. "/c/cork/bottles/" .. f, r.stdout)
  local _, meta = manifest.parse(r.stdout, f, "bottle")
  T.is(meta.botbottle, false, f .. ": the output is native (no bot-bottle form left)")
  T.same(meta.warnings, {}, f .. ": the output loads without warnings")
end
-- native_text reads back to the same document, for every fixture of both
-- formats (key order, quoting, block scalars, lists of mappings)
do
  local botbottle = require "cork.botbottle"
  local files = {}
  for _, sub in ipairs({"twins/bot-bottle", "twins/native", "twins/config", "twins/agents-bot-bottle",
    "twins/agents-native", "home/.config/cork/bottles", "home/.bot-bottle/bottles", "home/.bot-bottle/agents",
    "home/.config/cork/agents"}) do
    for _, f in ipairs(cork.fs.list(F.root .. "/" .. sub)) do files[#files + 1] = sub .. "/" .. f end
  end
  local same, n = {}, 0
  for _, f in ipairs(files) do
    local kind = f:find("agents") and "agent" or "bottle"
    local ok, doc, meta = pcall(manifest.parse, cork.fs.read(F.root .. "/" .. f), f, kind)
    if ok then
      n = n + 1
      local text = botbottle.native_text(doc, meta, kind, meta.warnings, cork.yaml)
      local ok2, back = pcall(manifest.parse, text, f, kind)
      if not ok2 then same[#same + 1] = f .. ": " .. tostring(back.message or back)
      else
        local function deq(x, y)
          if type(x) ~= "table" or type(y) ~= "table" then return x == y end
          for k, v in pairs(x) do if not deq(v, y[k]) then return false end end
          for k in pairs(y) do if x[k] == nil then return false end end
          return true
        end
        if not deq(doc, back) or (meta.body or "") :gsub("%s+$", "") ~= (select(2, manifest.parse(text, f, kind)).body
          or ""):gsub("%s+$", "") then
          same[#same + 1] = f .. ": differs\n" .. text
        end
      end
    end
  end
  T.ok(n >= 25, ("native_text round trip over %d fixtures"):format(n))
  T.is(#same, 0, "native_text reads back to the same document", table.concat(same, "\n"))
end
for _, f in ipairs(cork.fs.list(dir .. "/a/cork/bottles")) do
  cork.fs.write(dir .. "/c/cork/bottles/" .. f, cork.fs.read(dir .. "/a/cork/bottles/" .. f))
end
for _, name in ipairs(names) do
  local got, r = plan_of("c", {"--bottle", name})
  local want = plan_of("b", {"--bottle", name})
  T.ok(got, name .. ": the imported file loads", got == nil and r.stderr or nil)
  T.same(got, want, name .. ": the imported file's plan equals the twin's")
end
do
  local r = run("a", {"import-bottle", home .. "/.bot-bottle/agents/bb-reviewer.md"})
  T.is(r.status, 0, "import-bottle of an agent file", r.stderr)
  local doc = manifest.parse(r.stdout, "x.md", "agent")
  T.same({doc.bottle, doc.model, doc.name}, {"era-gitgate", nil, "bb-reviewer"}, "agent: subagent fields dropped")
  T.like(r.stdout, "\n# not carried over: [^\n]*:5:1: model: ", "what is dropped is said in the output")
  T.like(r.stdout, "\n%-%-%-\nReview the open pull requests.\n$", "the body is kept")
  r = run("a", {"import-bottle"})
  T.is(r.status, 2, "no FILE: exit 2")
  T.like(r.stderr, "import%-bottle needs a FILE", "no FILE: message")
  local bad = dir .. "/bad.md"
  cork.fs.write(bad, "---\ngit:\n  remotes:\n    github.com:\n      IdentityFle: ~/k\n---\n")
  r = run("a", {"import-bottle", bad})
  T.is(r.status, 2, "an invalid file: exit 2")
  T.like(r.stderr, "bad%.md:5:7: git%.remotes%.github%.com%.IdentityFle: unknown key %(did you mean \"IdentityFile\"%?%)",
    "an invalid file: the validator's message")
end
T.done()
