-- cork.docker exec: exit codes, stdout/stderr separation (frames larger than
-- one read, interleaved), stdin, env/user/workdir, errors; no leaks.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")

local d = H.connect(T)
local img = H.image()
local before = H.snapshot(d)
local s <close> = cork.scope("test_docker_exec")
s:defer(function() H.sweep(d) end)

local c = d:container_create { name = H.name("exec"), image = img, labels = H.labels,
  cmd = { "sleep", "3600" }, init = true }
d:container_start(c)

local e
local r = d:exec(c, { "true" })
T.same(r, { status = 0, stdout = "", stderr = "" }, "exec true: status 0, no output")
r = d:exec(c, { "sh", "-c", "echo out; echo err >&2; exit 3" })
T.is(r.status, 3, "exit code 3")
T.is(r.stdout, "out\n", "stdout")
T.is(r.stderr, "err\n", "stderr, separate")
r = d:exec(c, { "sh", "-c", "kill -9 $$" })
T.is(r.status, 137, "killed by a signal: 128 + 9")
-- engines differ: 20.10 reports a missing program as exit 126/127, newer ones may raise
r = select(2, pcall(d.exec, d, c, { "/no/such/program" }))
if not T.ok(type(r) == "table" and (r.status == 126 or r.status == 127 or r.kind ~= nil),
  "a missing program: exit 126/127 or an error") then
  T.diag("got: " .. (type(r) == "table" and require("cork.json").encode(r) or type(r) .. " " .. tostring(r)))
end

-- larger than one frame and one read; both streams at once
r = d:exec(c, { "sh", "-c",
  "i=0; while [ $i -lt 2000 ]; do echo out-$i; echo err-$i >&2; i=$((i+1)); done; " ..
  "yes 0123456789abcdef | head -c 3000000; exit 5" })
T.is(r.status, 5, "big output: exit code")
local outs, errs = 0, 0
for _ in r.stdout:gmatch("out%-%d+\n") do outs = outs + 1 end
for _ in r.stderr:gmatch("err%-%d+\n") do errs = errs + 1 end
T.is(outs, 2000, "every stdout line, in the stdout stream")
T.is(errs, 2000, "every stderr line, in the stderr stream")
T.unlike(r.stdout, "err%-", "no stderr in stdout")
T.unlike(r.stderr, "out%-", "no stdout in stderr")
local lines = {}
for l in r.stdout:gmatch("out%-(%d+)\n") do lines[#lines + 1] = tonumber(l) end
local ordered = true
for i, v in ipairs(lines) do if v ~= i - 1 then ordered = false end end
T.ok(ordered, "stdout order kept")
T.is(#r.stdout, #table.concat(lines, "") + 2000 * 5 + 3000000, "3 MB of stdout, byte-exact")
r = d:exec(c, { "sh", "-c", "head -c 5000000 /dev/zero | tr '\\0' x >&2" })
T.is(#r.stderr, 5000000, "5 MB on stderr alone")

-- stdin
local input = string.rep("line of stdin\n", 20000)
r = d:exec(c, { "sh", "-c", "wc -c; cat >&2" }, { stdin = input })
T.like(r.stdout, "^%s*" .. #input .. "%s*$", "stdin: all bytes arrive, then EOF")
T.is(r.stderr, "", "stdin consumed by the first reader")
r = d:exec(c, { "cat" }, { stdin = "" })
T.same(r, { status = 0, stdout = "", stderr = "" }, "empty stdin: immediate EOF")

-- env, user, workdir
local SECRET = "exec-secret-" .. H.id
r = d:exec(c, { "sh", "-c", "echo $A:$B; id -u; pwd" },
  { env = { A = "1", B = SECRET }, user = "65534", workdir = "/tmp" })
T.is(r.stdout, "1:" .. SECRET .. "\n65534\n/tmp\n", "env, user, workdir")
r = d:exec(c, { "sh", "-c", "echo $X" }, { env = { "X=list form" } })
T.is(r.stdout, "list form\n", "env as a list of NAME=value")

-- errors
e = T.raises(function() d:exec(H.name("nope"), { "true" }, { env = { T = SECRET } }) end, "not_found",
  "No such container", "exec in a missing container: not_found")
T.unlike(tostring(e and e.message), SECRET, "no secret in the error")
T.raises(function() d:exec(c, {}) end, nil, "empty argv", "empty argv: usage error")
T.raises(function() d:exec(c, { "true" }, { stdim = "x" }) end, nil, "unknown option 'stdim'", "unknown option")
local t0 = cork.time()
T.raises(function() d:exec(c, { "sleep", "5" }, { timeout = 0.3 }) end, "timeout", "still running after 0.3 s",
  "exec timeout")
T.ok(cork.time() - t0 < 2, "and promptly")
d:container_stop(c, { timeout = 0 })
T.raises(function() d:exec(c, { "true" }) end, "conflict", "is not running", "exec in a stopped container: conflict")
d:container_remove(c, { force = true })
H.no_leaks(T, d, before)
T.done()
