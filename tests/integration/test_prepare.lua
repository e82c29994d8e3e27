-- recipes/prepare.lua against the private engine and the stand-in smolvm:
-- an agent image packed into a .smolmachine through a `docker save` archive
-- (smolvm 1.9+), cached by image ID (a second run does nothing, a changed
-- image is packed again and its old artifact goes), found by the
-- smolmachines recipe; the registry path of older smolvm versions stops
-- with a clear error when no registry image is there, and runs end to end
-- with cork.standin's registry image; interrupts, a smolvm
-- failure and kill -9 + cork down leave nothing.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local fs = cork.fs

local d = H.connect(T)
R.images(d)
-- the stand-in registry image, like the other stand-ins, is made before the
-- leak snapshot (it stays, as they do, for the next run)
local standin = require "cork.standin"
local REG = standin.registry_image(d)
local before = H.snapshot(d)
local s <close> = cork.scope("test_prepare")
local IMAGE = "cork-test-prepare-" .. H.id .. ":latest"
s:defer(function() H.sweep(d); pcall(d.image_remove, d, IMAGE, { force = true }) end)

-- A small agent image of our own (its content changes between runs).
local function make_image(content)
  local root = fs.tempdir("cork-prep-root")
  fs.mkdir(root .. "/etc")
  fs.write(root .. "/etc/agent-version", content)
  local r = cork.proc.run({ "tar", "-C", root, "-cf", root .. ".tar", "." })
  assert(r.status == 0, r.stderr)
  d:image_import(root .. ".tar", { repo = IMAGE:match("^(.-):"), tag = "latest" })
  fs.remove(root, { recursive = true }); os.remove(root .. ".tar")
  return d:image_inspect(IMAGE).Id
end

local BOTTLE = ([[
agent:
  provider: claude
  image: %s
bundle:
  image: %s
]]):format(IMAGE, R.BUNDLE)

local h = R.home("prep", BOTTLE)
s:defer(fs.remove, h.dir, { recursive = true })
h.env.XDG_CACHE_HOME = h.dir .. "/cache"
fs.mkdir(h.dir .. "/config/cork/agents")
fs.write(h.dir .. "/config/cork/agents/rev.md", "---\nbottle: w6\n---\nReview.\n")
local cache = h.dir .. "/cache/cork/smolmachines"
local calls_log = h.dir .. "/smolvm/calls.log"
local function calls() return fs.exists(calls_log) and fs.read(calls_log) or "" end
local function hex(id) return id:match("^sha256:(%x+)$") end
local function nothing_left(what, env)
  local vms = cork.proc.run({ R.root .. "/tests/fakes/smolvm", "machine", "ls", "--json" }, { env = env or h.env })
  T.is(vms.stdout, "[]\n", what .. ": no VM")
  T.is((R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")), "", what .. ": no journal")
  local left = R.files((env or h.env).XDG_CACHE_HOME):gsub("[^\n]*%.lock\n?", ""):gsub("[^\n]*/refs/[^\n]*\n?", "")
  T.unlike(left, "partial", what .. ": no half-packed artifact")
  local mine = d:containers({ all = true, filters = { label = { "cork.role=registry" } } })
  local nets = d:networks({ filters = { label = { "cork.role=registry" } } })
  T.is(#mine + #nets, 0, what .. ": no registry container or network")
end

-- 1. the first run packs ----------------------------------------------------
local id1 = make_image("one\n")
local art1 = cache .. "/" .. hex(id1) .. ".smolmachine"
local r = R.cork(h, { "run", "prepare", "--bottle", "w6" })
T.is(r.status, 0, "prepare --bottle: exit 0", r.stderr)
local ev = R.find(r.events, { event = "prepared" })[1] or {}
T.is(ev.artifact, art1, "the artifact is cached under XDG_CACHE_HOME, keyed by the image ID")
T.is(ev.cached, false, "packed, not cached")
T.is(ev.image_id, id1, "the event names the image ID")
local c = calls()
local vm = "cork-prepare-" .. hex(id1):sub(1, 12)
local pvm = H.pat(vm)
T.like(c, "\ncreate %-%-name " .. pvm .. " %-%-image [^\n]*/image%.tar\n", "a throwaway machine from a docker save archive")
T.like(c, "\nstart %-%-name " .. pvm .. "\nstop %-%-name " .. pvm .. "\n", "booted once, then stopped")
T.like(c, "\npack create %-%-from%-vm " .. pvm .. " %-o " .. H.pat(cache) .. "/" .. hex(id1)
  .. "%.partial%-%d+\n", "packed from the machine, next to its final place")
T.like(c, "\ndelete %-%-name " .. pvm .. " %-f\n", "and the machine deleted")
T.like(fs.read(art1), "\nfrom%-vm=" .. pvm .. "\nimage=local:%x+\n", "the artifact records its inputs (stand-in)")
local archive = c:match("%-%-image ([^\n]*/image%.tar)\n")
T.ok(archive and not fs.exists(archive), "the saved archive is gone")
T.like(fs.read(cache .. "/" .. hex(id1) .. ".json"), '"method":"docker%-save"', "a note of how it was made")
T.is(r.events[#r.events].event ~= "failed" and #R.find(r.events, { event = "failed" }), 0, "no failure event")
nothing_left("after prepare")
-- stdout (without --json) is the path, for scripts
local plain = cork.proc.run({ R.bin, "run", "prepare", "--bottle", "w6" }, { env = h.env })
T.is(plain.stdout, art1 .. "\n", "without --json, stdout is the artifact's path")

-- 2. a second run with the same image does nothing ---------------------------
local before_calls = calls()
local mtime = fs.stat(art1).mtime
r = R.cork(h, { "run", "prepare", "--agent", "rev" })
T.is(r.status, 0, "prepare --agent (same image): exit 0")
ev = R.find(r.events, { event = "prepared" })[1] or {}
T.is(ev.cached, true, "the cached artifact is the answer")
T.is(ev.artifact, art1, "the same artifact")
T.is(calls(), before_calls, "no smolvm call at all")
T.is(fs.stat(art1).mtime, mtime, "the artifact untouched")

-- 3. the smolmachines recipe boots the cached artifact ----------------------
r = R.cork(h, { "run", "smolmachines", "--bottle", "w6", "--dry-run" })
T.is(r.status, 0, "smolmachines --dry-run without --from: exit 0", r.stderr)
local create = R.find(r.events, { event = "dry_run", call = "smolvm.create" })[1] or {}
T.is(create.args and create.args[2] and create.args[2].from, art1, "the smolmachines recipe finds the prepared artifact")

-- 4. a changed image is packed again; its old artifact goes -------------------
local id2 = make_image("two\n")
T.ok(id2 ~= id1, "(the image changed)")
pcall(d.image_remove, d, id1)
local art2 = cache .. "/" .. hex(id2) .. ".smolmachine"
r = R.cork(h, { "run", "prepare", "--bottle", "w6" })
T.is(r.status, 0, "prepare after the image changed: exit 0")
ev = R.find(r.events, { event = "prepared" })[1] or {}
T.is(ev.cached, false, "packed again")
T.is(ev.artifact, art2, "under the new image ID")
T.ok(fs.exists(art2), "the new artifact exists")
T.ok(not fs.exists(art1), "the previous image's artifact is removed")
r = R.cork(h, { "run", "prepare", "--bottle", "w6", "--force" })
T.is((R.find(r.events, { event = "prepared" })[1] or {}).cached, false, "--force packs even when cached")
nothing_left("after the rebuilds")

-- 5. errors before anything is created ---------------------------------------
r = R.cork(h, { "run", "prepare", "--image", "cork-no-such-image:latest" })
T.is(r.status, 1, "a missing image: exit 1")
local f = R.find(r.events, { event = "failed" })[1] or {}
T.is(f.kind, "not_found", "kind not_found")
T.like(f.msg, "^agent image cork%-no%-such%-image:latest not found in the Docker engine: build or load it first "
  .. "%(build or load your agent's image %(docker build, docker load%), or use the stand%-in agent "
  .. "%(`cork run standin`, a busybox shell%); see docs/getting%-started%.md%)$", "a clear message, and where to get one")
r = R.cork(h, { "run", "prepare" })
T.is(r.status, 2, "no agent, bottle or image: usage (exit 2)")

-- 6. older smolvm: the registry path, and no registry image here -------------
for _, v in ipairs({ "0.8.2", "1.8.2" }) do
  local hv = R.merge(h.env, { FAKE_SMOLVM_VERSION = v, XDG_CACHE_HOME = h.dir .. "/cache-" .. v })
  r = R.cork({ env = hv }, { "run", "prepare", "--bottle", "w6" })
  T.is(r.status, 1, v .. ": exit 1")
  f = R.find(r.events, { event = "failed" })[1] or {}
  T.is(f.kind, "not_found", v .. ": kind not_found")
  T.like(f.msg, "^smolvm " .. H.pat(v) .. " packs registry references only, and the registry image registry:2 "
    .. "that would serve " .. H.pat(IMAGE) .. " is not in the Docker engine %(cork pulls nothing%)",
    v .. ": says why the registry path cannot run")
  T.like(f.msg, "use smolvm 1%.9 or later, which packs a `docker save` archive", v .. ": and what would work")
  T.like(f.msg, "`cork run standin %-%-registry` builds one", v .. ": and a command that makes a registry image")
  local w = R.find(r.events, { event = "warn" })[1] or {}
  T.like(w.msg or "", "^smolvm " .. H.pat(v) .. ": `cork run smolmachines` refuses to launch on it",
    v .. ": says up front that the smolmachines recipe refuses this smolvm (19.17)")
  nothing_left(v, hv)
  T.ok(not fs.exists(hv.XDG_CACHE_HOME .. "/cork/smolmachines/" .. hex(id2) .. ".smolmachine"), v .. ": no artifact")
end
-- a "registry" that is not one (the stand-in bundle: nothing listens on 5000):
-- the container, the tag and the push are real; the push fails
local npacks = select(2, calls():gsub("\npack ", ""))
local hreg = R.merge(h.env, { FAKE_SMOLVM_VERSION = "0.8.2", XDG_CACHE_HOME = h.dir .. "/cache-reg" })
r = R.cork({ env = hreg }, { "run", "prepare", "--bottle", "w6", "--registry-image", R.BUNDLE })
T.is(r.status, 1, "registry path with a registry that does not answer: exit 1", r.stderr)
f = R.find(r.events, { event = "failed" })[1] or {}
T.is(f.kind, "daemon", "kind daemon")
T.like(f.msg, "^pushing " .. H.pat(IMAGE) .. " to the throwaway registry failed: ", "says the push failed", f.msg)
local steps = {}
for _, e in ipairs(R.find(r.events, { event = "step" })) do steps[#steps + 1] = e.msg end
T.is(table.concat(steps, ","), "image,registry,push", "steps: image, registry, push")
local tags = {}
for _, t in ipairs(d:image_inspect(IMAGE).RepoTags or {}) do tags[#tags + 1] = t end
T.same(tags, { IMAGE }, "the throwaway tag is removed")
T.is(select(2, calls():gsub("\npack ", "")), npacks, "smolvm pack never ran")
nothing_left("registry path", hreg)

-- a real registry (cork.standin's, from Debian's docker-registry): the
-- registry path end to end on both CLI dialects; the stand-in smolvm pulls
-- the pushed manifest back from it before it packs
T.like(d:image_inspect(REG).Config.Labels[standin.LABEL], "^%d+%-%x+$", "the stand-in registry image is built")
T.is(standin.registry_image(d), REG, "and built once (idempotent: no new image)")
for _, v in ipairs({ "0.8.2", "1.8.2" }) do
  local hv = R.merge(h.env, { FAKE_SMOLVM_VERSION = v, XDG_CACHE_HOME = h.dir .. "/cache-real-" .. v })
  local npk = select(2, calls():gsub("\npack ", ""))
  r = R.cork({ env = hv }, { "run", "prepare", "--bottle", "w6", "--registry-image", REG })
  T.is(r.status, 0, v .. " with a registry: exit 0")
  if r.status ~= 0 then T.diag((R.find(r.events, { event = "failed" })[1] or {}).msg or r.stderr) end
  local st2 = {}
  for _, e in ipairs(R.find(r.events, { event = "step" })) do st2[#st2 + 1] = e.msg end
  T.is(table.concat(st2, ","), "image,registry,push,pack", v .. ": steps image, registry, push, pack")
  ev = R.find(r.events, { event = "prepared" })[1] or {}
  local cur = hex(d:image_inspect(IMAGE).Id)
  T.is(ev.artifact, hv.XDG_CACHE_HOME .. "/cork/smolmachines/" .. cur .. ".smolmachine", v .. ": the artifact")
  T.like(ev.artifact and fs.exists(ev.artifact) and fs.read(ev.artifact) or "",
    "\nimage=127%.0%.0%.1:%d+/cork%-prepare/" .. cur:sub(1, 12) .. ":latest\n",
    v .. ": packed from the throwaway registry on loopback")
  T.is(select(2, calls():gsub("\npack ", "")), npk + 1, v .. ": one pack")
  T.like(fs.read(hv.XDG_CACHE_HOME .. "/cork/smolmachines/" .. cur .. ".json"), '"method":"registry"',
    v .. ": a note of how it was made")
  local tg = {}
  for _, t in ipairs(d:image_inspect(IMAGE).RepoTags or {}) do tg[#tg + 1] = t end
  T.same(tg, { IMAGE }, v .. ": the throwaway tag is removed")
  nothing_left(v .. " registry path", hv)
end

-- 7. faults: SIGTERM while packing, a smolvm failure, kill -9 + cork down -----
local function fresh(name)
  local env = R.merge(h.env, { XDG_CACHE_HOME = h.dir .. "/cache-" .. name })
  return env, h.dir .. "/cache-" .. name .. "/cork/smolmachines/" .. hex(id2) .. ".smolmachine"
end
local function paused(env, step, sig, during)
  local out = h.dir .. "/paused-" .. step .. "-" .. sig .. ".out"
  local p = cork.proc.spawn({ R.bin, "--json", "run", "prepare", "--bottle", "w6" },
    { env = R.merge(env, { CORK_FAULT = "pause@" .. step }), stdout = out, stderr = "null" })
  local deadline, seen = cork.time() + 30, false
  while cork.time() < deadline and not seen do
    local ok, text = pcall(fs.read, out)
    if ok and text:find('"fault_pause"', 1, true) then seen = true else cork.sleep(0.05) end
  end
  T.ok(seen, sig .. "@" .. step .. ": paused at the step")
  if during then during() end
  p:kill(sig)
  return p:wait()
end
for _, step in ipairs({ "save", "vm", "pack" }) do
  local env, art = fresh("term-" .. step)
  local w = paused(env, step, "TERM", step == "pack" and function()
    local ls = R.cork({ env = env }, { "ls" })
    local row = R.find(ls.events, { event = "bottle", slug = "prepare-" .. hex(id2):sub(1, 12) })[1] or {}
    T.same({ row.backend, row.status, row.vm and row.vm.state }, { "prepare", "preparing", "stopped" },
      "cork ls during a prepare: backend prepare, status preparing, its machine's state", ls.stdout)
  end or nil)
  T.is(w.status, 130, "SIGTERM@" .. step .. ": exit 130")
  nothing_left("SIGTERM@" .. step, env)
  T.ok(not fs.exists(art), "SIGTERM@" .. step .. ": no artifact")
end
do
  local env, art = fresh("fail")
  r = R.cork({ env = env }, { "run", "prepare", "--bottle", "w6" }, { FAKE_SMOLVM_FAIL = "pack" })
  T.is(r.status, 1, "smolvm pack fails: exit 1")
  T.is((R.find(r.events, { event = "failed" })[1] or {}).kind, "smolvm", "kind smolvm")
  nothing_left("a failing pack", env)
  T.ok(not fs.exists(art), "a failing pack: no artifact")
end
do
  local env, art = fresh("kill")
  paused(env, "pack", "KILL")
  local st = cork.proc.run({ R.root .. "/tests/fakes/smolvm", "machine", "ls", "--json" }, { env = env }).stdout
  T.like(st, '"name":"cork%-prepare%-' .. hex(id2):sub(1, 12) .. '"', "kill -9 while packing leaves the machine ...")
  local dn = R.cork({ env = env }, { "down", "prepare-" .. hex(id2):sub(1, 12) })
  T.is(dn.status, 0, "... and cork down prepare-<id>: exit 0")
  nothing_left("KILL + down", env)
  T.ok(not fs.exists(art), "KILL: no artifact")
  -- what a kill in the middle of packing leaves, the next prepare removes
  local stale = art:gsub("%.smolmachine$", ".partial-999999.smolmachine")
  fs.write(stale, "half\n")
  r = R.cork({ env = env }, { "run", "prepare", "--bottle", "w6" })
  T.is(r.status, 0, "the next prepare: exit 0")
  T.ok(fs.exists(art) and not fs.exists(stale), "packs, and removes the killed run's half-packed artifact")
end

s:close()
H.no_leaks(T, d, before)
T.done()
