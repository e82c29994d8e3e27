-- cork.plan: identity, subnets, daemon configs, token slots, agent env.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
local cork = require "cork"
local manifest = require "cork.manifest"
local plan = require "cork.plan"
local egress = require "cork.egress"
local gitgate = require "cork.gitgate"

local fx <close> = F.setup()
local env = fx.env
local O = {env = env}
local dev = manifest.load_bottle("dev", O)

-- ---- slug and names ---------------------------------------------------------------
T.is(plan.slug("dev", "abc123"), "dev-abc123", "slug: name plus suffix")
T.is(plan.slug("My Fancy_Agent!!", "abc123"), "my-fancy-agent-abc123", "slug: lowercased, [a-z0-9-] only")
T.is(plan.slug("--a--b--", "abc123"), "a-b-abc123", "slug: no leading, trailing or double dashes")
T.is(plan.slug("a-very-long-agent-name-that-goes-on-and-on", "abc123"), "a-very-long-agent-na-abc123",
  "slug: base truncated to 20")
T.is(plan.slug("abcdefghijklmnopqrs-tuv", "abc123"), "abcdefghijklmnopqrs-abc123", "slug: truncation does not leave a dash")
T.is(plan.slug("ÜÖ", "abc123"), "bottle-abc123", "slug: nothing usable -> bottle")
T.is(plan.slug("", "abc123"), "bottle-abc123", "slug: empty -> bottle")
for _ = 1, 50 do
  local s = plan.slug("dev")
  if not (plan.is_slug(s) and #s == 10 and s:find("^dev%-[a-z0-9]+$")) then T.ok(false, "random slug " .. s) end
end
T.ok(plan.slug("dev") ~= plan.slug("dev"), "slugs differ between launches")
T.ok(plan.is_slug("dev-abc123"), "is_slug ok")
T.ok(not plan.is_slug("Dev-abc123"), "is_slug: uppercase")
T.ok(not plan.is_slug("dev--abc"), "is_slug: double dash")
T.ok(not plan.is_slug(("a"):rep(28)), "is_slug: too long")
T.same(plan.names("dev-abc123"), {vm = "cork-dev-abc123", bundle = "cork-dev-abc123-bundle",
  network = "cork-dev-abc123-bundle", agent = "cork-dev-abc123-agent", internal_network = "cork-dev-abc123-internal"},
  "resource names")
T.is(plan.state_dir("dev-abc123", {env = {HOME = "/h"}}), "/h/.local/state/cork/dev-abc123", "state dir default")
T.is(plan.state_dir("dev-abc123", {env = {HOME = "/h", XDG_STATE_HOME = "/s"}}), "/s/cork/dev-abc123",
  "state dir: XDG_STATE_HOME")

-- ---- subnets ------------------------------------------------------------------------
T.ok(plan.overlaps("10.200.1.0/24", "10.0.0.0/8"), "overlap: inside a larger net")
T.ok(plan.overlaps("10.0.0.0/8", "10.200.1.0/24"), "overlap: symmetric")
T.ok(not plan.overlaps("10.200.1.0/24", "10.200.2.0/24"), "no overlap: neighbours")
T.ok(not plan.overlaps("10.200.1.0/24", "fd00::/64"), "IPv6 ignored")
local s1 = plan.pick_subnet("dev-abc123", {})
T.like(s1.subnet, "^10%.20[0-7]%.%d+%.0/24$", "subnet in the pool")
T.is(s1.gateway, s1.subnet:gsub("%.0/24$", ".1"), "gateway .1")
T.is(s1.bundle_ip, s1.subnet:gsub("%.0/24$", ".2"), "bundle .2")
T.same(plan.pick_subnet("dev-abc123", {}), s1, "derived from the slug: stable")
T.isnt(plan.pick_subnet("dev-xyz789", {}).subnet, s1.subnet, "another slug, another subnet")
local s2 = plan.pick_subnet("dev-abc123", {s1.subnet, "172.17.0.0/16"})
T.isnt(s2.subnet, s1.subnet, "collision: picks another")
T.is(s2.probes, 2, "collision: the next one")
local s3 = plan.pick_subnet("dev-abc123", {"10.200.0.0/14"}, "10.200.0.0/13")
T.like(s3.subnet, "^10%.20[4-7]%.", "collision with a covering network: skipped past it")
local err = T.raises(function() plan.pick_subnet("dev-abc123", {"10.0.0.0/8"}) end, "network", nil, "pool exhausted")
T.is(err and err.message, "no free /24 left in the bundle subnet pool 10.200.0.0/13 (1 networks in use)",
  "pool exhausted: exact message")
local small = plan.pick_subnet("x", {"192.168.7.0/24"}, "192.168.6.0/23")
T.is(small.subnet, "192.168.6.0/24", "small pool: the free one")
-- bits: subnets of another size (the escape suite's /28 canaries)
local t28 = plan.pick_subnet("x", {"203.0.113.0/25"}, "203.0.113.0/24", 28)
T.like(t28.subnet, "^203%.0%.113%.%d+/28$", "bits 28: a /28 of the pool")
T.ok(tonumber(t28.subnet:match("%.(%d+)/")) >= 128 and tonumber(t28.subnet:match("%.(%d+)/")) % 16 == 0,
  "bits 28: aligned, past a covering network")
T.is(t28.gateway, t28.subnet:gsub("%.(%d+)/28$", function(n) return "." .. (n + 1) end), "bits 28: gateway .1 of it")
local e28 = T.raises(function() plan.pick_subnet("x", {"169.254.0.0/16"}, "169.254.16.0/20", 28) end, "network", nil,
  "bits 28: pool exhausted")
T.like(e28 and e28.message or "", "^no free /28 left in the subnet pool 169%.254%.16%.0/20", "says which size")
local fake = {networks = function() return {
  {Name = "bridge", IPAM = {Config = {{Subnet = "172.17.0.0/16", Gateway = "172.17.0.1"}}}},
  {Name = "host", IPAM = {Config = {}}},
  {Name = "v6", IPAM = {Config = {{Subnet = "fd00::/64"}, {Subnet = "10.201.0.0/16"}}}},
  {Name = "none", IPAM = {Config = cork.json.null}},
} end}
T.same(plan.docker_subnets(fake), {"172.17.0.0/16", "fd00::/64", "10.201.0.0/16"}, "subnets from Docker's networks")

-- ---- the full plan --------------------------------------------------------------------
local p = plan.build(dev, nil, {env = env, suffix = "abc123", subnets = function() return plan.docker_subnets(fake) end})
T.is(p.slug, "dev-abc123", "slug")
T.same(p.labels.bundle, {["cork.slug"] = "dev-abc123", ["cork.role"] = "bundle", ["cork.bottle"] = "dev"}, "labels")
T.is(p.state_dir, fx.home .. "/.local/state/cork/dev-abc123", "state dir")
T.is(p.network.checked, true, "subnets checked")
T.ok(not plan.overlaps(p.network.subnet, "10.201.0.0/16"), "plan subnet avoids Docker's")
T.same(p.daemons, {"pipelock", "egress", "git-gate", "supervise"}, "daemons")
T.is(p.bundle.env.CORK_DAEMONS, "pipelock,egress,git-gate,supervise", "daemon list env")
T.same(p.bundle.publish, {"egress", "git-gate", "supervise"}, "published: egress first hop, git-gate, supervise")
T.is(p.bundle.image, "cork-bundle:latest", "default bundle image")

-- token slots
T.same(p.egress_plan.token_env_map, {EGRESS_TOKEN_1 = "CORK_TEST_ANTHROPIC_KEY", EGRESS_TOKEN_2 = "CORK_TEST_GITHUB_TOKEN"},
  "token slots in declaration order, shared ref shares a slot")
T.same(p.bundle.token_env, p.egress_plan.token_env_map, "bundle gets tokens by name")
do
  local slots, map = egress.token_slots({
    {host = "a", auth = "none"},
    {host = "b", auth = "bearer", token_ref = "B"},
    {host = "c", auth = "basic", token_ref = "C"},
    {host = "d", auth = "token", token_ref = "B"},
    {host = "e", auth = "none"},
  })
  T.same(map, {EGRESS_TOKEN_1 = "B", EGRESS_TOKEN_2 = "C"}, "token_slots: no-auth routes get none")
  T.same(slots[1].hosts, {"b", "d"}, "token_slots: hosts sharing a slot")
end

-- routes.yaml: wire fields only, parsed back
local routes = cork.yaml.decode(p.egress_plan.config)
T.same(routes.routes, {
  {host = "api.anthropic.com", auth = "header:x-api-key", token_env = "EGRESS_TOKEN_1"},
  {host = "api.github.com", auth = "bearer", token_env = "EGRESS_TOKEN_2", paths = {"/repos/acme/*"}},
  {host = "uploads.github.com", auth = "bearer", token_env = "EGRESS_TOKEN_2"},
  {host = "pypi.org", auth = "none"},
}, "routes.yaml routes: wire fields only")
T.is(routes.listen, "0.0.0.0:9099", "egress listens on its port")
T.is(routes.upstream_proxy, "http://127.0.0.1:8888", "egress chains to pipelock")
T.same(routes.tls, {ca_cert = "/etc/cork/egress/ca/ca.pem", ca_key = "/etc/cork/egress/ca/ca-key.pem"}, "egress CA paths")
T.unlike(p.egress_plan.config, "CORK_TEST_", "routes.yaml names no host variable")

-- pipelock.yaml parsed back
local pl = cork.yaml.decode(p.proxy_plan.config)
T.is(pl.mode, "strict", "pipelock strict")
T.is(pl.forward_proxy.enabled, true, "forward proxy on")
T.is(pl.request_body_scanning.enabled, true, "request-body DLP on")
T.is(pl.fetch_proxy.listen, "0.0.0.0:8888", "pipelock listens on 8888")
T.same(pl.tls_interception, {enabled = true, ca_cert = "/etc/cork/pipelock/ca/ca.pem",
  ca_key = "/etc/cork/pipelock/ca/ca-key.pem",
  passthrough_domains = {"api.anthropic.com", "api.github.com", "uploads.github.com"}}, "TLS interception and passthrough")
T.same(pl.api_allowlist, {"*.npmjs.org", "api.anthropic.com", "api.github.com", "claude.ai", "console.anthropic.com",
  "files.pythonhosted.org", "git.example.com", "github.com", "pypi.org", "statsig.anthropic.com", "uploads.github.com"},
  "allowlist: provider + routes + git hosts + bottle allowlist")

-- git-gate
local gg = p.git_gate_plan
T.is(#gg.upstreams, 3, "three upstreams")
T.is(gg.upstreams[1].known_hosts,
  "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n", "known_hosts port 22")
T.like(gg.upstreams[2].known_hosts, "^%[git%.example%.com%]:2222 ecdsa%-sha2%-nistp256 AAAA", "known_hosts other port")
T.is(gg.upstreams[3].known_hosts, nil, "https upstream: no known_hosts")
T.is(gg.upstreams[1].identity_file, fx.home .. "/keys/deploy", "identity file ~ expanded")
T.same(gg.extra_hosts, {"github.com:140.82.112.3"}, "extra hosts")
T.same(gitgate.insteadof_config(gg, "git://127.0.0.16:40001"), {
  {key = "url.git://127.0.0.16:40001/app.git.insteadOf", value = "git@github.com:acme/app.git"},
  {key = "url.git://127.0.0.16:40001/lib.git.insteadOf", value = "ssh://git@git.example.com:2222/team/lib.git"},
  {key = "url.git://127.0.0.16:40001/docs.git.insteadOf", value = "https://github.com/acme/docs.git"},
}, "insteadOf rewrites")
local tsv
for _, f in ipairs(p.files) do if f.path:find("/upstreams$") then tsv = f.content end end
T.is(tsv, "app\tgit@github.com:acme/app.git\t/etc/cork/git-gate/keys/app\t/etc/cork/git-gate/known_hosts/app\n"
  .. "lib\tssh://git@git.example.com:2222/team/lib.git\t/etc/cork/git-gate/keys/lib\t/etc/cork/git-gate/known_hosts/lib\n"
  .. "docs\thttps://github.com/acme/docs.git\t-\t-\n", "upstreams file")
for name, text in pairs(gg.scripts) do
  local dir = cork.fs.tempdir("cork-sh-")
  cork.fs.write(dir .. "/s", text)
  for _, sh in ipairs({"sh", "dash", "bash"}) do
    local ok, r = pcall(cork.proc.run, {sh, "-n", dir .. "/s"})
    if ok then T.is(r.status, 0, ("%s script: %s -n clean"):format(name, sh), r.stderr)
    else T.skip(sh .. " not installed") end
  end
  local ok, r = pcall(cork.proc.run, {"shellcheck", "-s", "sh", dir .. "/s"})
  if ok then T.is(r.status, 0, name .. " script: shellcheck clean", r.stdout) else T.skip("shellcheck not installed") end
  cork.fs.remove(dir, {recursive = true})
end
-- an identity file that does not exist fails the plan (Docker would mount a directory)
do
  local b = manifest.load_bottle("dev", O)
  b.git.remotes[1].identity_file = "~/keys/missing"
  err = T.raises(function() plan.build(b, nil, {env = env, suffix = "abc123"}) end, "manifest", nil, "missing identity file")
  T.is(err and err.message, ("%s/.config/cork/bottles/dev.yaml:18:7: ssh remote app: identity_file %s/keys/missing does not exist")
    :format(fx.home, fx.home), "missing identity file: exact message")
  -- a hand-built bottle without a host key still fails closed
  b = manifest.load_bottle("dev", O)
  b.git.remotes[1].host_keys = nil
  err = T.raises(function() plan.build(b, nil, {env = env, suffix = "abc123"}) end, "manifest", nil, "no host key: fail closed")
  T.like(err and err.message, "ssh remote github.com has no host_key %(cork never trusts a host key on first use%)$",
    "no host key: message")
end

-- supervise
T.same(p.supervise_plan.mcp, {name = "supervise", transport = "http", url_env = "MCP_SUPERVISE_URL"}, "MCP registration")
T.is(p.supervise_plan.queue_dir, p.state_dir .. "/supervise/queue", "queue dir under the state dir")
T.same(plan.mcp_register_argv(p, "http://127.0.0.16:40002/"),
  {"claude", "mcp", "add", "--scope", "user", "--transport", "http", "supervise", "http://127.0.0.16:40002/"},
  "register argv")

-- skills and prompt
T.same(p.skills, {
  {name = "lint", source = fx.home .. "/.config/cork/skills/lint", dest = "/home/agent/.claude/skills/lint"},
  {name = "review", source = fx.home .. "/.bot-bottle/skills/review", dest = "/home/agent/.claude/skills/review"},
}, "skills resolved from the skills dirs")
T.same(p.prompt, {text = "Work on acme/app. Run the tests before pushing.\n", dest = "/home/agent/.claude/CLAUDE.md"}, "prompt")
do
  local b = manifest.load_bottle("dev", O)
  b.skills = {{spec = "nonesuch", where = "dev.yaml:40:5"}}
  err = T.raises(function() plan.build(b, nil, {env = env, suffix = "abc123"}) end, "manifest", nil, "missing skill")
  T.is(err and err.message, ('dev.yaml:40:5: skills: skill "nonesuch" not found (looked in %s/.config/cork/skills/nonesuch, '
    .. '%s/.bot-bottle/skills/nonesuch)'):format(fx.home, fx.home), "missing skill: exact message")
end

-- agent env
T.same(p.agent_env, {
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = "1", DISABLE_AUTOUPDATER = "1",
  DEBUG = "false", EDITOR = "vim", LITERAL_DOLLAR = "price: $${not_a_var}", LOG_LEVEL = "3",
  NODE_EXTRA_CA_CERTS = "/usr/local/share/ca-certificates/cork.crt",
  SSL_CERT_FILE = "/etc/ssl/certs/ca-certificates.crt", REQUESTS_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt",
}, "agent env: placeholders, CA trust, literal bottle env (bottle's secret ANTHROPIC_API_KEY replaces the placeholder)")
local names = {}
for _, s in ipairs(p.agent_secrets) do names[#names + 1] = s.name .. ":" .. s.source end
T.same(names, {"ANTHROPIC_API_KEY:host", "COMBINED:host", "DB_PASSWORD:ask", "STAGING_TOKEN:ask"}, "secrets by name")
T.is(plan.no_proxy(p, "127.0.0.16"), "localhost,127.0.0.1,127.0.0.16", "NO_PROXY with alias")
T.is(plan.no_proxy(p, "cork-dev-abc123-bundle", "cork-dev-abc123-bundle"), "localhost,127.0.0.1,cork-dev-abc123-bundle",
  "NO_PROXY in a container: the bundle's name")
local stamped = plan.stamp(p, {host = "127.0.0.16", ports = {egress = 41001, pipelock = 41000, ["git-gate"] = 41002,
  supervise = 41003}})
T.is(stamped.HTTPS_PROXY, "http://127.0.0.16:41001", "HTTPS_PROXY: egress is the first hop with routes")
T.is(stamped.http_proxy, stamped.HTTPS_PROXY, "lowercase proxies too")
T.is(stamped.NO_PROXY, "localhost,127.0.0.1,127.0.0.16", "NO_PROXY stamped")
T.is(stamped.GIT_GATE_URL, "git://127.0.0.16:41002", "GIT_GATE_URL")
T.is(stamped.MCP_SUPERVISE_URL, "http://127.0.0.16:41003/", "MCP_SUPERVISE_URL")
T.is(stamped.EDITOR, "vim", "bottle env kept")

-- a bottle without routes: pipelock is the first hop, no egress CA
local minimal = manifest.load_bottle("minimal", O)
local pm = plan.build(minimal, manifest.load_agent("local", O), {env = env, suffix = "zzz999"})
T.is(pm.slug, "local-zzz999", "slug from the agent's name")
T.same(pm.daemons, {"pipelock", "egress"}, "minimal: pipelock and egress")
T.same(pm.bundle.publish, {"pipelock"}, "minimal: pipelock published")
T.is(pm.egress_plan.enabled, false, "no routes: egress not the first hop")
T.is(pm.egress_plan.ca, nil, "no routes: no egress CA")
T.is(cork.yaml.decode(pm.egress_plan.config).routes, nil, "no routes in routes.yaml")
T.is(pm.git_gate_plan, nil, "no git-gate")
T.is(pm.supervise_plan, nil, "no supervise")
T.is(pm.network.checked, false, "subnets not checked without a list")
T.is(plan.stamp(pm, {host = "127.0.0.17", ports = {pipelock = 42000}}).HTTPS_PROXY, "http://127.0.0.17:42000",
  "HTTPS_PROXY: pipelock without routes")
T.is(pm.prompt.text, "An agent shipped by the repository.\n", "agent prompt")
T.same(cork.yaml.decode(pm.proxy_plan.config).tls_interception.passthrough_domains, nil, "no passthrough key when empty")

-- agent over a bot-bottle bottle: codex? no, claude; git user override and skills appended
local rp = plan.build(manifest.load_bottle("legacy", O), manifest.load_agent("reviewer", O), {env = env, suffix = "r00001"})
T.same(rp.git_user, {name = "Reviewer Bot", email = "legacy@example.com"}, "agent git user overrides field by field")
T.same({rp.skills[1].name, rp.skills[2].name}, {"review", "lint"}, "bottle skills then agent skills")
T.is(rp.prompt.text, "You maintain acme/legacy.\n\nKeep changes small.\n\nReview the open pull requests.\n",
  "bottle prompt then agent prompt")
T.same(rp.proxy_plan.passthrough, {}, "tls_passthrough: false honoured")

-- codex provider through extends
local cp = plan.build(manifest.load_bottle("child", O), nil, {env = env, suffix = "c00001"})
T.is(cp.provider.name, "codex", "codex provider")
T.is(cp.agent_env.OPENAI_API_KEY, require("cork.providers").PLACEHOLDER, "codex placeholder")
T.ok(cork.yaml.decode(cp.proxy_plan.config).api_allowlist[1] ~= nil, "codex hosts allowlisted")

-- provider overrides: a custom agent, its artifact path ~-expanded
do
  local b = manifest.load_bottle("minimal", O)
  b.agent = {provider = "custom", command = {"my-agent", "--go"}, from = "~/agents/x.smolmachine", image = "mine:1",
    user = "dev", hosts = {"api.example.com"}}
  local pc = plan.build(b, nil, {env = env, suffix = "c00002"})
  T.same(pc.provider, {name = "custom", command = {"my-agent", "--go"}, from = fx.home .. "/agents/x.smolmachine",
    image = "mine:1", user = "dev", home = "/home/dev", hosts = {"api.example.com"}}, "custom provider")
  T.same(cork.yaml.decode(pc.proxy_plan.config).api_allowlist, {"api.example.com"}, "custom hosts allowlisted")
  T.is(pc.supervise_plan, nil, "no supervise")
end

-- secrets at launch
do
  local out = plan.resolve_secrets(p, dev, {env = env, ask = function(_, name) return "typed-" .. name end})
  T.same(out.bundle, {EGRESS_TOKEN_1 = F.secrets.CORK_TEST_ANTHROPIC_KEY, EGRESS_TOKEN_2 = F.secrets.CORK_TEST_GITHUB_TOKEN},
    "token values by slot")
  T.is(out.agent.ANTHROPIC_API_KEY, F.secrets.CORK_TEST_ANTHROPIC_KEY, "agent secret resolved")
  T.is(cork.log.redact(F.secrets.CORK_TEST_GITHUB_TOKEN), "***", "token registered as a secret")
  local e2 = {}
  for k, v in pairs(env) do e2[k] = v end
  e2.CORK_TEST_GITHUB_TOKEN = nil
  local pe = plan.build(manifest.load_bottle("legacy", O), nil, {env = env, suffix = "abc123"})
  err = T.raises(function() plan.resolve_secrets(pe, manifest.load_bottle("legacy", O), {env = e2}) end, "env", nil,
    "missing token variable")
  local lf = fx.home .. "/.bot-bottle/bottles/legacy.md"
  T.is(err and err.message, ("2 host variables are not set:\n"
    .. "  %s:6:3: env GH_TOKEN: host variable CORK_TEST_GITHUB_TOKEN is not set\n"
    .. "  %s:18:7: egress token EGRESS_TOKEN_1: host variable CORK_TEST_GITHUB_TOKEN is not set (routes: api.github.com)")
    :format(lf, lf), "every unset variable at once, each with its file:line:col (issue 19.9)")
  T.is(err and err.missing and #err.missing, 2, "and as a list (missing)")
  -- checked before anything is asked on the terminal
  local asked = 0
  local ba = manifest.load_bottle("legacy", O)
  ba.env.ASKED = {name = "ASKED", source = "ask", secret = true, prompt = "Asked", where = "x:1:1"}
  local pa = plan.build(ba, nil, {env = env, suffix = "abc123"})
  T.raises(function() plan.resolve_secrets(pa, ba, {env = e2, ask = function() asked = asked + 1; return "v" end}) end,
    "env", nil, "unset variables with a prompt in the bottle")
  T.is(asked, 0, "nothing was asked before the unset variables were reported")
  T.is(#plan.unset_variables(pa, ba, {env = env}), 0, "unset_variables: none when all are set")
  local bl = manifest.load_bottle("legacy", O)
  bl.env = {}
  local pe2 = plan.build(bl, nil, {env = env, suffix = "abc123"})
  err = T.raises(function() plan.resolve_secrets(pe2, bl, {env = e2}) end, "env", nil, "missing token for a slot")
  T.is(err and err.message, lf .. ":18:7: egress token EGRESS_TOKEN_1: host variable CORK_TEST_GITHUB_TOKEN is not set "
    .. "(routes: api.github.com)", "slot: exact message, with the route's file:line:col")
end

-- files on disk
do
  local written = plan.write_files(p)
  T.is(#written, #p.files, "every file written")
  T.is(cork.fs.stat(p.state_dir).mode & tonumber("0777", 8), tonumber("0700", 8), "state dir 0700")
  T.is(cork.fs.stat(p.git_gate_plan.host_dir .. "/entrypoint.sh").mode & tonumber("0777", 8), tonumber("0755", 8),
    "scripts executable")
  T.is(cork.fs.read(p.proxy_plan.config_path), p.proxy_plan.config, "pipelock.yaml on disk")
  T.ok(cork.fs.stat(p.supervise_plan.queue_dir), "queue dir made")
end

-- CA bookkeeping
plan.ca_minted(p, "pipelock", {cert = "/x/ca.pem", key = "/x/ca-key.pem"})
T.same(p.bundle.mounts[#p.bundle.mounts], {source = "/x/ca-key.pem", target = "/etc/cork/pipelock/ca/ca-key.pem", read_only = true},
  "minted CA mounted")
-- bundle.extra_hosts / extra_ca / ip_allowlist: the bundle's way to real upstreams
do
  local tmp = cork.fs.tempdir("cork-plan-extra")
  cork.fs.write(tmp .. "/ca.pem", "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n")
  cork.fs.write(tmp .. "/not.pem", "hello\n")
  local function with(bundle_yaml)
    local b = require("cork.bottle").inline("agent: { provider: custom, image: x, command: [sh] }\nbundle: "
      .. bundle_yaml .. "\n", "b", tmp .. "/b.yaml")
    b.file = tmp .. "/b.yaml"
    return plan.build(b, nil, {env = env, suffix = "abc123", subnets = function() return {} end})
  end
  local q = with('{extra_hosts: ["api.test:10.1.2.3"], extra_ca: ca.pem, ip_allowlist: ["10.1.2.0/24"]}')
  T.same(q.bundle.extra_hosts, {"api.test:10.1.2.3"}, "bundle.extra_hosts reach the bundle container")
  T.is(q.bundle.extra_ca, tmp .. "/ca.pem", "bundle.extra_ca is resolved against the bottle file")
  local found
  for _, m in ipairs(q.bundle.mounts) do if m.target == "/etc/cork/bundle/extra-ca.pem" then found = m end end
  T.same(found, {source = tmp .. "/ca.pem", target = "/etc/cork/bundle/extra-ca.pem", read_only = true},
    "and mounted at /etc/cork/bundle/extra-ca.pem")
  T.same(cork.yaml.decode(q.proxy_plan.config).ssrf, {ip_allowlist = {"10.1.2.0/24"}},
    "bundle.ip_allowlist becomes pipelock's ssrf.ip_allowlist")
  T.is(cork.yaml.decode(p.proxy_plan.config).ssrf, nil, "no ssrf key without it")
  T.raises(function() with("{extra_ca: missing.pem}") end, "not_found", "bundle.extra_ca: .*missing.pem: no such file",
    "a missing extra_ca fails the plan")
  T.raises(function() with("{extra_ca: not.pem}") end, "invalid", "holds no PEM certificate", "so does a non-PEM file")
  cork.fs.remove(tmp, {recursive = true})
end
T.done()
