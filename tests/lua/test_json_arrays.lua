-- Every list is a JSON array, also when empty (issue 19.6): cork.json's
-- encoder, then `cork plan --json` (a minimal bottle against a full one:
-- one type per field), plan's YAML, `cork ls --json`, `cork down --json`,
-- and the events of a dry run.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
local BIN = os.getenv("CORK_BIN")
local json, fs = cork.json, cork.fs

-- ---- the encoder ---------------------------------------------------------------
T.is(json.encode(json.array()), "[]", "json.array(): an empty array")
T.is(json.encode({ a = json.array(), b = {} }):gsub('"b":{}', ""):gsub(",", ""), '{"a":[]}', "marked [] beside an unmarked {}")
T.is(json.encode(cork.yaml.sequence({})), "[]", "cork.yaml.sequence's mark is an array too")
T.is(cork.yaml.encode({ l = json.array() }), "l: []\n", "and json.array's is a YAML sequence")
T.is(json.encode({ 1, "two", true, json.null }), '[1,"two",true,null]', "a sequence")
T.is(json.encode({ [1] = 1, [3] = 3 }), "[1,null,3]", "a sparse array, as lua-cjson")
T.is(json.encode("a/b\"\n\1"), '"a\\/b\\"\\n\\u0001"', "strings escaped as lua-cjson does")
T.is(json.encode(3.0), "3", "an integral float as lua-cjson writes it")
T.is(json.encode(math.maxinteger), "9223372036854775807", "integers exactly")
T.is(json.encode(0.1), "0.1", "floats with %.14g")
T.ok(not pcall(json.encode, { f = print }), "a function is refused")
T.ok(not pcall(json.encode, 0 / 0), "NaN is refused")
T.ok(not pcall(json.encode, { [100] = 1 }), "an excessively sparse array is refused")
T.same(json.decode('{"a":[1,2],"b":{}}').a, { 1, 2 }, "decode is lua-cjson's")
T.is(getmetatable(json.array()), json.array_mt, "json.array_mt marks it")

-- A JSON reader that keeps [] apart from {} (lua-cjson's decode cannot):
-- arrays come back as { [ARRAY] = true, ... }.
local ARRAY = {}
local function parse(s)
  local i = 1
  local function ws() i = s:find("[^ \t\r\n]", i) or #s + 1 end
  local value
  local function str()
    local j, out = i + 1, {}
    while true do
      local c = s:sub(j, j)
      if c == '"' then i = j + 1; return table.concat(out) end
      if c == "\\" then out[#out + 1] = s:sub(j, j + 1); j = j + 2 else out[#out + 1] = c; j = j + 1 end
    end
  end
  function value()
    ws()
    local c = s:sub(i, i)
    if c == "{" then
      local t = {}
      i = i + 1; ws()
      if s:sub(i, i) == "}" then i = i + 1; return t end
      while true do
        ws(); local k = str(); ws(); i = i + 1   -- ':'
        t[k] = value(); ws()
        local d = s:sub(i, i); i = i + 1
        if d == "}" then return t end
      end
    elseif c == "[" then
      local t = { [ARRAY] = true }
      i = i + 1; ws()
      if s:sub(i, i) == "]" then i = i + 1; return t end
      while true do
        t[#t + 1] = value(); ws()
        local d = s:sub(i, i); i = i + 1
        if d == "]" then return t end
      end
    elseif c == '"' then return str()
    else
      local lit = s:match("^[%w%.%-+]+", i)
      i = i + #lit
      return lit
    end
  end
  return value()
end

-- path -> "array" | "object" for every array and object in v
local function shapes(v, path, out)
  out = out or {}
  if type(v) ~= "table" then return out end
  out[path] = v[ARRAY] and "array" or "object"
  for k, x in pairs(v) do
    if k ~= ARRAY then shapes(x, path .. (v[ARRAY] and "[]" or ("." .. k)), out) end
  end
  return out
end

local fx <close> = F.setup()
local home = fx.home
local function run(args, env)
  local e = { HOME = home, XDG_CONFIG_HOME = home .. "/.config", XDG_STATE_HOME = fx.dir .. "/state",
    PWD = fx.cwd, CORK_PATH = false, DOCKER_HOST = "unix://" .. fx.dir .. "/no-docker.sock" }
  for k, v in pairs(F.secrets) do e[k] = v end
  for k, v in pairs(env or {}) do e[k] = v end
  local argv = { BIN }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return cork.proc.run(argv, { env = e, cwd = fx.cwd, timeout = 60 })
end
local function event_lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = { raw = line, v = parse(line) } end
  return out
end

-- ---- cork plan: a minimal bottle has the shapes of a full one ------------------
fs.write(home .. "/.config/cork/bottles/bare.yaml", "agent: { provider: custom, image: bare:1, command: [sh] }\n")
local full = run({ "plan", "--bottle", "dev", "--json", "--no-docker" })
local bare = run({ "plan", "--bottle", "bare", "--json", "--no-docker" })
T.is(full.status + bare.status, 0, "plan --json of a full and a bare bottle", full.stderr .. bare.stderr)
-- (--json anywhere is the global flag: the plan comes as a "plan" event)
local fs_, bs = shapes(parse(full.stdout).plan, "plan"), shapes(parse(bare.stdout).plan, "plan")
local mismatch = {}
for path, shape in pairs(bs) do
  if fs_[path] and fs_[path] ~= shape then mismatch[#mismatch + 1] = ("%s: %s, %s in the full plan"):format(path, shape, fs_[path]) end
end
table.sort(mismatch)
T.same(mismatch, {}, "every field of the bare plan has the full plan's type (no {} for an empty list)")
for _, path in ipairs({ "plan.skills", "plan.provider.hosts", "plan.bundle.extra_hosts", "plan.agent_secrets",
  "plan.egress_plan.routes", "plan.egress_plan.token_slots", "plan.proxy_plan.passthrough" }) do
  T.is(bs[path], "array", path .. " is an array when empty")
end
T.is(bs["plan.bundle.env"], "object", "a map stays an object")
local y = run({ "plan", "--bottle", "bare", "--no-docker" })
T.like(y.stdout, "\nskills: %[%]\n", "plan YAML: skills: []")
T.like(y.stdout, "\n  extra_hosts: %[%]\n", "plan YAML: bundle.extra_hosts: []")
T.like(y.stdout, "\n  hosts: %[%]\n", "plan YAML: provider.hosts: []")

-- ---- cork ls / cork down ---------------------------------------------------------
-- a journal whose cork process has exited (a live owner would be asked to stop)
fs.write(fx.dir .. "/journal.lua", [[require("cork.journal").set_root(arg[1])
require("cork.journal").open("bare-abc123", { backend = "docker", bottle = "bare" })]])
cork.proc.run({ BIN, "script", fx.dir .. "/journal.lua", fx.dir .. "/state/cork" })
local ls = run({ "--json", "ls" })
local row
for _, e in ipairs(event_lines(ls.stdout)) do if e.v.event == "bottle" then row = e.v end end
T.ok(row and row.containers and row.containers[ARRAY], "ls --json: containers is [] with none", ls.stdout)
local dn = run({ "--json", "down", "bare-abc123" })
local down
for _, e in ipairs(event_lines(dn.stdout)) do if e.v.event == "down" then down = e end end
T.ok(down and down.v.removed and down.v.removed[ARRAY], "down --json: removed is [] (was {})", dn.stdout)

-- ---- events: a dry run, and no {} where a list goes -----------------------------
local dry = run({ "--json", "run", "docker", "--bottle", "bare", "--dry-run" })
T.is(dry.status, 0, "a dry run of the bare bottle", dry.stderr)
local bad = {}
for _, e in ipairs(event_lines(dry.stdout)) do
  if e.v.event == "dry_run" and not (e.v.args and e.v.args[ARRAY]) then bad[#bad + 1] = e.raw end
  if e.v.event == "bottle_ready" and not (e.v.attach and e.v.attach[ARRAY]) then bad[#bad + 1] = e.raw end
end
T.same(bad, {}, "dry_run args and bottle_ready attach are arrays")

T.done()
