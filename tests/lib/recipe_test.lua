-- recipe_test.lua: shared set-up for tests/integration/test_recipe_*.lua.
--   local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
--   local env = R.home("name")        -- private XDG dirs + a bottle file, per run
--   local r = R.cork(env, {"run", "docker", "--bottle", "w6", "--detach"})
--   r.status, r.events (decoded --json lines), r.stdout, r.stderr
-- Images (made locally, no registry): cork-test-bundle:latest (busybox httpd on
-- the port of each daemon in CORK_DAEMONS, logs env NAMES), cork-test-agent:latest
-- (busybox with a user "agent").
local json = require "cork.json"
local R = {}

R.root = os.getenv("CORK_ROOT")
R.bin = os.getenv("CORK_BIN") or (R.root .. "/build/cork")
R.TOKEN = "tok-W6SECRET-" .. tostring(os.time()) .. "-zq81"
R.BUNDLE = "cork-test-bundle:latest"
R.AGENT = "cork-test-agent:latest"

R.BOTTLE = [[
agent:
  provider: claude
  image: cork-test-agent:latest
bundle:
  image: cork-test-bundle:latest
egress:
  routes:
    - host: api.example.com
      auth: bearer
      token_ref: CORK_W6_TOKEN
]]

local function busybox_root(extra_links)
  local root = cork.fs.tempdir("cork-w6-rootfs")
  for _, dir in ipairs({ "bin", "etc", "tmp", "www", "home/agent", "root" }) do cork.fs.mkdir(root .. "/" .. dir) end
  cork.proc.run({ "cp", "/bin/busybox", root .. "/bin/busybox" })
  for _, a in ipairs({ "sh", "httpd", "sleep", "env", "cut", "sort", "tr", "sed", "nc", "cat", "mkdir",
    "chown", "chmod", "dirname", "id", "true", "echo", "ls", "rm", "grep", "timeout" }) do
    cork.proc.run({ "ln", "-s", "busybox", root .. "/bin/" .. a })
  end
  cork.fs.write(root .. "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n")
  cork.fs.write(root .. "/etc/group", "root:x:0:\nagent:x:1000:\n")
  return root
end

local function import(d, root, repo, changes)
  local r = cork.proc.run({ "tar", "-C", root, "-cf", root .. ".tar", "." })
  assert(r.status == 0, r.stderr)
  d:image_import(root .. ".tar", { repo = repo, tag = "latest", changes = changes })
  cork.fs.remove(root, { recursive = true }); os.remove(root .. ".tar")
end

-- Both images, made once per engine.
function R.images(d)
  if not pcall(d.image_inspect, d, R.BUNDLE) then
    local root = busybox_root()
    cork.fs.write(root .. "/bin/entry", [[#!/bin/sh
for d in $(echo "$CORK_DAEMONS" | tr , ' '); do
  case $d in pipelock) p=8888;; egress) p=9099;; git-gate) p=9418;; supervise) p=9100;; *) echo "unknown daemon $d"; exit 2;; esac
  mkdir -p /www/$d; echo "$d" > /www/$d/index.html; httpd -p $p -h /www/$d
done
env | cut -d= -f1 | sort | sed 's/^/env-name: /'
exec sleep 2147483647
]], { mode = 493 })
    import(d, root, "cork-test-bundle", { "ENV PATH=/bin", 'CMD ["/bin/entry"]' })
  end
  if not pcall(d.image_inspect, d, R.AGENT) then
    local root = busybox_root()
    import(d, root, "cork-test-agent", { "ENV PATH=/bin", 'CMD ["/bin/sh"]' })
  end
end

-- A private config/state home with the bottle "w6" in it.
function R.home(name, bottle)
  local dir = cork.fs.tempdir("cork-w6-" .. name)
  cork.fs.mkdir(dir .. "/config/cork/bottles", tonumber("0700", 8))
  cork.fs.mkdir(dir .. "/state", tonumber("0700", 8))
  cork.fs.mkdir(dir .. "/home", tonumber("0700", 8))
  cork.fs.write(dir .. "/config/cork/bottles/w6.yaml", bottle or R.BOTTLE)
  cork.fs.mkdir(dir .. "/smolvm")
  return { dir = dir, env = {
    XDG_CONFIG_HOME = dir .. "/config", XDG_STATE_HOME = dir .. "/state", HOME = dir .. "/home",
    CORK_SMOLVM = R.root .. "/tests/fakes/smolvm", FAKE_SMOLVM_STATE = dir .. "/smolvm",
    CORK_W6_TOKEN = R.TOKEN,
  } }
end

local function merge(a, b)
  local e = {}
  for k, v in pairs(a or {}) do e[k] = v end
  for k, v in pairs(b or {}) do e[k] = v end
  return e
end
R.merge = merge

local function decode(out)
  local ev = {}
  for line in out:gmatch("[^\n]+") do
    local ok, v = pcall(json.decode, line)
    if ok and type(v) == "table" then ev[#ev + 1] = v end
  end
  return ev
end
R.decode = decode

-- Run cork to completion.
function R.cork(h, argv, extra_env)
  local a = { R.bin, "--json" }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local r = cork.proc.run(a, { env = merge(h.env, extra_env), timeout = 120 })
  r.events = decode(r.stdout)
  return r
end

-- Events of a name.
function R.find(events, pred)
  local out = {}
  for _, e in ipairs(events) do
    local ok = true
    for k, v in pairs(pred) do if e[k] ~= v then ok = false end end
    if ok then out[#out + 1] = e end
  end
  return out
end

-- What the slug's labelled resources are on the engine.
function R.engine_left(d, slug)
  local c = d:containers { all = true, filters = { label = { "cork.slug=" .. slug } } }
  local n = d:networks { filters = { label = { "cork.slug=" .. slug } } }
  return #c + #n, c, n
end

-- Every file left under DIR (recursive), as one string.
function R.files(dir)
  local r = cork.proc.run({ "find", dir, "-mindepth", "1", "-not", "-type", "d" })
  return (r.stdout:gsub("\n$", ""))
end

return R
