-- `cork serve --stdio` driving real launches of the docker recipe against
-- the private engine: run (detached by default) with its events relayed and
-- a `finished` naming the bottle, ls showing it running, attach_command's
-- argv, down; a launch cancelled half-way leaves nothing; --end-on-exit
-- ends this session's bottle at EOF. Nothing left on the engine afterwards.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local C = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/serve_client.lua")

local d = H.connect(T)
R.images(d)
local before = H.snapshot(d)
local s <close> = cork.scope("test_serve_docker")
s:defer(function() H.sweep(d) end)
local h = R.home("serve")
s:defer(cork.fs.remove, h.dir, { recursive = true })
local TIMEOUT = 120

local function start(extra) return C.start({ dir = h.dir, env = h.env, extra = extra }) end
local function finished(srv, id)
  return srv:until_(function(m) return m.id == id and m.event == "finished" end, TIMEOUT)
end

-- 1. a launch, listed, attached to (the argv), ended -------------------------
local srv = start()
local r = srv:request("up", "run", { recipe = "docker", args = { "--bottle", "w6" } })
T.same(r and r.result and r.result.argv, { "--json", "run", "docker", "--bottle", "w6", "--detach" },
  "run: a detached launch of the docker recipe")
local fin, all = finished(srv, "up")
T.is(fin and fin.exit_code, 0, "run: finished, exit 0")
local slug = fin and fin.slug
T.ok(slug ~= nil, "run: finished names the bottle (" .. tostring(slug) .. ")")
T.ok(#C.events_of(all, "up", "step") >= 4, "run: the launch's steps were relayed, tagged")
local ready = C.events_of(all, "up", "bottle_ready")[1]
T.is(ready and ready.slug, slug, "run: bottle_ready relayed")
local blob = {}
for _, line in ipairs(srv.raw) do blob[#blob + 1] = line end
T.ok(not table.concat(blob, "\n"):find(R.TOKEN, 1, true), "no token value in anything the server wrote")

r = srv:request("ls", "ls", nil, TIMEOUT)
local row
for _, b in ipairs(r and r.result and r.result.bottles or {}) do if b.slug == slug then row = b end end
T.is(row and row.status, "running", "ls: the bottle is running")
T.is(row and row.backend, "docker", "ls: backend docker")

r = srv:request("att", "attach_command", { slug = slug })
local argv = r and r.result and r.result.argv or {}
T.is(argv[1], "docker", "attach_command: a docker exec argv")
T.ok(table.concat(argv, " "):find("cork-" .. (slug or "?") .. "-agent", 1, true) ~= nil, "aimed at the bottle's agent")

r = srv:request("down", "down", { slugs = { slug } }, TIMEOUT)
T.is(r and r.result and r.result.down[1] and r.result.down[1].slug, slug, "down: the bottle")
T.is(R.engine_left(d, slug or "?"), 0, "down: nothing of it left on the engine")

T.is(srv:exit_status(), 0, "server: EOF, exit 0")

-- 2. a launch cancelled half-way: its scope unwinds, nothing left ------------
-- (paused by the fault hook at the start of the agent step, with the bundle
-- up: a known point, not a race with a create request in flight)
srv = C.start({ dir = h.dir, env = R.merge(h.env, { CORK_FAULT = "pause@agent" }) })
srv:send({ id = "half", method = "run", params = { recipe = "docker", args = { "--bottle", "w6" } } })
local paused = srv:until_(function(m) return m.id == "half" and m.event == "fault_pause" end, TIMEOUT)
T.ok(paused ~= nil, "cancel: the launch is paused at the agent step, its bundle up")
local bundle_up = 0
for _ in ipairs(d:containers({ filters = { label = { "cork.role=bundle" } } })) do bundle_up = bundle_up + 1 end
T.is(bundle_up, 1, "cancel: one bundle running")
r = srv:request("stop", "cancel", { id = "half" })
T.same(r and r.result, { cancelled = true }, "cancel: answered")
fin = finished(srv, "half")
T.is(fin and fin.exit_code, 130, "cancel: the launch ended with 130")
T.is(fin and fin.slug, nil, "cancel: it never reported a bottle")
local left = 0
for _ in ipairs(d:containers({ all = true, filters = { label = { "cork.slug" } } })) do left = left + 1 end
for _ in ipairs(d:networks({ filters = { label = { "cork.slug" } } })) do left = left + 1 end
T.is(left, 0, "cancel: no container or network of any bottle left")
T.is(R.files(h.env.XDG_STATE_HOME), "", "cancel: no journal or state left")
T.is(srv:exit_status(), 0, "server: EOF, exit 0")

-- 3. --end-on-exit: the session's bottle goes at EOF ---------------------------
srv = start({ "--end-on-exit" })
srv:request("up", "run", { recipe = "docker", args = { "--bottle", "w6" } })
fin = finished(srv, "up")
slug = fin and fin.slug
T.ok(slug and R.engine_left(d, slug) > 0, "end-on-exit: a bottle is up")
srv:eof()
while srv:recv(TIMEOUT) do end
T.is(srv.p:wait(TIMEOUT).status, 0, "end-on-exit: exit 0 at EOF")
T.is(R.engine_left(d, slug or "?"), 0, "end-on-exit: the bottle is down")
T.is(R.files(h.env.XDG_STATE_HOME), "", "end-on-exit: no journal or state left")

T.is(#C.bad, 0, "every line matched the protocol's schema", table.concat(C.bad, "\n"))
H.no_leaks(T, d, before)
s:close()
T.done()
