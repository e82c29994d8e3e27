-- cork down / gc without the engines (issue 19.2, 19.12, 19.1's pid): a
-- journal naming a VM is kept when smolvm is not there; a slug with no
-- journal is an error; pids read back from a journal are integers; a
-- read-only state dir; creates ask request() for a grace.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local fs = cork.fs
local json = require "cork.json"

local bin = os.getenv("CORK_BIN") or (os.getenv("CORK_ROOT") .. "/build/cork")
local dir = fs.tempdir("cork-down")
local s <close> = cork.scope("test_down")
s:defer(fs.remove, dir, { recursive = true })
local state = dir .. "/state"
local env = { HOME = dir, XDG_STATE_HOME = state, PATH = os.getenv("PATH"),
  DOCKER_HOST = "unix://" .. dir .. "/no-docker.sock" }

local function run(argv, extra)
  local a = { bin }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  for k, v in pairs(extra or {}) do e[k] = v end
  return cork.proc.run(a, { env = e, timeout = 60 })
end

-- a journal written the way a smolmachines launch writes it, its cork gone
local function journal(slug, lines)
  fs.mkdir(state .. "/cork/" .. slug, 448)
  local out = {}
  for _, l in ipairs(lines) do out[#out + 1] = json.encode(l) end
  fs.write(state .. "/cork/" .. slug .. "/journal", table.concat(out, "\n") .. "\n")
end
journal("vmb-aaa111", {
  { op = "begin", slug = "vmb-aaa111", backend = "smolmachines", pid = 999999, ts = 1 },
  { op = "add", kind = "vm", name = "cork-vmb-aaa111", ts = 1 },
})

-- down without smolvm (CORK_SMOLVM unset, no smolvm on PATH)
local r = run({ "down", "vmb-aaa111" }, { PATH = "/nonexistent" })
T.is(r.status, 1, "down without smolvm: exit 1")
T.like(r.stderr, "left in place: vm cork%-vmb%-aaa111 %(smolvm is not available %(CORK_SMOLVM is unset",
  "down without smolvm: the VM is named, and why")
T.like(r.stderr, "the journal is kept: run `cork down vmb%-aaa111` once the engine is back", "and how to finish")
T.ok(fs.exists(state .. "/cork/vmb-aaa111/journal"), "down without smolvm: the journal is kept")

-- gc names the pid as an integer
r = run({ "gc" }, { PATH = "/nonexistent" })
T.like(r.stderr, "orphaned: vmb%-aaa111 %(smolmachines, cork pid 999999 gone, 1 resources in its journal%)",
  "gc: the pid is an integer (was 999999.0)")

-- a slug with no journal, Docker away: an error, not "nothing left"
r = run({ "down", "nope-abc123" })
T.is(r.status, 1, "down no-such-slug without Docker: exit 1")
T.like(r.stderr, "no journal for nope%-abc123, and Docker is not reachable", "says what it could not look at")
T.unlike(r.stderr, "nothing left", "never 'nothing left'")

-- a full disk at the first journal line leaves no empty state dir
if fs.exists("/dev/full") then
  fs.mkdir(state .. "/cork", 448)
  local script = dir .. "/full.lua"
  fs.write(script, [[
local journal = require "cork.journal"
local fs = require "cork.fs"
local real = fs.append
fs.append = function(path, ...) if path:find("/journal$") then return real("/dev/full", ...) end return real(path, ...) end
local ok, err = pcall(journal.open, "full-abc123", { backend = "docker" })
print(ok, err and err.kind, err and err.message)
print(fs.exists(journal.dir("full-abc123")))
]])
  r = run({ "script", script })
  T.like(r.stdout, "^false\tio\tcannot start the journal of full%-abc123: cannot append to /dev/full: No space left on device\n",
    "a full disk at the first journal line: a clear error")
  T.like(r.stdout, "\nfalse\n$", "and no empty state dir left")
else
  T.skip("no /dev/full")
  T.skip("no /dev/full")
end

-- teardown.down with a state dir that cannot be written (read-only): every
-- removal still happens; the error says the state dir could not go
do
  local journal = require "cork.journal"
  local teardown = require "cork.teardown"
  journal.set_root(dir .. "/ro")
  local j = journal.open("ro-abc123", { backend = "docker" })
  j:add("network", "n1"); j:add("container", "c1")
  local removed = {}
  local fake = {
    container_remove = function(_, name) removed[#removed + 1] = "container " .. name; return true end,
    network_remove = function(_, name) removed[#removed + 1] = "network " .. name; return true end,
    containers = function() return {} end, networks = function() return {} end,
    request = function(_, method, path)
      if method == "DELETE" then removed[#removed + 1] = path:match("^/(%a+)s/") .. " " .. path:match("([^/]+)$") end
      return { status = 200, body = { Volumes = {} } }
    end,
  }
  local real_append, real_remove = fs.append, fs.remove
  fs.append = function() cork.error("permission", "cannot append to journal: Read-only file system") end
  fs.remove = function() cork.error("permission", "cannot remove: Read-only file system") end
  local ok, err = pcall(teardown.down, "ro-abc123", { docker = fake })
  fs.append, fs.remove = real_append, real_remove
  T.same(removed, { "container c1", "network n1" }, "read-only state dir: every removal still happens")
  T.ok(not ok and cork.is_error(err, "permission"), "then an error", tostring(err))
  T.like(ok and "" or err.message, "^ro%-abc123: everything is removed, but the state dir .* could not be: ",
    "saying what could not be done")
  journal.finish("ro-abc123", { force = true })
  journal.set_root(nil)
end

-- creates ask request() to let them finish after an interrupt (the grace);
-- other calls do not
do
  require "cork.docker"   -- adds the Lua-built methods
  local Client = require("cork._docker")._Client
  local seen = {}
  local fake = setmetatable({
    request = function(_, method, path, o) seen[#seen + 1] = { method = method, path = path, grace = o and o.grace }
      return { status = 201, body = { Id = "x" } } end,
    api_version = function() return "1.47" end,
  }, { __index = Client })
  Client.network_create(fake, { name = "n1" })
  Client.container_create(fake, { name = "c1", image = "img" })
  Client.container_start(fake, "c1")
  T.is(seen[1].grace, require("cork.docker").CREATE_GRACE, "network_create: a create grace")
  T.is(seen[2].grace, 15, "container_create: 15 s")
  T.is(seen[3].grace, nil, "container_start: none")
end

-- a docker bottle's down does not look for alias guard rules (that recipe
-- adds no address, so no guard: one iptables spawn less); a smolmachines
-- bottle's does. A stand-in iptables on PATH notes each call.
do
  local bindir, calls = dir .. "/bin", dir .. "/iptables-calls"
  fs.mkdir(bindir, 448)
  fs.write(bindir .. "/iptables", "#!/bin/sh\necho \"$*\" >> " .. calls .. "\nexit 0\n", { mode = 493 })
  local path = bindir .. ":" .. os.getenv("PATH")
  journal("dkb-bbb222", { { op = "begin", slug = "dkb-bbb222", backend = "docker", pid = 999999, ts = 1 } })
  run({ "down", "dkb-bbb222" }, { PATH = path })
  T.ok(not fs.exists(calls), "down of a docker bottle: iptables is not run")
  journal("smb-ccc333", { { op = "begin", slug = "smb-ccc333", backend = "smolmachines", pid = 999999, ts = 1 } })
  run({ "down", "smb-ccc333" }, { PATH = path })
  T.like(fs.exists(calls) and fs.read(calls) or "", "%-t mangle %-S PREROUTING",
    "down of a smolmachines bottle: its stray guard rules are looked for")
end

T.done()
