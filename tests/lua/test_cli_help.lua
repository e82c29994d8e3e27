-- The command line a new operator meets (issue 19): every help text pinned
-- against tests/fixtures/cli-help.txt (CORK_UPDATE_GOLDEN=1 rewrites it),
-- exit codes, did-you-mean for names, `cork bottles`, `cork complete`, the
-- man page made from the help texts, and the bash and zsh completions.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local BIN = os.getenv("CORK_BIN")
local ROOT = os.getenv("CORK_ROOT")
local fs = cork.fs
local dir = fs.tempdir("cork-cli-help")
local env = { XDG_CONFIG_HOME = dir .. "/config", XDG_STATE_HOME = dir .. "/state", HOME = dir .. "/home",
  CORK_PATH = false, DOCKER_HOST = "unix://" .. dir .. "/no-docker.sock", PWD = dir }
fs.mkdir(dir .. "/home", "0700")
fs.mkdir(dir .. "/config/cork/bottles", "0700")
fs.mkdir(dir .. "/config/cork/agents", "0700")
fs.write(dir .. "/config/cork/bottles/dev.yaml", "allowlist: [example.com]\n")
fs.write(dir .. "/config/cork/bottles/broken.yaml", "supervize: true\n")
fs.write(dir .. "/config/cork/agents/coder.yaml", "bottle: dev\n")

local function run(args, o)
  local argv = { BIN }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  o = o or {}
  o.env = o.env or env
  o.timeout = o.timeout or 30
  o.cwd = o.cwd or dir
  return cork.proc.run(argv, o)
end

-- ---- every help text, pinned ------------------------------------------------
local commands = {}
for n in run({ "complete", "commands" }).stdout:gmatch("[^\n]+") do commands[#commands + 1] = n end
T.ok(#commands >= 14, "complete commands lists the commands (" .. #commands .. ")")
local parts = {}
local function pin(args)
  local r = run(args)
  T.is(r.status, 0, "cork " .. table.concat(args, " ") .. ": exit 0")
  parts[#parts + 1] = ("==== cork %s\n%s"):format(table.concat(args, " "), r.stdout)
end
pin({ "help" })
for _, c in ipairs(commands) do pin({ "help", c }) end
for _, r in ipairs({ "docker", "smolmachines", "prepare", "demo", "hello", "examples/add-tool", "examples/no-git",
  "examples/probe-bundle" }) do pin({ "help", r }) end
local got = table.concat(parts, "\n")
local golden = ROOT .. "/tests/fixtures/cli-help.txt"
if os.getenv("CORK_UPDATE_GOLDEN") == "1" then fs.write(golden, got) end
local want = fs.exists(golden) and fs.read(golden) or ""
T.ok(got == want, "every help text is as pinned in tests/fixtures/cli-help.txt "
  .. "(after a deliberate change: CORK_UPDATE_GOLDEN=1 prove ... tests/lua/test_cli_help.lua)")
if got ~= want then
  local gl, wl = {}, {}
  for l in (got .. "\n"):gmatch("([^\n]*)\n") do gl[#gl + 1] = l end
  for l in (want .. "\n"):gmatch("([^\n]*)\n") do wl[#wl + 1] = l end
  for i = 1, math.max(#gl, #wl) do
    if gl[i] ~= wl[i] then T.diag(("line %d\n  got:  %s\n  want: %s"):format(i, tostring(gl[i]), tostring(wl[i]))); break end
  end
end

-- the same text through each way of asking for it
T.is(run({ "run", "docker", "--help" }).stdout, run({ "help", "docker" }).stdout, "run docker --help = help docker")
T.is(run({ "run", "examples/add-tool", "--help" }).stdout, run({ "help", "examples/add-tool" }).stdout,
  "examples/add-tool --help is its own help, not the docker recipe's usage")
T.is(run({ "plan", "--help" }).stdout, run({ "help", "plan" }).stdout, "plan --help = help plan")
for _, o in ipairs({ "--bottle", "--agent", "--detach", "--dry-run", "--image", "--bundle-image" }) do
  T.like(run({ "help", "docker" }).stdout, "\n  " .. o:gsub("%-", "%%-") .. " ", "help docker explains " .. o)
end
T.like(run({ "help", "smolmachines" }).stdout, "\n  %-%-from FILE ", "help smolmachines explains --from")

-- ---- exit codes -------------------------------------------------------------
local CASES = {
  { { "--version" }, 0, nil, "^cork %d+%.%d+%.%d+\n" },
  { { "-V" }, 0, nil, "^cork %d" },
  { { "help", "help" }, 0, nil, "^usage: cork help" },
  { { "help", "docker" }, 0, nil, "^docker: " },
  { {}, 2, "usage: cork" },
  { { "frobnicate" }, 2, "^cork: unknown command 'frobnicate'\n" },
  { { "hlep" }, 2, "^cork: unknown command 'hlep'; did you mean 'help'%?" },
  { { "help", "dockr" }, 2, "^cork: no command or recipe 'dockr'; did you mean 'docker'%?" },
  { { "run" }, 2, "run needs a recipe" },
  { { "run", "dockr" }, 2, "^cork: no recipe 'dockr'; did you mean 'docker'%? %(see `cork recipes`%)\n" },
  { { "run", "smolmachine", "--bottle", "dev" }, 2, "did you mean 'smolmachines'%?" },
  { { "run", "docker", "--bottle", "dve", "--dry-run" }, 2,
    '^cork: no bottle named "dve"; did you mean "dev"%? %(looked in .*; `cork bottles` lists them%)\n' },
  { { "run", "docker", "--agent", "codr", "--dry-run" }, 2, '^cork: no agent named "codr"; did you mean "coder"%?' },
  { { "run", "docker", "--bottle", "broken", "--dry-run" }, 2, "broken%.yaml:1:1: supervize: unknown key" },
  { { "run", "docker", "--botle", "dev" }, 2, "did you mean %-%-bottle%?" },
  { { "run", "--bottle", "dev", "--detach" }, 2, "^cork: run takes the recipe first: cork run RECIPE %[options%]" },
  { { "plan", "--bottle", "Dve", "--no-docker" }, 2, 'did you mean "dev"%?' },
  { { "attach" }, 2, "attach needs one SLUG" },
  { { "attach", "no-such-slug-x" }, 1, "no bottle no%-such%-slug%-x" },
  { { "complete" }, 2, "complete needs one of" },
  { { "bottles", "extra" }, 2, "unexpected argument 'extra'" },
}
for _, c in ipairs(CASES) do
  local r = run(c[1])
  local name = "cork " .. table.concat(c[1], " ")
  T.is(r.status, c[2], name .. ": exit " .. c[2])
  if c[3] then T.like(r.stderr, c[3], name .. ": message") end
  if c[4] then T.like(r.stdout, c[4], name .. ": output") end
end
-- options before the recipe: the word that names a recipe is the recipe
local r = run({ "--json", "run", "--bottle", "dev", "docker", "--dry-run" })
T.is(r.status, 0, "cork run --bottle dev docker --dry-run: the recipe found after the options", r.stderr)
T.like(r.stdout, '"event":"bottle_ready"', "and the dry run ran")

-- ---- cork bottles -----------------------------------------------------------
fs.mkdir(dir .. "/home/.bot-bottle/bottles", "0700")
fs.write(dir .. "/home/.bot-bottle/bottles/dev.md", "---\nagent: codex\n---\n")
r = run({ "bottles" })
T.is(r.status, 0, "bottles: exit 0")
local cfg = dir .. "/config/cork"
T.is(r.stdout, ([[
bottles (searched: CFG/bottles, HOME/.bot-bottle/bottles)
  broken  CFG/bottles/broken.yaml  [invalid: broken.yaml:1:1: supervize: unknown key (did you mean "supervise"?)]
  dev     CFG/bottles/dev.yaml
  dev     HOME/.bot-bottle/bottles/dev.md  [shadowed by CFG/bottles/dev.yaml]
agents (searched: CFG/agents, HOME/.bot-bottle/agents, DIR/.cork/agents)
  coder  CFG/agents/coder.yaml  (bottle dev)
]]):gsub("CFG", cfg):gsub("HOME", dir .. "/home"):gsub("DIR", dir), "bottles: each name, its file, and why one would not load")
r = run({ "--json", "bottles" })
local evs = {}
for line in r.stdout:gmatch("[^\n]+") do evs[#evs + 1] = cork.json.decode(line) end
T.is(#evs, 4, "bottles --json: one event per file")
T.ok(evs[2].event == "manifest" and evs[2].kind == "bottle" and evs[2].name == "dev" and evs[2].status == "ok"
  and evs[2].path == cfg .. "/bottles/dev.yaml", "bottles --json: kind, name, status, path")
T.is(evs[4].bottle, "dev", "bottles --json: an agent's bottle")
-- a config dir inside a git working tree: ignored, and how to trust it (19.18)
fs.mkdir(dir .. "/config/.git", "0700")
r = run({ "bottles" })
T.like(r.stdout, "dev +" .. cfg:gsub("%p", "%%%0") .. "/bottles/dev%.yaml  %[ignored: it is inside the git working tree "
  .. "[^\n]*CORK_TRUSTED_DIRS=", "bottles: a bottle in a git tree is shown ignored, with the way to trust it")
local tenv = {}
for k, v in pairs(env) do tenv[k] = v end
tenv.CORK_TRUSTED_DIRS = dir .. "/config"
r = run({ "bottles" }, { env = tenv })
T.like(r.stdout, "\n  dev +" .. cfg:gsub("%p", "%%%0") .. "/bottles/dev%.yaml\n", "CORK_TRUSTED_DIRS: it loads")
r = run({ "plan", "--bottle", "dev", "--no-docker" }, { env = tenv })
T.is(r.status, 0, "CORK_TRUSTED_DIRS: plan --bottle dev works in a git-kept config dir", r.stderr)
fs.remove(dir .. "/config/.git", { recursive = true })

-- ---- cork complete ----------------------------------------------------------
local function lines(args) return run({ "complete", table.unpack(args) }).stdout end
T.is(lines({ "bottles" }), "dev\n", "complete bottles: the ones that load")
T.is(lines({ "agents" }), "coder\n", "complete agents")
T.like(lines({ "recipes" }), "\ndemo\ndocker\n", "complete recipes")
T.like(lines({ "options", "docker" }), "^%-%-agent\n%-%-detach\n", "complete options docker")
T.like(lines({ "options", "down" }), "%-%-all\n", "complete options of a command")
-- a journal whose cork process has exited
fs.write(dir .. "/journal.lua", [[require("cork.journal").set_root(arg[1])
require("cork.journal").open("dev-abc123", { backend = "docker", bottle = "dev" })]])
cork.proc.run({ BIN, "script", dir .. "/journal.lua", dir .. "/state/cork" })
T.is(lines({ "slugs" }), "dev-abc123\n", "complete slugs: the journals' bottles")

-- ---- bash and zsh completion ------------------------------------------------
local function bash_complete(words)
  local script = ([[
source %q/completions/cork.bash
COMP_WORDS=(%s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _cork; printf '%%s\n' "${COMPREPLY[@]}" | sort
]]):format(ROOT, table.concat(words, " "))
  local e = { PATH = os.getenv("PATH") }
  for k, v in pairs(env) do e[k] = v end
  return cork.proc.run({ "bash", "-c", script }, { env = e, cwd = dir }).stdout
end
local B = BIN
T.like(bash_complete({ B, "do" }), "^down\n$", "bash: a command")
T.like(bash_complete({ B, "run", "dock" }), "^docker\n$", "bash: a recipe name")
T.like(bash_complete({ B, "run", "docker", "--bottle", "d" }), "^dev\n$", "bash: a bottle name")
T.like(bash_complete({ B, "run", "docker", "--agent", "''" }), "^coder\n$", "bash: an agent name")
T.like(bash_complete({ B, "--json", "run", "docker", "--d" }), "^%-%-detach\n%-%-dry%-run\n$", "bash: a recipe's options")
T.like(bash_complete({ B, "down", "dev" }), "^dev%-abc123\n$", "bash: a slug")
T.like(bash_complete({ B, "help", "smol" }), "^smolmachines\n$", "bash: help takes recipes too")
local have_zsh = cork.proc.run({ "sh", "-c", "command -v zsh" }).status == 0
if not have_zsh then T.skip("zsh not installed", 1) else
  local z = cork.proc.run({ "zsh", "-n", ROOT .. "/completions/_cork" })
  T.is(z.status, 0, "zsh: _cork parses", z.stderr)
end

-- ---- the man page -------------------------------------------------------------
local build = BIN:match("^(.*)/cork$")
local man = build .. "/cork.1"
T.ok(fs.exists(man), "make builds " .. man)
local fresh = run({ "script", ROOT .. "/tools/man.lua" })
T.is(fresh.status, 0, "tools/man.lua runs")
T.is(fs.exists(man) and fs.read(man) or "", fresh.stdout, "the built man page is what tools/man.lua makes now")
local g = cork.proc.run({ "groff", "-man", "-ww", "-z" }, { stdin = fresh.stdout })
T.ok(g.status == 0 and g.stderr == "", "groff -man -ww: no warnings", g.stderr)
local text = cork.proc.run({ "groff", "-man", "-Tascii", "-P-c", "-P-b", "-P-u", "-rLL=200n" }, { stdin = fresh.stdout }).stdout
for _, c in ipairs({ "help", "attach", "bottles", "plan", "docker", "smolmachines" }) do
  local h = run({ "help", c }).stdout
  local missing
  for l in h:gmatch("[^\n]+") do
    if not text:find(l:gsub("^%s+", ""):gsub("%s+$", ""), 1, true) then missing = l; break end
  end
  T.ok(missing == nil, "man page holds `cork help " .. c .. "` line by line", missing)
end

fs.remove(dir, { recursive = true })
T.done()
