-- `cork serve --stdio` driven through pipes: every method, malformed input,
-- unknown methods, bad params, a cancel during a run, shutdown and EOF
-- (leaving launches running, or ending them with --end-on-exit). Every line
-- the server writes must parse and match the protocol's schema.
-- CORK_SERVE_WRAP="valgrind --leak-check=full --error-exitcode=1 -q" runs the
-- server under that command (the children it starts run without it).
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
local cork = require "cork"
local json = require "cork.json"
local proc, fs = cork.proc, cork.fs

local bin = os.getenv("CORK_BIN") or (os.getenv("CORK_ROOT") .. "/build/cork")

local fx <close> = F.setup()
local state = fx.dir .. "/state"
local env = { HOME = fx.home, XDG_CONFIG_HOME = fx.home .. "/.config", XDG_STATE_HOME = state,
  DOCKER_HOST = "unix://" .. fx.dir .. "/no-docker.sock", CORK_PATH = fx.dir .. "/path", CORK_BUNDLE_IMAGE = false }
for k, v in pairs(F.secrets) do env[k] = v end

-- A recipe that "launches" a bottle: journals it and says bottle_ready, as
-- the stock recipes do with --detach (so `down` at shutdown has work to do).
fs.mkdir(fx.dir .. "/path/recipes")
fs.write(fx.dir .. "/path/recipes/fakelaunch.lua", [[
-- fakelaunch: journal a bottle and report it ready (serve tests)
local opts = require("cork.args").parse({ ... }, { slug = "string", detach = "boolean" })
assert(opts.detach, "serve passes --detach by default")
local j = require("cork.journal").open(opts.slug, { backend = "docker", bottle = "fake" })
j:meta({ attach = { "echo", "attached", opts.slug } })
j:detached()
require("cork.log").event("bottle_ready", { slug = opts.slug, backend = "docker" })
]])

local C = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/serve_client.lua")
local bad, TIMEOUT, wrap = C.bad, C.TIMEOUT, C.wrap
local events_of = C.events_of
local function start(extra) return C.start({ dir = fx.dir, env = env, cwd = fx.cwd, extra = extra }) end


-- ---- one server: the methods, bad input ----------------------------------
local s = start()

local r = s:request(1, "recipes")
local names = {}
for _, x in ipairs(r and r.result and r.result.recipes or {}) do names[x.name] = x end
T.ok(names.hello and names.docker and names.smolmachines and names.fakelaunch, "recipes: stock ones and CORK_PATH's")
T.is(names.hello and names.hello.description, "a tiny recipe that exercises scopes, steps and events",
  "recipes: description")
T.is(names.hello and names.hello.event, nil, "recipes: items are plain (no event fields)")

-- manifests: the names --bottle and --agent accept, for completion
r = s:request("names", "manifests")
local manifest = require "cork.manifest"
local mopts = { env = env, cwd = fx.cwd }
T.same(r and r.result and r.result.bottles, manifest.list("bottle", mopts), "manifests: the bottle names")
T.ok(r and r.result and #r.result.bottles > 0, "manifests: some bottles found (" .. #(r and r.result and r.result.bottles or {}) .. ")")
T.same(r and r.result and r.result.agents, manifest.list("agent", mopts), "manifests: the agent names")
r = s:request("names2", "manifests", { x = 1 })
T.is(r and r.error and r.error.message, "manifests: unknown param 'x'", "manifests: no params")

-- malformed lines: an error answer each, and the server goes on
s:send("this is not json")
r = s:response(json.null)
T.is(r and r.error.kind, "parse", "malformed JSON: kind parse")
T.like(r and r.error.message, "^invalid JSON: ", "malformed JSON: message")
s:send("[1, 2]")
r = s:response(json.null)
T.is(r and r.error.kind, "invalid_request", "a JSON array: invalid_request")
s:send('{"method": "ls"}')
r = s:response(json.null)
T.is(r and r.error.message, "request id must be a string or a finite number", "no id: invalid_request, id null")
s:send('{"id": nan, "method": "ls"}')
r = s:response(json.null)
T.is(r and r.error.kind, "invalid_request", "a nan id (lua-cjson reads it): invalid_request, and the server lives")
s:send('{"id": {"x": 1}, "method": "ls"}')
r = s:response(json.null)
T.is(r and r.error.kind, "invalid_request", "an object id: invalid_request")
s:send('{"id": 5, "method": "ls", "jsonrpc": "2.0"}')
r = s:response(5)
T.is(r and r.error.message, "unknown field 'jsonrpc' in request", "unknown field named")
s:send('{"id": 6}')
r = s:response(6)
T.is(r and r.error.message, "request method must be a string", "no method")
s:send("")
r = s:request(7, "frobnicate")
T.is(r and r.error.kind, "unknown_method", "unknown method: kind")
T.is(r and r.error.message, "unknown method 'frobnicate'", "unknown method: message")
r = s:request("p1", "run", {})
T.is(r and r.error.message, "run: missing param 'recipe'", "missing param")
r = s:request("p2", "plan", { bottle = 5 })
T.is(r and r.error.message, "plan: param 'bottle' must be a string", "param type")
r = s:request("p3", "ls", { verbose = true })
T.is(r and r.error.message, "ls: unknown param 'verbose'", "unknown param")
r = s:request("p4", "run", { recipe = "hello", args = { "--steps", 2 } })
T.is(r and r.error.message, "run: param 'args' must be a list of strings", "args must be strings")
r = s:request("p5", "down", {})
T.is(r and r.error.message, "down: down needs slugs (a list) or all = true", "down needs slugs")
s:send('{"id": "p6", "method": "ls", "params": [1]}')
r = s:response("p6")
T.is(r and r.error.message, "params must be a JSON object", "params must be an object")

-- issue 20: what the server writes is JSON text whatever came in, ids come
-- back exactly, a recipe cannot pose as a global flag, `finished` has ms
s:send('{"id": "u1", "method": "fr\xffob\xc3"}')
r = s:response("u1")
T.ok(s.raw[#s.raw] and utf8.len(s.raw[#s.raw]) ~= nil, "invalid UTF-8 in a request: the answer line is valid UTF-8",
  s.raw[#s.raw])
T.is(r and r.error.message, "unknown method 'fr\u{FFFD}ob\u{FFFD}'", "each invalid byte is U+FFFD")
s:send('{"id": 123456789012345, "method": "frob"}')
r = s:response(123456789012345)
T.ok(s.raw[#s.raw] and s.raw[#s.raw]:find('"id":123456789012345', 1, true) ~= nil,
  "a 15-digit numeric id comes back with every digit", s.raw[#s.raw])
s:send('{"id": 9007199254740992, "method": "frob"}')
r = s:response(9007199254740992)
T.ok(s.raw[#s.raw] and s.raw[#s.raw]:find('"id":9007199254740992', 1, true) ~= nil, "2^53 exactly", s.raw[#s.raw])
s:send('{"id": 0.5, "method": "frob"}')
r = s:response(0.5)
T.ok(s.raw[#s.raw] and s.raw[#s.raw]:find('"id":0.5', 1, true) ~= nil, "a fractional id as it came", s.raw[#s.raw])
for i, rec in ipairs({ "-v", "--lua-path", "--json", "" }) do
  r = s:request("dash" .. i, "run", { recipe = rec })
  T.is(r and r.error and r.error.message, "run: recipe must be a recipe name or path, not empty or starting with '-'",
    ("recipe %q refused (it would be read as a global flag)"):format(rec))
end

-- plan: the `cork plan` machinery; no secret value in anything we got
r = s:request("plan", "plan", { bottle = "dev", no_docker = true })
T.is(r and r.result and type(r.result.plan), "table", "plan: result.plan")
T.ok(r and r.result and r.result.plan and r.result.plan.slug ~= nil, "plan: has a slug")
r = s:request("plan2", "plan", { bottle = "ghost" })
T.is(r and r.error and r.error.kind, "not_found", "plan of a missing bottle: the child's error kind")
T.is(r and r.error and r.error.exit_code, 2, "and its exit code (2: a misspelled name is a usage error)")
local blob = {}
for _, m in ipairs(s.seen) do blob[#blob + 1] = json.encode(m) end
T.unlike(table.concat(blob, "\n"), "FIXTURESECRET", "no secret value in any answer or event")

-- run: answered at once, events tagged, a finished event
r = s:request("run1", "run", { recipe = "hello", args = { "--steps", "2" }, detach = false })
T.ok(r and r.result and type(r.result.pid) == "number" and r.result.pid % 1 == 0, "run: answered with the child's pid")
T.same(r and r.result.argv, { "--json", "run", "hello", "--steps", "2" }, "run: the command it runs")
local fin, all = s:until_(function(m) return m.id == "run1" and m.event == "finished" end)
T.is(#events_of(all, "run1", "step"), 2, "run: step events tagged with the request id")
T.is(#events_of(all, "run1", "resource"), 2, "run: the recipe's own events too")
T.is(fin and fin.exit_code, 0, "run: finished, exit 0")
T.is(fin and fin.status, "ok", "run: status ok")
T.ok(fin and type(fin.ts) == "number" and math.abs(fin.ts * 1000 - math.floor(fin.ts * 1000 + 0.5)) < 1e-3
  and s.raw and table.concat(s.raw, "\n"):find('"event":"finished"', 1, true) ~= nil, "finished: ts is a number")
do
  local line
  for _, l in ipairs(s.raw) do if l:find('"event":"finished"', 1, true) then line = l end end
  T.ok(line and line:find('"ts":%d+%.%d') ~= nil, "finished: ts has milliseconds, like every other event", line)
end

-- a run that fails: the child's failed event, then finished with its code
r = s:request("run2", "run", { recipe = "hello", args = { "--fail-at", "1" }, detach = false })
fin, all = s:until_(function(m) return m.id == "run2" and m.event == "finished" end)
T.is(#events_of(all, "run2", "failed"), 1, "failing run: the failed event is relayed")
T.ok(fin and fin.exit_code == 1 and fin.kind == "demo" and fin.status == "failed", "failing run: finished, exit 1, kind demo")

-- cancel during a run: every cleanup runs, exit 130
local marker = fx.dir .. "/marker"
r = s:request("long", "run", { recipe = "hello", detach = false,
  args = { "--steps", "3", "--pause", "0.4", "--marker", marker } })
local first = s:until_(function(m) return m.id == "long" and m.event == "resource" end)
T.ok(first ~= nil, "long run: first resource")
r = s:request("dup", "ls")   -- the server answers while the run goes on
T.ok(r and r.result and type(r.result.bottles) == "table", "ls answers while a run is in progress")
s:send({ id = "long", method = "ls" })
r = s:response("long")
T.is(r and r.error and r.error.kind, "invalid_request", "an id in use is refused")
r = s:request("c1", "cancel", { id = "long" })
T.same(r and r.result, { cancelled = true }, "cancel: answered")
fin, all = s:until_(function(m) return m.id == "long" and m.event == "finished" end)
T.ok(fin and fin.exit_code == 130 and fin.status == "interrupted" and fin.cancelled == true,
  "cancelled run: finished with exit 130, cancelled")
local lines = fs.exists(marker) and fs.read(marker) or ""
local n = select(2, lines:gsub("after: interrupted", ""))
T.ok(n >= 1 and not lines:find("cleanup %d\n"), "every cleanup ran, after the interrupt")
T.like(lines, "cleanup 1 after: interrupted\n$", "in reverse order, the first step's last")
r = s:request("c2", "cancel", { id = "long" })
T.is(r and r.error and r.error.kind, "not_found", "cancel of a finished request: not_found")

-- ls, attach_command, down against a journalled bottle (with a watch
-- seeing it come and go)
local slug = "serve-test-a1b2"
r = s:request("w", "ls", { watch = true, interval = 0.2 })
T.same(r and r.result and r.result.argv, { "--json", "ls", "--watch", "--interval", "0.2" }, "ls watch: streams")
r = s:request("w2", "ls", { interval = 0.2 })
T.is(r and r.error and r.error.message, "ls: interval needs watch = true", "ls: interval without watch")
r = s:request("launch", "run", { recipe = "fakelaunch", args = { "--slug", slug } })
fin = s:until_(function(m) return m.id == "launch" and m.event == "finished" end)
T.is(fin and fin.slug, slug, "launch: the finished event names the bottle")
r = s:request("ls", "ls")
local found
for _, b in ipairs(r and r.result and r.result.bottles or {}) do if b.slug == slug then found = b end end
T.ok(found ~= nil, "ls: the bottle is listed")
-- (a first event may catch the launch under way; a later one has the state ls gave)
local seen = s:find(function(m)
  return m.id == "w" and m.event == "bottle" and m.slug == slug and m.backend == "docker"
    and m.status == (found and found.status)
end)
T.is(seen and seen.status, found and found.status, "ls watch: a bottle event for the new bottle, as ls lists it")
T.is(found and found.event, nil, "ls: rows are plain")
r = s:request("att", "attach_command", { slug = slug })
T.same(r and r.result, { slug = slug, argv = { "echo", "attached", slug } }, "attach_command: the argv to run")
r = s:request("att2", "attach_command", { slug = "no-such-bottle" })
T.is(r and r.error and r.error.kind, "not_found", "attach_command of an unknown bottle: not_found")
-- supervise_pending: a request in the bottle's queue keeps its own id
fs.mkdir(state .. "/cork/" .. slug .. "/supervise/queue", tonumber("0700", 8))
fs.write(state .. "/cork/" .. slug .. "/supervise/queue/q1.json",
  '{"id":"q1","kind":"allowlist","host":"pypi.org","justification":"pip","created":1}')
r = s:request("svp", "supervise_pending", { slug = slug })
local q = r and r.result and r.result.requests and r.result.requests[1]
T.is(q and q.id, "q1", "supervise_pending: the request's own id is in the result")
T.is(q and q.host, "pypi.org", "supervise_pending: and its fields")
r = s:request("down", "down", { slugs = { slug } })
T.is(r and r.result and r.result.down and r.result.down[1] and r.result.down[1].slug, slug, "down: result")
T.ok(not fs.exists(state .. "/cork/" .. slug), "down: the bottle's state is gone")
local gone = s:find(function(m) return m.id == "w" and m.event == "bottle_gone" end)
T.is(gone and gone.slug, slug, "ls watch: bottle_gone after down")
r = s:request("wc", "cancel", { id = "w" })
fin = s:until_(function(m) return m.id == "w" and m.event == "finished" end)
T.ok(fin and fin.cancelled and fin.exit_code == 0, "ls watch: ended by cancel (exit 0)")
r = s:request("ls2", "ls")
T.same(r and r.result, { bottles = {} }, "ls: none left (an empty list)")
T.like(s.raw[#s.raw], '"bottles":%[%]', "ls: an empty list is [] on the wire")

-- shutdown (no end): answered, exit 0
r = s:request("bye", "shutdown")
T.same(r and r.result, { cancelled = {}, left_running = {}, ended = {} }, "shutdown: answered")
T.is(s:exit_status(), 0, "shutdown: exit 0")
T.is(#bad, 0, "every line parsed and matched the schema", table.concat(bad, "\n"))

-- ---- shutdown ends a watch: it never outlives the session -----------------
s = start()
r = s:request("w", "ls", { watch = true })
local wpid = r and r.result and r.result.pid
r = s:request("bye", "shutdown")
T.same(r and r.result, { cancelled = { "w" }, left_running = {}, ended = {} }, "shutdown: the watch is cancelled")
T.is(s:exit_status(), 0, "shutdown with a watch: exit 0")
T.ok(wpid and not cork.core.pid_alive(wpid), "shutdown: no ls --watch left running")

-- ---- a server killed outright: its watch stops by itself -------------------
s = start()
r = s:request("w", "ls", { watch = true, interval = 0.2 })
wpid = r and r.result and r.result.pid
T.ok(wpid and cork.core.pid_alive(wpid), "killed server: its watch runs")
s.p:kill("KILL")
s.p:wait(TIMEOUT)
local t1 = cork.time()
while wpid and cork.core.pid_alive(wpid) and cork.time() - t1 < 10 do cork.sleep(0.05) end
T.ok(wpid and not cork.core.pid_alive(wpid), ("killed server: the watch stopped by itself (%.1f s)"):format(cork.time() - t1))
s:eof()

-- ---- EOF without --end-on-exit: the launch carries on ----------------------
local m2 = fx.dir .. "/marker2"
s = start()
r = s:request("r", "run", { recipe = "hello", detach = false, args = { "--steps", "2", "--pause", "0.5", "--marker", m2 } })
local pid = r and r.result and r.result.pid
s:until_(function(m) return m.id == "r" and m.event == "resource" end)
local t0 = cork.time()
T.is(s:exit_status(), 0, "EOF: exit 0")
T.ok(cork.time() - t0 < 5, "EOF: the server does not wait for the launch")
T.ok(pid and cork.core.pid_alive(pid), "EOF: the launch is still running")
while pid and cork.core.pid_alive(pid) and cork.time() - t0 < TIMEOUT do cork.sleep(0.05) end
T.is(fs.exists(m2) and fs.read(m2), "cleanup 2\ncleanup 1\n", "EOF: ...and it finished on its own (no interrupt)")

-- ---- shutdown without end while a run is in progress ------------------------
s = start()
r = s:request("r", "run", { recipe = "hello", detach = false, args = { "--steps", "1", "--pause", "1" } })
pid = r and r.result and r.result.pid
r = s:request("s", "shutdown")
T.same(r and r.result, { cancelled = {}, left_running = { "r" }, ended = {} }, "shutdown: reports the run left running")
T.is(s:exit_status(), 0, "shutdown: exit 0")
T.ok(pid and cork.core.pid_alive(pid), "the run goes on")
while pid and cork.core.pid_alive(pid) do cork.sleep(0.05) end

-- ---- EOF with --end-on-exit: runs cancelled, launched bottles ended ---------
local m3 = fx.dir .. "/marker3"
local slug2 = "serve-test-c3d4"
s = start({ "--end-on-exit" })
r = s:request("l", "run", { recipe = "fakelaunch", args = { "--slug", slug2 } })
s:until_(function(m) return m.id == "l" and m.event == "finished" end)
T.ok(fs.exists(state .. "/cork/" .. slug2), "end-on-exit: a bottle launched")
r = s:request("r", "run", { recipe = "hello", detach = false, args = { "--steps", "2", "--pause", "5", "--marker", m3 } })
s:until_(function(m) return m.id == "r" and m.event == "resource" end)
s:eof()
fin, all = s:until_(function(m) return m.id == "r" and m.event == "finished" end)
T.is(fin and fin.exit_code, 130, "end-on-exit: the run in progress is cancelled at EOF")
T.is(fs.exists(m3) and fs.read(m3), "cleanup 1 after: interrupted\n", "end-on-exit: its cleanup ran")
local rest = {}
while true do local m = s:recv(); if not m then break end; rest[#rest + 1] = m end
T.ok(#events_of(rest, json.null, "info") >= 1, "end-on-exit: down's progress relayed (untagged: no request)")
T.is(s:exit_status(), 0, "end-on-exit: exit 0")
T.ok(not fs.exists(state .. "/cork/" .. slug2), "end-on-exit: the launched bottle is down")

-- ---- shutdown {end = true} --------------------------------------------------
local slug3 = "serve-test-e5f6"
s = start()
s:request("l", "run", { recipe = "fakelaunch", args = { "--slug", slug3 } })
s:until_(function(m) return m.id == "l" and m.event == "finished" end)
r = s:request("r", "run", { recipe = "hello", detach = false, args = { "--steps", "1", "--pause", "5" } })
s:until_(function(m) return m.id == "r" and m.event == "resource" end)
r = s:request("bye", "shutdown", { ["end"] = true })
T.same(r and r.result, { cancelled = { "r" }, left_running = {}, ended = { slug3 } }, "shutdown end: what it ended")
T.is(#events_of(s.seen, "r", "finished"), 1, "shutdown end: the run's finished event came first")
T.is(s:exit_status(), 0, "shutdown end: exit 0")
T.ok(not fs.exists(state .. "/cork/" .. slug3), "shutdown end: the bottle is down")

-- ---- signals: SIGTERM to the server is EOF plus exit 130 ------------------
s = start()
r = s:request("r", "run", { recipe = "hello", detach = false, args = { "--steps", "1", "--pause", "1" } })
pid = r and r.result and r.result.pid
s:until_(function(m) return m.id == "r" and m.event == "resource" end)
s.p:kill("TERM")
T.is(s.p:wait(TIMEOUT).status, 130, "SIGTERM: the server exits 130")
T.ok(pid and cork.core.pid_alive(pid), "SIGTERM without --end-on-exit: the launch carries on")
while pid and cork.core.pid_alive(pid) do cork.sleep(0.05) end
s:eof()

local m4 = fx.dir .. "/marker4"
s = start({ "--end-on-exit" })
r = s:request("r", "run", { recipe = "hello", detach = false, args = { "--steps", "1", "--pause", "5", "--marker", m4 } })
s:until_(function(m) return m.id == "r" and m.event == "resource" end)
s.p:kill("INT")
fin = s:until_(function(m) return m.id == "r" and m.event == "finished" end)
T.is(fin and fin.exit_code, 130, "SIGINT with --end-on-exit: the run is cancelled and reported")
T.is(s.p:wait(TIMEOUT).status, 130, "then the server exits 130")
T.is(fs.exists(m4) and fs.read(m4), "cleanup 1 after: interrupted\n", "the run's cleanup ran")
s:eof()

-- ---- a signal during shutdown {end}: the wait for cleanups goes on -----------
fs.write(fx.dir .. "/path/recipes/slowclean.lua", [[
-- slowclean: a cleanup that takes a while (serve tests)
local marker = ...
local s <close> = cork.scope("slow")
s:defer(function() cork.sleep(1); cork.fs.write(marker, "cleaned") end)
require("cork.log").event("resource", { name = "slow" })
cork.sleep(30)
]])
local m5 = fx.dir .. "/marker5"
s = start()
r = s:request("r", "run", { recipe = "slowclean", detach = false, args = { m5 } })
s:until_(function(m) return m.id == "r" and m.event == "resource" end)
s:send({ id = "bye", method = "shutdown", params = { ["end"] = true } })
cork.sleep(0.3)
s.p:kill("INT")
r = s:response("bye")
T.same(r and r.result, { cancelled = { "r" }, left_running = {}, ended = {} },
  "SIGINT during shutdown {end}: the shutdown still finishes and answers")
T.is(fs.exists(m5) and fs.read(m5), "cleaned", "the run's slow cleanup was waited for")
T.is(#events_of(s.seen, "r", "finished"), 1, "and its end reported")
T.is(s.p:wait(TIMEOUT).status, 130, "then the server exits 130")
s:eof()

-- ---- the command line --------------------------------------------------------
local function cli(args)
  local argv = { bin }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return proc.run(argv, { env = env })
end
local c = cli({ "serve" })
T.is(c.status, 2, "serve without --stdio: usage")
T.like(c.stderr, "serve needs %-%-stdio", "serve without --stdio: message")
c = cli({ "--json", "serve", "--stdio" })
T.is(c.status, 2, "serve with the global --json: usage")
c = cli({ "serve", "--help" })
T.like(c.stdout, "usage: cork serve %-%-stdio", "serve --help")

T.is(#bad, 0, "every line of every server parsed and matched the schema", table.concat(bad, "\n"))
local errs = fs.read(fx.dir .. "/stderr")
T.unlike(errs, "traceback", "no Lua traceback on any server's stderr", errs)
if #wrap > 0 then T.unlike(errs, "==%d+==", "the wrapper reported nothing", errs) end
T.done()
