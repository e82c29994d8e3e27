-- The cork executable: subcommands, global flags, exit codes, --json events,
-- signals during a recipe (every cleanup runs, exit 130), CORK_PATH.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local BIN = os.getenv("CORK_BIN")
local fs, json = cork.fs, cork.json
local dir = fs.tempdir("cork-cli")

local function run(args, opts)
  local argv = { BIN }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  opts = opts or {}
  opts.timeout = opts.timeout or 30
  return cork.proc.run(argv, opts)
end

local function json_lines(text)
  local out, bad = {}, 0
  for line in text:gmatch("[^\n]+") do
    local ok, v = pcall(json.decode, line)
    if ok and type(v) == "table" then out[#out + 1] = v else bad = bad + 1 end
  end
  return out, bad
end

-- version, help, usage errors
local r = run({ "version" })
T.is(r.status, 0, "version exits 0")
T.like(r.stdout, "^cork %d+%.%d+%.%d+\nLua 5%.4", "version names cork and Lua")
T.like(r.stdout, "libcurl [%d.]+\nlibyaml [%d.]+\nOpenSSL ", "and libcurl, libyaml, OpenSSL")
r = run({ "--json", "version" })
local ev = json_lines(r.stdout)
T.is(ev[1] and ev[1].event, "version", "version --json is an event")
r = run({})
T.is(r.status, 2, "no command: exit 2")
T.like(r.stderr, "usage: cork", "and usage on stderr")
r = run({ "frobnicate" })
T.is(r.status, 2, "unknown command: exit 2")
T.like(r.stderr, "^cork: unknown command 'frobnicate'", "named")
for _, cmd in ipairs({ "run", "recipes", "script", "repl", "version" }) do
  r = run({ cmd, "--help" })
  T.ok(r.status == 0 and r.stdout:find("usage: cork " .. cmd, 1, true), cmd .. " --help")
end
r = run({ "help" })
T.ok(r.status == 0 and r.stdout:find("exit codes", 1, true), "help lists exit codes")
-- every command module (lua/cork/cmd/NAME.lua) is listed, and has its own --help
local root = os.getenv("CORK_ROOT") or "."
local listed = r.stdout
for _, f in ipairs(cork.fs.list(root .. "/lua/cork/cmd")) do
  local name = f:match("^(.+)%.lua$")
  if name then
    T.ok(listed:find("\n  " .. name .. " ", 1, true), "help lists " .. name)
    local h = run({ name, "--help" })
    T.ok(h.status == 0 and h.stdout:find("usage: cork " .. name, 1, true), name .. " --help")
  end
end

-- recipes
r = run({ "recipes" })
T.like(r.stdout, "hello%s+a tiny recipe that exercises scopes", "recipes lists hello with its description")
r = run({ "run", "no-such-recipe" })
T.is(r.status, 2, "missing recipe: exit 2 (a usage error)")
T.like(r.stderr, "cork: no recipe 'no%-such%-recipe' %(see `cork recipes`%)", "missing recipe message")
r = run({ "run" })
T.is(r.status, 2, "run without a recipe: exit 2")
r = run({ "run", "hello", "--bogus" })
T.is(r.status, 2, "recipe usage error: exit 2")
T.like(r.stderr, "unknown option %-%-bogus", "recipe option errors name the option")
r = run({ "run", "hello", "--nmae", "x" })
T.like(r.stderr, "did you mean %-%-name%?", "did-you-mean for a recipe option")

-- a run, human and json
local marker = dir .. "/marker"
r = run({ "run", "hello", "--marker", marker })
T.is(r.status, 0, "hello exits 0")
T.like(r.stderr, "==> step 1 of 3", "human progress on stderr")
T.is(fs.read(marker), "cleanup 3\ncleanup 2\ncleanup 1\n", "cleanups ran in reverse order")
r = run({ "run", "--json", "hello", "--steps", "2" })
local evs, bad = json_lines(r.stdout)
T.is(bad, 0, "--json: every stdout line is JSON")
T.ok(#evs >= 5, "--json: events emitted")
T.is(r.stderr, "", "--json: human output off")
local kinds = {}
for _, e in ipairs(evs) do
  kinds[e.event] = true
  if type(e.ts) ~= "number" or type(e.level) ~= "string" then kinds.bad_schema = true end
end
T.ok(kinds.step and kinds.resource and kinds.info and not kinds.bad_schema, "events carry ts, event, level")

-- failures: exit 1, message, traceback only with -v, json failed event
fs.remove(marker, { missing_ok = true })
r = run({ "run", "hello", "--fail-at", "2", "--marker", marker })
T.is(r.status, 1, "failing recipe: exit 1")
T.like(r.stderr, "cork: step 2 failed on purpose\n", "cork: <message>")
T.unlike(r.stderr, "stack traceback", "no traceback without -v")
T.is(fs.read(marker), "cleanup 2 after: demo\ncleanup 1 after: demo\n", "cleanups ran and saw the error")
r = run({ "-v", "run", "hello", "--fail-at", "1" })
T.like(r.stderr, "stack traceback", "-v prints the traceback")
r = run({ "run", "hello", "--json", "--fail-at", "1" })
evs = json_lines(r.stdout)
T.is(evs[#evs].event, "failed", "--json: last event is failed")
T.is(evs[#evs].kind, "demo", "with the error kind")
T.is(evs[#evs].exit_code, 1, "and the exit code")

-- a cleanup that errors does not stop the others
fs.remove(marker, { missing_ok = true })
r = run({ "run", "hello", "--cleanup-fails", "2", "--marker", marker })
T.is(r.status, 1, "failed cleanup: exit 1")
T.is(fs.read(marker), "cleanup 3\ncleanup 1\n", "cleanups 3 and 1 still ran")
T.like(r.stderr, "cleanup in scope 'hello' failed: .*cleanup 2 failed on purpose", "failure reported on stderr")
T.like(r.stderr, "cork: 1 cleanup in scope 'hello' failed", "and as the final error")

-- signals: INT and TERM unwind every registered cleanup and exit 130
local function signal_run(sig, count)
  local m = dir .. "/sig-" .. sig .. count
  local out = dir .. "/sig.out"
  local p = cork.proc.spawn({ BIN, "run", "hello", "--steps", "3", "--pause", "0.4", "--marker", m },
    { stderr = out })
  cork.sleep(1.0)  -- inside step 3's pause
  for _ = 1, count do p:kill(sig); cork.sleep(0.05) end
  local res = p:wait(10)
  return res, fs.exists(m) and fs.read(m) or "", fs.read(out)
end
for _, sig in ipairs({ "INT", "TERM", "HUP" }) do
  local res, m, err = signal_run(sig, 1)
  T.is(res and res.status, 130, "SIG" .. sig .. ": exit 130")
  T.is(m, "cleanup 3 after: interrupted\ncleanup 2 after: interrupted\ncleanup 1 after: interrupted\n",
    "SIG" .. sig .. ": every cleanup ran")
  T.like(err, "cork: interrupted %(SIG" .. sig .. "%)", "SIG" .. sig .. ": says so")
end

-- a signal ignored when cork starts stays ignored: `nohup cork ...` survives
-- a hangup, a background job of a script ignores the terminal's Ctrl-C
for _, sig in ipairs({ "HUP", "INT" }) do
  local m = dir .. "/ign-" .. sig
  local p = cork.proc.spawn({ "sh", "-c", 'trap "" "$0"; exec "$@"', sig, BIN, "run", "hello",
    "--steps", "2", "--pause", "0.4", "--marker", m })
  cork.sleep(0.5)
  p:kill(sig)
  local res = p:wait(10)
  T.is(res and res.status, 0, "SIG" .. sig .. " ignored at start (nohup, a background job): cork runs to the end")
  T.is(fs.exists(m) and fs.read(m), "cleanup 2\ncleanup 1\n", "SIG" .. sig .. " ignored: ordinary cleanups")
end

-- a second signal during cleanup does not abort it; a third forces exit
do
  local m = dir .. "/slow"
  local script = dir .. "/slow.lua"
  fs.write(script, ([[
    local s <close> = cork.scope("slow")
    s:defer(function() cork.fs.write(%q, "first done\n") end)
    s:defer(function() cork.sleep(1.0) end)
    cork.sleep(30)
  ]]):format(m))
  local out = dir .. "/slow.err"
  local p = cork.proc.spawn({ BIN, "script", script }, { stderr = out })
  cork.sleep(0.5); p:kill("INT"); cork.sleep(0.3); p:kill("INT")
  local res = p:wait(10)
  T.is(res and res.status, 130, "two signals: exit 130")
  T.is(fs.exists(m) and fs.read(m), "first done\n", "two signals: cleanup finished")
  T.like(fs.read(out), "interrupted again: cleanup continues", "second signal explained")
  fs.remove(m, { missing_ok = true })
  p = cork.proc.spawn({ BIN, "script", script }, { stderr = out })
  cork.sleep(0.5); p:kill("INT"); cork.sleep(0.2); p:kill("INT"); cork.sleep(0.1); p:kill("INT")
  res = p:wait(10)
  T.is(res and res.status, 130, "three signals: forced exit 130")
  T.ok(not fs.exists(m), "three signals: cleanup abandoned")
  T.like(fs.read(out), "forced exit before cleanup finished.*cork down SLUG", "forced exit says what to do")
end

-- an interactive child owns Ctrl-C; SIGTERM still ends it
do
  local script = dir .. "/inter.lua"
  fs.write(script, [[
    local r = cork.proc.run({ "sh", "-c", "sleep 0.6; echo child-done" }, { interactive = true })
    io.write("after:", r.status, "\n")
  ]])
  local out = dir .. "/inter.out"
  local p = cork.proc.spawn({ BIN, "script", script }, { stdout = out, stderr = out })
  cork.sleep(0.2); p:kill("INT")
  local res = p:wait(10)
  T.is(res and res.status, 0, "SIGINT during an interactive child: cork goes on")
  -- like a terminal's Ctrl-C, the signal reached the whole process group:
  -- the child decides (sh dies of it), cork itself goes on
  T.like(fs.read(out), "after:130\n$", "the child got the SIGINT; the script continued")
  fs.remove(out)
  p = cork.proc.spawn({ BIN, "script", script }, { stdout = out, stderr = out })
  cork.sleep(0.2); p:kill("TERM")
  res = p:wait(10)
  T.is(res and res.status, 130, "SIGTERM during an interactive child: interrupted")
end

-- script: arg table, ..., exit code from the chunk, cork bound
fs.write(dir .. "/args.lua", [[
  local a, b = ...
  io.write(arg[0], "|", a, "|", b, "|", #arg, "|", type(cork.scope))
  return 7
]])
r = run({ "script", dir .. "/args.lua", "x", "--json", "-v" })
T.is(r.stdout, dir .. "/args.lua|x|--json|3|table", "script gets its args untouched (even flag-like ones)")
T.is(r.status, 7, "an integer returned by the script is the exit code")
r = run({ dir .. "/args.lua", "y", "z" })
T.is(r.stdout, dir .. "/args.lua|y|z|2|table", "cork FILE.lua is cork script FILE.lua")
r = run({ "script", dir .. "/missing.lua" })
T.is(r.status, 1, "missing script: exit 1")
fs.write(dir .. "/syntax.lua", "local = 1")
r = run({ "script", dir .. "/syntax.lua" })
T.is(r.status, 2, "syntax error: exit 2 (invalid input)")
fs.write(dir .. "/usage.lua", "cork.error('usage', 'bad args')")
T.is(run({ "script", dir .. "/usage.lua" }).status, 2, "kind usage: exit 2")

-- repl through a pipe
r = run({ "repl" }, { stdin = "return 1 + 2\nlocal t = {a = 1}\nt = {a = 'x'}\nt\ncork.fs.exists('/')\nerror('oops')\nfor i = 1, 2 do\nprint(i)\nend\n" })
T.is(r.status, 0, "repl exits 0 on EOF")
T.is(r.stdout, "3\n{\"a\":\"x\"}\ntrue\n1\n2\n", "repl prints values, keeps state, handles multi-line input")
T.like(r.stderr, "oops", "repl reports errors and goes on")

-- CORK_PATH and --lua-path override embedded modules and recipes
fs.mkdir(dir .. "/path/recipes", 448)
fs.mkdir(dir .. "/path/lua/cork", 448)
fs.write(dir .. "/path/recipes/hello.lua", "-- hello: overridden\nio.write('override') return 0\n")
fs.write(dir .. "/path/recipes/extra.lua", "-- extra: an operator's own recipe\nio.write(require('cork.extra_mod').x)\n")
fs.write(dir .. "/path/lua/cork/extra_mod.lua", "return { x = 'from CORK_PATH' }\n")
r = run({ "run", "hello" }, { env = { CORK_PATH = dir .. "/path" } })
T.is(r.stdout, "override", "CORK_PATH overrides an embedded recipe")
r = run({ "--lua-path", dir .. "/path", "run", "extra" })
T.is(r.stdout, "from CORK_PATH", "--lua-path adds recipes and modules")
r = run({ "recipes" }, { env = { CORK_PATH = dir .. "/path" } })
T.like(r.stdout, "extra%s+an operator's own recipe", "recipes lists CORK_PATH recipes")
T.like(r.stdout, "hello%s+overridden", "and the override wins")
r = run({ "run", dir .. "/path/recipes/extra.lua" }, { env = { CORK_PATH = dir .. "/path" } })
T.is(r.stdout, "from CORK_PATH", "a recipe by path")

-- NO_COLOR / --no-color: no escape codes (stderr is not a TTY here anyway)
r = run({ "--no-color", "run", "hello", "--steps", "1" })
T.unlike(r.stderr, "\27%[", "--no-color: no escape codes")

fs.remove(dir, { recursive = true })
T.done()
