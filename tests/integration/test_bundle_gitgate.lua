-- The real bundle's git-gate against a real ssh upstream: an sshd git server
-- in a container of this test's own (made from the bundle's cached root
-- filesystem plus Debian's openssh-server, unpacked with dpkg-deb). The
-- test is the agent: it clones from git-gate over git:// (published on
-- 127.0.0.1) and pushes. git-gate reaches the sshd through the filter's
-- CONNECT with the operator's identity and the declared host key. A clean
-- push reaches the upstream; a push with a key-shaped string is rejected
-- before any upstream contact, which the sshd's own log proves.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local cork = require "cork"
local bundle = require "cork.bundle"
local bottle = require "cork.bottle"
local launch = require "cork.launch"
local journal = require "cork.journal"
local plan = require "cork.plan"

local d = H.connect(T)
if cork.core.uid() ~= 0 then T.skip_all("--from-apt needs root (debootstrap, chroot)") end
if not cork.fs.exists("/usr/sbin/debootstrap") then T.skip_all("debootstrap is not installed (tools/deps.sh)") end
for _, tool in ipairs({ "/usr/bin/git", "/usr/bin/ssh-keygen", "/usr/bin/dpkg-deb", "/usr/bin/apt-get" }) do
  if not cork.fs.exists(tool) then T.skip_all(tool .. " is not installed") end
end

local snap = H.snapshot(d)
local cache = os.getenv("CORK_BUNDLE_CACHE") or (H.root .. "/build/bundle-cache")
local built = bundle.from_apt(d, { cache = cache, progress = false })
snap.images[d:image_inspect(built.image).Id] = true

local s <close> = cork.scope("test_bundle_gitgate")
local dir = cork.fs.tempdir("cork-test-gitgate")
s:defer(cork.fs.remove, dir, { recursive = true, missing_ok = true })
local function run(argv, o)
  local r = cork.proc.run(argv, o or { timeout = 120 })
  if r.status ~= 0 then error(("%s failed (%d): %s %s"):format(argv[1], r.status, r.stdout, r.stderr), 2) end
  return r
end

-- ---- the sshd image: the bundle's root filesystem + openssh-server ----------
local SSHD_IMAGE = "cork-test-sshd:latest"
-- fetched by tests/run-all from the host's namespace; here only if missing
local ok_debs, debs = pcall(dofile(H.root .. "/tests/lib/upstream_debs.lua"), cache)
if not ok_debs then
  T.ok(false, "the sshd upstream's Debian packages are in " .. cache .. "/debs", debs)
  T.done()
end
local rootfs = bundle.rootfs({ cache = cache, progress = false })
local version = ("%s-%s"):format(bundle.rootfs_key({}), table.concat(cork.fs.list(debs), ","))
local info = select(2, pcall(d.image_inspect, d, SSHD_IMAGE))
if not (type(info) == "table" and info.Config and info.Config.Labels and info.Config.Labels["cork.test.sshd"] == version) then
  local stage = dir .. "/stage"
  cork.fs.mkdir(stage .. "/run/sshd", tonumber("0755", 8))
  for _, f in ipairs(cork.fs.list(debs)) do
    if f:match("%.deb$") then run({ "dpkg-deb", "-x", debs .. "/" .. f, stage }) end
  end
  -- only paths the root filesystem lacks (an imported tar may not repeat one)
  local add = { "./usr/sbin/sshd", "./run/sshd" }
  for _, f in ipairs(cork.fs.list(stage .. "/usr/lib/x86_64-linux-gnu")) do
    if f:match("^libwrap") then add[#add + 1] = "./usr/lib/x86_64-linux-gnu/" .. f end
  end
  run({ "cp", rootfs, dir .. "/sshd.tar" })
  local argv = { "tar", "-C", stage, "--owner=0", "--group=0", "--numeric-owner", "-rf", dir .. "/sshd.tar" }
  for _, a in ipairs(add) do argv[#argv + 1] = a end
  run(argv)
  -- sshd's privilege separation user, added when the container starts
  d:image_import(dir .. "/sshd.tar", { repo = "cork-test-sshd", tag = "latest", timeout = 900,
    changes = { ("LABEL cork.test.sshd=%q"):format(version), 'CMD ["sh", "-c", '
      .. '"echo sshd:x:101:65534::/run/sshd:/usr/sbin/nologin >> /etc/passwd && exec /usr/sbin/sshd -D -e"]' } })
  cork.fs.remove(dir .. "/sshd.tar")
end
snap.images[d:image_inspect(SSHD_IMAGE).Id] = true
T.ok(true, "the sshd image is made from the cached root filesystem and Debian's openssh-server")

-- ---- keys, the upstream repository, the sshd container ---------------------------
run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir .. "/host_key" })
run({ "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", dir .. "/id_ed25519" })
cork.fs.write(dir .. "/sshd_config", table.concat({
  "Port 22", "HostKey /etc/ssh/host_key", "PermitRootLogin prohibit-password", "PasswordAuthentication no",
  "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "AuthorizedKeysFile /etc/ssh/authorized_keys",
  "LogLevel VERBOSE", "PidFile none", "" }, "\n"))
local genv = { HOME = dir, PATH = os.getenv("PATH"), GIT_CONFIG_NOSYSTEM = "1", GIT_AUTHOR_NAME = "t",
  GIT_AUTHOR_EMAIL = "t@example.com", GIT_COMMITTER_NAME = "t", GIT_COMMITTER_EMAIL = "t@example.com",
  GIT_TERMINAL_PROMPT = "0" }
local function git(args, cwd, allow_fail)
  local argv = { "git" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = cork.proc.run(argv, { cwd = cwd or dir, env = genv, timeout = 120 })
  if r.status ~= 0 and not allow_fail then error(("git %s: %s"):format(table.concat(args, " "), r.stderr), 2) end
  return r
end
git({ "init", "-q", "--bare", "-b", "main", dir .. "/app.git" })
git({ "init", "-q", "-b", "main", dir .. "/seed" })
cork.fs.write(dir .. "/seed/README", "hello\n")
git({ "add", "README" }, dir .. "/seed")
git({ "commit", "-q", "-m", "first" }, dir .. "/seed")
git({ "push", "-q", dir .. "/app.git", "main" }, dir .. "/seed")

local upnet = H.name("gitnet")
s:defer(function() pcall(d.network_remove, d, upnet) end)
d:network_create({ name = upnet, labels = H.labels })
local sshd = H.name("sshd")
s:defer(function() pcall(d.container_remove, d, sshd, { force = true }) end)
d:container_create({ name = sshd, image = SSHD_IMAGE, labels = H.labels, networks = { upnet },
  mounts = { { source = dir .. "/sshd_config", target = "/etc/ssh/sshd_config" },
    { source = dir .. "/host_key", target = "/etc/ssh/host_key" },
    { source = dir .. "/id_ed25519.pub", target = "/etc/ssh/authorized_keys" },
    { source = dir .. "/app.git", target = "/srv/app.git", read_only = false } } })
d:container_start(sshd)
local subnet = d:network_inspect(upnet).IPAM.Config[1].Subnet
local ip = d:container_inspect(sshd).NetworkSettings.Networks[upnet].IPAddress
local hostkey = cork.fs.read(dir .. "/host_key.pub"):match("^(%S+ %S+)")

-- ---- the bottle: one ssh remote ------------------------------------------------------
local BOTTLE = ([[
agent: { provider: custom, image: unused, command: [sh] }
git:
  remotes:
    - name: app
      url: "ssh://root@git.test/srv/app.git"
      identity_file: %s/id_ed25519
      host_key: "%s"
      extra_hosts: ["git.test:%s"]
bundle:
  ip_allowlist: ["%s"]
]]):format(dir, hostkey, ip, subnet)
local ctx = launch.prepare({ inline_bottle = bottle.inline(BOTTLE, "gitgatetest"), bundle_image = built.image }, "docker")
local p = ctx.plan
p.bundle.publish = p.daemons
local j = journal.open(p.slug, { backend = "docker", bottle = "gitgatetest" })
s:defer(journal.finish, p.slug)
launch.network(s, j, ctx)
launch.cas_and_configs(ctx)
launch.bundle(s, j, ctx, { host_ip = "127.0.0.1",
  networks = { { name = p.names.network, ip = p.bundle.ip }, { name = upnet } } })
local B = p.names.bundle
local gport = d:host_port(B, plan.ports["git-gate"], "127.0.0.1")
local url = ("git://127.0.0.1:%d/app.git"):format(gport)

local cloned = false
local deadline = cork.time() + 120
repeat
  cloned = git({ "clone", "-q", url, dir .. "/agent" }, nil, true).status == 0
    and cork.fs.exists(dir .. "/agent/README")
  if not cloned then cork.fs.remove(dir .. "/agent", { recursive = true, missing_ok = true }); cork.sleep(0.5) end
until cloned or cork.time() > deadline
T.ok(cloned, "the agent clones through git-gate (mirrored from the sshd upstream through the filter)")
local readme = cork.fs.exists(dir .. "/agent/README") and cork.fs.read(dir .. "/agent/README")
if readme ~= "hello\n" then
  local l = d:container_logs(B)
  T.diag("bundle log:\n" .. l.stdout .. l.stderr)
  T.diag("sshd log:\n" .. (function() local x = d:container_logs(sshd); return x.stdout .. x.stderr end)())
end
T.is(readme, "hello\n", "with the upstream's content")
local function sshd_log() local l = d:container_logs(sshd); return l.stdout .. l.stderr end
local function count(text, pat) local n = 0; for _ in text:gmatch(pat) do n = n + 1 end; return n end
T.ok(sshd_log():find("Accepted publickey for root", 1, true), "git-gate logged in with the operator's key")

local function head(repo) return (git({ "-C", repo, "rev-parse", "main" }).stdout:gsub("%s+$", "")) end
cork.fs.write(dir .. "/agent/a.txt", "clean change\n")
git({ "add", "a.txt" }, dir .. "/agent")
git({ "commit", "-q", "-m", "clean" }, dir .. "/agent")
local r = git({ "push", "-q", "origin", "main" }, dir .. "/agent", true)
T.is(r.status, 0, "a clean push goes through", r.stderr)
T.is(head(dir .. "/app.git"), head(dir .. "/agent"), "and reaches the sshd upstream")

local before_log = sshd_log()
local before_head = head(dir .. "/app.git")
local secret = "ghp_" .. string.rep("Zz9", 12)
cork.fs.write(dir .. "/agent/config.py", "TOKEN = '" .. secret .. "'\n")
git({ "add", "config.py" }, dir .. "/agent")
git({ "commit", "-q", "-m", "add config" }, dir .. "/agent")
r = git({ "push", "-q", "origin", "main" }, dir .. "/agent", true)
T.isnt(r.status, 0, "a push with a key-shaped string is rejected")
T.like(r.stderr, "push rejected: github_token in config.py", "the message names the detector")
T.unlike(r.stderr, H.pat(secret), "and never the value")
T.is(head(dir .. "/app.git"), before_head, "the upstream does not have it")
cork.sleep(1)
local after_log = sshd_log()
T.is(count(after_log, "Connection from"), count(before_log, "Connection from"),
  "no upstream contact: the sshd saw no new connection")
local logs = d:container_logs(B)
T.unlike(logs.stdout .. logs.stderr, H.pat(secret), "the secret is not in the bundle's log either")

s:close()
H.no_leaks(T, d, snap)
T.done()
