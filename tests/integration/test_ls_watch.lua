-- cork ls --watch against the private engine: Docker's events wake it (a
-- labelled container appears, becomes a two-container bottle, goes), the
-- interval finds what Docker does not see (a journal), Ctrl-C ends it with
-- exit 0; --json gives `bottle` / `bottle_gone` events, the human mode
-- reprints the table under a time line.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local json = require "cork.json"
local journal = require "cork.journal"

local d = H.connect(T)
local img = H.image()
local before = H.snapshot(d)
local s <close> = cork.scope("test_ls_watch")
local BIN = os.getenv("CORK_BIN")
local slug = "watch-" .. H.id

local function labels(role)
  local l = { ["cork.slug"] = slug, ["cork.role"] = role }
  for k, v in pairs(H.labels) do l[k] = v end
  return l
end
local function start(role, l)
  local c = d:container_create({ name = H.name(role), image = img, cmd = { "sleep", "60" }, labels = l or labels(role) })
  s:defer(function() pcall(d.container_remove, d, c, { force = true }) end)
  d:container_start(c)
  return c
end

-- usage
local r = cork.proc.run({ BIN, "ls", "--interval", "1" })
T.is(r.status, 2, "--interval without --watch: exit 2")
T.like(r.stderr, "%-%-interval needs %-%-watch", "says so")
r = cork.proc.run({ BIN, "ls", "--watch", "--interval", "0" })
T.is(r.status, 2, "--interval 0: exit 2")

-- --json: events for what changes, about this slug only. A 30 s interval:
-- what comes sooner came through Docker's events.
local p
local function watcher(interval)
  local w = cork.proc.spawn({ BIN, "--json", "ls", "--watch", "--interval", interval },
    { stdout = "pipe", stderr = "pipe" })
  s:defer(function() w:close(1) end)
  return w
end
-- the next event about a slug (other bottles of a shared engine are skipped)
local function next_event(timeout, which)
  local deadline = cork.time() + timeout
  while cork.time() < deadline do
    local line = p:stdout():read_line(math.max(0.1, deadline - cork.time()))
    if not line then return nil end
    local ok, ev = pcall(json.decode, line)
    if ok and type(ev) == "table" and ev.slug == (which or slug) then return ev end
  end
end
-- The first listing is out once it has shown a sentinel bottle started
-- before the watcher (a fixed sleep lost that race under load: the agent
-- was in the first listing, and every later event came one step early).
local sentinel_slug = slug .. "-sentinel"
local sentinel_labels = { ["cork.slug"] = sentinel_slug, ["cork.role"] = "agent" }
for k, v in pairs(H.labels) do sentinel_labels[k] = v end
local sentinel = start("sentinel", sentinel_labels)
p = watcher("30")
T.ok(next_event(15, sentinel_slug), "the first listing is out (it shows a bottle started before the watch)")

-- the next event about our slug with that status: a create and its start
-- are two Docker events, and a listing between them shows the container
-- created but not running ("stale"), so passing states are skipped
local function event_with(status, timeout)
  local deadline = cork.time() + timeout
  local ev
  repeat ev = next_event(math.max(0.1, deadline - cork.time()))
  until not ev or ev.status == status or cork.time() >= deadline
  return ev
end

local t0 = cork.time()
local agent = start("agent")
local ev = event_with("partial", 10)
T.is(ev and ev.event, "bottle", "a labelled container appears: a bottle event")
T.is(ev and ev.status, "partial", "one of its two parts runs: partial")
T.ok(cork.time() - t0 < 3, ("woken by Docker's events, not the interval (%.2f s)"):format(cork.time() - t0))

start("bundle")
ev = event_with("running", 10)
T.is(ev and ev.status, "running", "its bundle starts too: the bottle again, running")

t0 = cork.time()
d:container_remove(agent, { force = true })
ev = event_with("partial", 10)
T.is(ev and ev.event, "bottle", "the agent goes: the bottle again")
T.is(ev and ev.status, "partial", "partial")
d:container_remove(H.name("bundle"), { force = true })
repeat ev = next_event(10) until not ev or ev.event == "bottle_gone"
T.is(ev and ev.event, "bottle_gone", "nothing left of it: bottle_gone")

d:container_remove(sentinel, { force = true })
p:kill("INT")
local res = p:wait(5)
T.is(res and res.status, 0, "Ctrl-C ends the watch: exit 0")
T.is(p:stderr():read_line(0.5), nil, "nothing on stderr")

-- what Docker does not see: a journal (the interval finds it)
p = watcher("0.5")
cork.sleep(0.8)
journal.open(slug, { backend = "docker" })
ev = next_event(5)
T.is(ev and ev.event, "bottle", "a journal appears: a bottle event (the interval)")
T.is(ev and ev.status, "starting", "its owner is alive: starting")
journal.finish(slug)
ev = next_event(5)
T.is(ev and ev.event, "bottle_gone", "the journal goes: bottle_gone")
T.is(next_event(1.5), nil, "no change: no event (ages do not count)")
p:kill("TERM")
T.is((p:wait(5) or {}).status, 130, "SIGTERM: exit 130 (only Ctrl-C is the ordinary end)")

-- human mode: the table, then again under a time line when it changes
local ph = cork.proc.spawn({ BIN, "ls", "--watch", "--interval", "0.5" }, { stdout = "pipe" })
s:defer(function() ph:close(1) end)
local first = ph:stdout():read_line(5)
T.ok(first == "no bottles" or (first or ""):find("^SLUG"), "the first listing: " .. tostring(first))
start("agent")
local seen_time, seen_row = false, false
local deadline = cork.time() + 10
while cork.time() < deadline and not seen_row do
  local l = ph:stdout():read_line(1)
  if l and l:find("^%-%- %d%d:%d%d:%d%d$") then seen_time = true end
  if l and l:find("^" .. H.pat(slug) .. " ") then seen_row = l end
end
T.ok(seen_time, "a change: a time line")
T.like(seen_row or "", "^" .. H.pat(slug) .. "%s+docker%s+", "and the table with the bottle")
ph:kill("INT")
T.is((ph:wait(5) or {}).status, 0, "human mode: Ctrl-C, exit 0")
d:container_remove(H.name("agent"), { force = true })

H.no_leaks(T, d, before)
T.done()
