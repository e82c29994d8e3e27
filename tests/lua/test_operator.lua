-- What a new operator trips over (issue 19), without Docker: attach's
-- printed command, attach without a terminal, an attached run's exit
-- status, the agent's working directory, a failed dry run's temp dir.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local BIN = os.getenv("CORK_BIN")
local fs, json = cork.fs, cork.json
local dir = fs.tempdir("cork-operator")
local env = { XDG_STATE_HOME = dir .. "/state", XDG_CONFIG_HOME = dir .. "/config", TMPDIR = dir .. "/tmp" }
fs.mkdir(dir .. "/tmp", "0700")
local journal = require "cork.journal"
journal.set_root(dir .. "/state/cork")

local function run(args, o)
  local argv = { BIN }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  o = o or {}
  o.env = o.env or env
  o.timeout = o.timeout or 30
  return cork.proc.run(argv, o)
end

-- ---- 19.3: `cork attach SLUG --print` is quoted for a shell ----------------
local argv = { "docker", "exec", "-it", "cork-x-agent", "/bin/sh", "-c", "echo hello; env | sort; exec /bin/sh",
  "it's", "", "$HOME", "a\"b" }
local j = journal.open("quote-abc123", { backend = "docker", bottle = "quote" })
j:meta({ attach = argv })
local r = run({ "attach", "quote-abc123", "--print" })
T.is(r.status, 0, "attach --print: exit 0")
local line = r.stdout:gsub("\n$", "")
T.is(line, [[docker exec -it cork-x-agent /bin/sh -c 'echo hello; env | sort; exec /bin/sh' 'it'\''s' '' '$HOME' 'a"b']],
  "attach --print: each word quoted for a POSIX shell where it needs it")
-- a shell reads it back as exactly the recorded argv (and runs none of it)
local back = cork.proc.run({ "sh", "-c", 'eval "set -- $0"; for a in "$@"; do printf "[%s]\\n" "$a"; done', line })
local want = {}
for _, a in ipairs(argv) do want[#want + 1] = "[" .. a .. "]" end
T.is(back.stdout, table.concat(want, "\n") .. "\n", "attach --print: a shell reads back the same words")
r = run({ "--json", "attach", "quote-abc123" })
local ev = json.decode(r.stdout:match("[^\n]+"))
T.same(ev.argv, argv, "attach --json: the argv as a list of words")

-- ---- 19.14: attach without a terminal says so -------------------------------
r = run({ "attach", "quote-abc123" })
T.is(r.status, 1, "attach without a TTY: exit 1")
T.is(r.stderr, "cork: cork attach needs a terminal, and stdin is not one: run it from a terminal, "
  .. "or `cork attach quote-abc123 --print` for the command to run in one\n", "and a message saying what to do")
journal.finish("quote-abc123")

-- ---- 19.7: an attached run exits with the agent's status ---------------------
-- (script(1) gives the run a terminal; its -e passes the status on)
fs.write(dir .. "/finish.lua", [[
local launch = require "cork.launch"
require("cork.journal").set_root(arg[1])
local j = require("cork.journal").open("status-abc123", { backend = "docker", bottle = "s" })
local s <close> = cork.scope("t")
local ctx = { plan = { slug = "status-abc123" }, backend = "docker", opts = {} }
return launch.finish(s, j, ctx, { "sh", "-c", "exit 3" })
]])
local have_script = cork.proc.run({ "sh", "-c", "command -v script" }).status == 0
if not have_script then T.skip("script(1) not installed: an attached run's status", 2) else
  r = cork.proc.run({ "script", "-qec", ("%s script %s %s"):format(BIN, dir .. "/finish.lua", dir .. "/j1"), "/dev/null" },
    { env = env, timeout = 30 })
  T.is(r.status, 3, "an attached run exits with the agent's status (3)")
  T.like(r.stdout, "agent exited with status 3", "and says so")
end
r = cork.proc.run({ BIN, "script", dir .. "/finish.lua", dir .. "/j2" }, { env = env, timeout = 30 })
T.is(r.status, 1, "an attached run without a terminal: exit 1")
T.like(r.stderr, "attaching the agent needs a terminal, and stdin is not one: launch with %-%-detach, then "
  .. "`cork attach SLUG` from a terminal", "before anything runs, with what to do instead")

-- ---- 19.14: the agent starts in its home (smolmachines, as docker's -w) ---------
local bottle = require "cork.bottle"
fs.mkdir(dir .. "/agent-home", "0755")
r = cork.proc.run(bottle.with_env_file(dir .. "/none", { "pwd" }), { env = { HOME = dir .. "/agent-home" }, cwd = "/" })
T.is(r.stdout, dir .. "/agent-home\n", "with_env_file: the agent's command starts in $HOME")

-- ---- 19.5: a failed --dry-run leaves no temp dir -------------------------------
fs.mkdir(dir .. "/config/cork/bottles", "0700")
fs.write(dir .. "/config/cork/bottles/plain.yaml", "allowlist: [example.com]\n")
fs.write(dir .. "/config/cork/bottles/noskill.yaml", "skills: [no-such-skill]\n")
local denv = { XDG_STATE_HOME = env.XDG_STATE_HOME, XDG_CONFIG_HOME = env.XDG_CONFIG_HOME, TMPDIR = env.TMPDIR,
  HOME = dir, DOCKER_HOST = "unix://" .. dir .. "/no-docker.sock" }
for _, c in ipairs({ { "docker", "noskill", "skill \"no%-such%-skill\" not found", "in prepare" },
  { "smolmachines", "plain", "no %.smolmachine artifact for bottle plain", "after prepare" } }) do
  r = run({ "run", c[1], "--bottle", c[2], "--dry-run" }, { env = denv })
  T.ok(r.status ~= 0, c[1] .. " --dry-run of bottle " .. c[2] .. " fails " .. c[4], r.stderr)
  T.like(r.stderr, c[3], "as it should", r.stderr)
  T.same(fs.list(dir .. "/tmp"), {}, "and leaves nothing in TMPDIR (was an empty cork-dry-run.XXXXXX)")
end

-- ---- 19.9: a dry run warns about each unset host variable --------------------
fs.write(dir .. "/config/cork/bottles/unset.yaml", "env:\n  A: \"${CORK_OP_UNSET_A}\"\n  B: \"x-${CORK_OP_UNSET_B}\"\n")
r = run({ "run", "docker", "--bottle", "unset", "--dry-run" }, { env = denv })
T.is(r.status, 0, "a dry run with unset variables still runs", r.stderr)
local bf = dir .. "/config/cork/bottles/unset.yaml"
T.like(r.stderr, "warning: " .. bf:gsub("%p", "%%%0") .. ":2:3: env A: host variable CORK_OP_UNSET_A is not set "
  .. "%(a launch would stop here%)", "and warns about the first, with file:line:col")
T.like(r.stderr, ":3:3: env B: host variable CORK_OP_UNSET_B is not set", "and the second")

-- ---- 19.15: a missing image's error says where to get one -------------------------
local launch = require "cork.launch"
T.like(launch.image_hint("bundle"), "^`cork run bundle` builds cork's bundle image %(`cork run standin`: stand%-ins "
  .. "that filter nothing, to try cork quickly%); see docs/getting%-started%.md$", "bundle: cork run bundle, and the stand-ins")
T.like(launch.image_hint("agent"), "`cork run standin`, a busybox shell%); see docs/getting%-started%.md$",
  "agent: build or load it, or the stand-in agent")

fs.remove(dir, { recursive = true })
T.done()
