-- docker_test.lua: shared set-up for tests/integration/test_docker*.lua.
--   local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
--   local d = H.connect(T)          -- skips the file when no engine is reachable
--   local img = H.image()           -- cork-test-busybox:latest, made on demand
--   H.name("web")                   -- "corktest-<pid>-web": unique per test file
--   H.labels                        -- {["cork.test"] = "<pid>"}: on everything created
--   local snap = H.snapshot(d); ...; H.no_leaks(T, d, snap)
local docker = require "cork.docker"
local H = {}

H.root = os.getenv("CORK_ROOT")
H.id = tostring(cork.proc.run({ "sh", "-c", "echo $PPID" }).stdout:match("%d+"))
H.prefix = "corktest-" .. H.id .. "-"
H.labels = { ["cork.test"] = H.id }
H.IMAGE = "cork-test-busybox:latest"

function H.name(s) return H.prefix .. s end
-- s as a Lua pattern matching itself
function H.pat(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

function H.connect(T, endpoint, opts)
  if not os.getenv("DOCKER_HOST") and not endpoint then
    T.skip_all("DOCKER_HOST is not set (run through tests/run-all, which starts a private engine)")
  end
  local ok, d = pcall(docker.connect, endpoint, opts)
  if not ok then T.skip_all("no Docker engine: " .. tostring(d)) end
  return d
end

-- The test image on the engine at DOCKER_HOST (tests/lib/mkimage.sh).
function H.image()
  local r = cork.proc.run({ H.root .. "/tests/lib/mkimage.sh", H.IMAGE })
  assert(r.status == 0, "mkimage.sh failed: " .. r.stderr)
  return H.IMAGE
end

-- Ids of every container, network and image on the engine.
function H.snapshot(d)
  local s = { containers = {}, networks = {}, images = {} }
  for _, c in ipairs(d:containers { all = true }) do s.containers[c.Id] = c.Names[1] end
  for _, n in ipairs(d:networks()) do s.networks[n.Id] = n.Name end
  for _, i in ipairs(d:request("GET", "/images/json").body) do s.images[i.Id] = true end
  return s
end

-- Nothing created since `before` is left, and nothing labelled with this
-- file's label exists at all.
function H.no_leaks(T, d, before)
  local now = H.snapshot(d)
  local extra = {}
  for kind, set in pairs(now) do
    for id, v in pairs(set) do
      if not before[kind][id] then extra[#extra + 1] = kind .. ":" .. tostring(v) .. ":" .. id:sub(1, 19) end
    end
  end
  T.is(table.concat(extra, " "), "", "nothing leaked (containers, networks, images)")
  local mine = d:containers { all = true, filters = { label = { "cork.test=" .. H.id } } }
  local nets = d:networks { filters = { label = { "cork.test=" .. H.id } } }
  T.is(#mine + #nets, 0, "no container or network carries this test's label")
end

-- Remove whatever this test file may have left (used in a scope defer so a
-- failing test does not leak into the next one).
function H.sweep(d)
  for _, c in ipairs(d:containers { all = true, filters = { label = { "cork.test=" .. H.id } } }) do
    pcall(d.container_remove, d, c.Id, { force = true })
  end
  for _, n in ipairs(d:networks { filters = { label = { "cork.test=" .. H.id } } }) do
    pcall(d.network_remove, d, n.Id)
  end
end

return H
