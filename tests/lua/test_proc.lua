-- cork.proc: argv (never a shell), env, cwd, stdin, timeout, capture limits, spawn.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local proc = cork.proc

local r = proc.run({ "sh", "-c", "echo out; echo err >&2; exit 3" })
T.is(r.status, 3, "exit status")
T.is(r.stdout, "out\n", "stdout captured")
T.is(r.stderr, "err\n", "stderr captured separately")
T.is(r.timed_out, false, "not timed out")

r = proc.run({ "echo", "$HOME", "a b", ";", "|" })
T.is(r.stdout, "$HOME a b ; |\n", "argv passes through untouched (no shell)")

r = proc.run({ "sh", "-c", "echo $CORK_T1:$CORK_T2:${PATH:+haspath}" }, { env = { CORK_T1 = "one", CORK_T2 = "two" } })
T.is(r.stdout, "one:two:haspath\n", "env extends the inherited environment")
r = proc.run({ "/usr/bin/env" }, { env = { ONLY = "x" }, clear_env = true })
T.is(r.stdout, "ONLY=x\n", "clear_env replaces the environment")
r = proc.run({ "sh", "-c", "echo ${HOME:-unset}" }, { env = { HOME = false } })
T.is(r.stdout, "unset\n", "env value false unsets a variable")

-- what the child used (wait4): a child that touches 16 MiB has a peak RSS
-- of at least that, and burns some CPU doing it
r = proc.run({ "sh", "-c", 'x=$(head -c 16777216 /dev/zero | tr "\\0" a); echo ${#x}' })
T.is(r.stdout, "16777216\n", "rusage: the child held 16 MiB")
T.ok(math.type(r.rusage.max_rss) == "integer" and r.rusage.max_rss >= 16 * 1024,
  "rusage.max_rss in KiB: " .. tostring(r.rusage.max_rss))
T.ok(r.rusage.user + r.rusage.system > 0, "rusage.user + rusage.system in seconds")

r = proc.run({ "pwd" }, { cwd = "/tmp" })
T.is(r.stdout, "/tmp\n", "cwd")

local big = string.rep("0123456789", 100000)
r = proc.run({ "cat" }, { stdin = big })
T.is(#r.stdout, #big, "1 MB through stdin and back")
r = proc.run({ "cat" }, { stdin = big, max_output = 1000 })
T.is(#r.stdout, 1000, "output bounded by max_output")
T.is(r.truncated, true, "and marked truncated")

r = proc.run({ "sh", "-c", "head -c 10 >/dev/null; exit 0" }, { stdin = big })
T.is(r.status, 0, "a child that stops reading stdin does not kill cork (no SIGPIPE)")

local t0 = cork.time()
r = proc.run({ "sleep", "10" }, { timeout = 0.3, grace = 0.5 })
T.is(r.timed_out, true, "timeout reported")
T.is(r.signal, 15, "TERM first")
T.ok(cork.time() - t0 < 2, "returns promptly after the timeout")
r = proc.run({ "sh", "-c", "trap '' TERM; sleep 10" }, { timeout = 0.2, grace = 0.3 })
T.is(r.signal, 9, "KILL after the grace period when TERM is ignored")

r = proc.run({ "sh", "-c", "sleep 30 & echo started" }, { timeout = 5 })
T.is(r.stdout, "started\n", "a grandchild holding the pipes does not hang run()")

T.raises(function() proc.run({ "cork-no-such-program" }) end, "not_found",
  "^cannot run cork%-no%-such%-program: program not found$", "missing program: kind not_found")
T.raises(function() proc.run({ "true" }, { cwd = "/nonexistent/dir" }) end, "not_found",
  "working directory /nonexistent/dir does not exist", "missing cwd")
T.raises(function() proc.run({}) end, nil, "argv must be a non%-empty list", "empty argv")
T.raises(function() proc.run({ "true" }, { tiemout = 1 }) end, nil, "unknown option 'tiemout'", "unknown option named")
T.raises(function() proc.run("true") end, nil, "table expected", "argv must be a table")

-- spawn
local dir = cork.fs.tempdir("cork-proc")
local p = proc.spawn({ "sh", "-c", "echo hi; sleep 10" }, { stdout = dir .. "/out" })
T.ok(p:pid() > 0, "spawn gives a pid")
T.ok(p:running(), "running")
local res, why = p:wait(0.1)
T.ok(res == nil and why == "timeout", "wait with timeout")
T.ok(p:kill("TERM"), "kill")
res = p:wait(5)
T.is(res and res.signal, 15, "wait returns the signal")
T.ok(not p:running(), "not running after wait")
T.is(cork.fs.read(dir .. "/out"), "hi\n", "stdout to a file")
do
  local q <close> = proc.spawn({ "sleep", "10" })
  T.ok(q:running(), "spawned child in a to-be-closed variable")
  p = q
end
T.ok(not p:running(), "closing the handle ends the child")
T.raises(function() p:kill("BOGUS") end, nil, "unknown signal 'BOGUS'", "bad signal name")
cork.fs.remove(dir, { recursive = true })

T.done()
