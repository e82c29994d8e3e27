-- The git-gate scripts, run for real: the entrypoint mirrors a local
-- "upstream" and serves it with git daemon on 127.0.0.1; the access hook
-- serves only declared repos and refreshes before a fetch; the pre-receive
-- hook pushes upstream first and refuses deletions, forced updates and refs
-- outside heads/tags. (ssh and known_hosts are covered in test_plan.lua.)
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local gitgate = require "cork.gitgate"

if not pcall(cork.proc.run, {"git", "--version"}) then T.skip_all("git is not installed") end
local r0 = cork.proc.run({"git", "daemon", "--help"})
if r0.status ~= 0 and not (r0.stdout .. r0.stderr):find("daemon") then T.skip_all("git daemon is not available") end

local s <close> = cork.scope("test_gitgate_scripts")
local dir = cork.fs.tempdir("cork-gitgate-")
s:defer(function() cork.fs.remove(dir, {recursive = true}) end)

local genv = {HOME = dir, GIT_CONFIG_NOSYSTEM = "1", GIT_AUTHOR_NAME = "t", GIT_AUTHOR_EMAIL = "t@example.com",
  GIT_COMMITTER_NAME = "t", GIT_COMMITTER_EMAIL = "t@example.com", GIT_TERMINAL_PROMPT = "0"}
local function git(args, cwd, allow_fail)
  local argv = {"git"}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local r = cork.proc.run(argv, {cwd = cwd or dir, env = genv, timeout = 30})
  if r.status ~= 0 and not allow_fail then
    error(("git %s failed (%d): %s"):format(table.concat(args, " "), r.status, r.stderr), 2)
  end
  return r
end
local function head(repo, ref) return (git({"-C", repo, "rev-parse", "--verify", "-q", ref}, nil, true).stdout:gsub("%s+$", "")) end

-- the upstream, with one commit on main and a branch
git({"init", "-q", "--bare", "-b", "main", dir .. "/upstream.git"})
git({"init", "-q", "-b", "main", dir .. "/seed"})
cork.fs.write(dir .. "/seed/README", "hello\n")
git({"add", "README"}, dir .. "/seed")
git({"commit", "-q", "-m", "first"}, dir .. "/seed")
git({"branch", "keep"}, dir .. "/seed")
git({"push", "-q", dir .. "/upstream.git", "main", "keep"}, dir .. "/seed")

-- the gate's config dir, as the plan lays it out
local conf = dir .. "/conf"
cork.fs.mkdir(conf .. "/hooks")
cork.fs.write(conf .. "/upstreams", "# name url key known_hosts\napp\t" .. dir .. "/upstream.git\t-\t-\n")
cork.fs.write(conf .. "/entrypoint.sh", gitgate.asset("git-gate/entrypoint.sh"), {mode = tonumber("755", 8)})
cork.fs.write(conf .. "/hooks/access", gitgate.asset("git-gate/access"), {mode = tonumber("755", 8)})
cork.fs.write(conf .. "/hooks/pre-receive", gitgate.asset("git-gate/pre-receive"), {mode = tonumber("755", 8)})
-- a bare repo in the root that is NOT declared: must not be served
git({"init", "-q", "--bare", dir .. "/root/other.git"})

local port, gate, url
for _ = 1, 5 do
  port = 20000 + math.random(0, 20000)
  local env = {HOME = dir, GIT_CONFIG_NOSYSTEM = "1", GIT_GATE_CONF = conf, GIT_GATE_ROOT = dir .. "/root",
    GIT_GATE_SCAN = os.getenv("CORK_ROOT") .. "/lua/cork/assets/bundle/scan.py", PATH = os.getenv("PATH"),
    GIT_GATE_PORT = tostring(port), GIT_GATE_LISTEN = "127.0.0.1"}
  gate = cork.proc.spawn({"sh", conf .. "/entrypoint.sh"}, {env = env, stdout = dir .. "/gate.log", stderr = dir .. "/gate.log"})
  url = ("git://127.0.0.1:%d/app.git"):format(port)
  local up = false
  for _ = 1, 50 do
    if git({"ls-remote", url}, nil, true).status == 0 then up = true; break end
    if not gate:running() then break end
    cork.sleep(0.1)
  end
  if up then break end
  gate:close(1)
  gate = nil
end
if not gate then
  T.ok(false, "git-gate started", cork.fs.exists(dir .. "/gate.log") and cork.fs.read(dir .. "/gate.log") or "")
  T.done()
  return
end
s:defer(function() gate:close(2) end)
T.ok(true, "entrypoint mirrored the upstream and git daemon serves it")

-- fetch
git({"clone", "-q", url, dir .. "/agent"})
T.is(cork.fs.read(dir .. "/agent/README"), "hello\n", "clone through the gate")
local r = git({"ls-remote", ("git://127.0.0.1:%d/other.git"):format(port)}, nil, true)
T.isnt(r.status, 0, "an undeclared repository is not served")
r = git({"ls-remote", ("git://127.0.0.1:%d/../upstream.git"):format(port)}, nil, true)
T.isnt(r.status, 0, "no path escapes")

-- push a commit: it reaches the upstream
cork.fs.write(dir .. "/agent/a.txt", "a\n")
git({"add", "a.txt"}, dir .. "/agent")
git({"commit", "-q", "-m", "second"}, dir .. "/agent")
r = git({"push", "-q", "origin", "main"}, dir .. "/agent", true)
T.ok(r.status == 0, "push through the gate", r.stderr)
T.is(head(dir .. "/upstream.git", "main"), head(dir .. "/agent", "HEAD"), "the upstream has the pushed commit")
T.is(head(dir .. "/root/app.git", "main"), head(dir .. "/agent", "HEAD"), "and so has the mirror")

-- a new branch and a tag
git({"tag", "v1"}, dir .. "/agent")
r = git({"push", "-q", "origin", "HEAD:refs/heads/feature", "v1"}, dir .. "/agent", true)
T.ok(r.status == 0, "new branch and tag pushed", r.stderr)
T.is(head(dir .. "/upstream.git", "feature"), head(dir .. "/agent", "HEAD"), "upstream has the branch")
T.isnt(head(dir .. "/upstream.git", "refs/tags/v1"), "", "upstream has the tag")

-- the push scanner (the bundle's cork-scan): a key-shaped string in a new
-- commit is refused before any upstream contact, the message names the
-- detector and never the value
local clean = head(dir .. "/upstream.git", "main")
local key = "AKIA" .. string.rep("Q", 16)
cork.fs.write(dir .. "/agent/creds.txt", "aws = " .. key .. "\n")
git({"add", "creds.txt"}, dir .. "/agent")
git({"commit", "-q", "-m", "oops"}, dir .. "/agent")
r = git({"push", "-q", "origin", "main"}, dir .. "/agent", true)
T.isnt(r.status, 0, "a push with an AWS key is refused")
T.like(r.stderr, "push rejected: aws_access_key in creds.txt", "the message names the detector and the file")
T.unlike(r.stderr, key, "and never the value")
T.is(head(dir .. "/upstream.git", "main"), clean, "the upstream never got it")
git({"reset", "-q", "--hard", "HEAD~1"}, dir .. "/agent")
git({"commit", "-q", "--allow-empty", "-m", "token ghp_" .. string.rep("a", 36)}, dir .. "/agent")
r = git({"push", "-q", "origin", "main"}, dir .. "/agent", true)
T.like(r.stderr, "github_token in the message of commit", "a commit message is scanned too")
git({"reset", "-q", "--hard", "HEAD~1"}, dir .. "/agent")

-- refused: deletion, forced update, refs outside heads/tags
r = git({"push", "-q", "origin", ":keep"}, dir .. "/agent", true)
T.isnt(r.status, 0, "deleting a branch is refused")
T.like(r.stderr, "deleting refs/heads/keep is not allowed", "deletion: the hook says why")
T.isnt(head(dir .. "/upstream.git", "keep"), "", "upstream branch still there")
local before = head(dir .. "/upstream.git", "main")
git({"reset", "-q", "--hard", "HEAD~1"}, dir .. "/agent")
cork.fs.write(dir .. "/agent/b.txt", "b\n")
git({"add", "b.txt"}, dir .. "/agent")
git({"commit", "-q", "-m", "rewrite"}, dir .. "/agent")
r = git({"push", "-q", "-f", "origin", "main"}, dir .. "/agent", true)
T.isnt(r.status, 0, "a forced update is refused")
T.is(head(dir .. "/upstream.git", "main"), before, "upstream main unchanged")
r = git({"push", "-q", "origin", "HEAD:refs/notes/x"}, dir .. "/agent", true)
T.isnt(r.status, 0, "refs outside heads and tags are refused")
T.like(r.stderr, "refusing to update refs/notes/x", "notes: the hook says why")

-- the upstream refuses: the mirror does not take the update either
cork.fs.mkdir(dir .. "/upstream.git/hooks")
cork.fs.write(dir .. "/upstream.git/hooks/pre-receive", "#!/bin/sh\necho upstream says no >&2\nexit 1\n",
  {mode = tonumber("755", 8)})
git({"fetch", "-q", "origin"}, dir .. "/agent")
git({"reset", "-q", "--hard", "origin/main"}, dir .. "/agent")
cork.fs.write(dir .. "/agent/c.txt", "c\n")
git({"add", "c.txt"}, dir .. "/agent")
git({"commit", "-q", "-m", "third"}, dir .. "/agent")
r = git({"push", "-q", "origin", "main"}, dir .. "/agent", true)
T.isnt(r.status, 0, "upstream refusal fails the push")
T.like(r.stderr, "the upstream rejected the push", "the gate says the upstream refused")
T.is(head(dir .. "/root/app.git", "main"), before, "the mirror did not take it")
cork.fs.remove(dir .. "/upstream.git/hooks/pre-receive")

-- someone else pushes upstream: the next fetch through the gate sees it
cork.fs.write(dir .. "/seed/d.txt", "d\n")
git({"pull", "-q", dir .. "/upstream.git", "main"}, dir .. "/seed")
git({"add", "d.txt"}, dir .. "/seed")
git({"commit", "-q", "-m", "from elsewhere"}, dir .. "/seed")
git({"push", "-q", dir .. "/upstream.git", "main"}, dir .. "/seed")
git({"fetch", "-q", "origin"}, dir .. "/agent")
T.is(head(dir .. "/agent", "origin/main"), head(dir .. "/seed", "HEAD"), "the access hook refreshed the mirror before the fetch")

gate:close(2)
T.ok(not gate:running(), "git-gate stopped")
T.done()
