-- recipe_test.lua: shared set-up for tests/integration/test_recipe_*.lua.
--   local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
--   local env = R.home("name")        -- private XDG dirs + a bottle file, per run
--   local r = R.cork(env, {"run", "docker", "--bottle", "w6", "--detach"})
--   r.status, r.events (decoded --json lines), r.stdout, r.stderr
-- Images (made locally by cork.standin from busybox-static, no registry):
-- R.BUNDLE (busybox httpd on the port of each daemon in CORK_DAEMONS, logs env
-- NAMES), R.AGENT (busybox with a user "agent").
local json = require "cork.json"
local standin = require "cork.standin"
local R = {}

R.root = os.getenv("CORK_ROOT")
R.bin = os.getenv("CORK_BIN") or (R.root .. "/build/cork")
R.TOKEN = "tok-W6SECRET-" .. tostring(os.time()) .. "-zq81"
R.BUNDLE = standin.BUNDLE
R.AGENT = standin.AGENT

R.BOTTLE = ([[
agent:
  provider: claude
  image: %s
bundle:
  image: %s
egress:
  routes:
    - host: api.example.com
      auth: bearer
      token_ref: CORK_W6_TOKEN
]]):format(R.AGENT, R.BUNDLE)

-- Both images, made once per engine (cork.standin: idempotent).
function R.images(d)
  standin.images(d)
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

-- Every file left under DIR (recursive), as one string; the lock files
-- every bottle shares (STATE/cork/aliases.lock, subnets.lock, ...) are not
-- a bottle's leftovers and are left out.
function R.files(dir)
  local r = cork.proc.run({ "find", dir, "-mindepth", "1", "-not", "-type", "d" })
  local out = {}
  for line in r.stdout:gmatch("[^\n]+") do
    if not line:match("/cork/[%a]+%.lock$") then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

return R
