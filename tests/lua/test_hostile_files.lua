-- Hostile files where bottles and agents are read from (issue 20): a FIFO, a
-- symlink to /dev/zero and an oversized file in every search dir (and as an
-- `extends` parent) are refused at once with a clear error; a directory, a
-- symlink loop or an unreadable dir is named, not "no bottle named X"; a
-- relative HOME is refused early; many unknown keys stay fast and the error
-- list is capped; cork.fs.read's own checks.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local fs = cork.fs

local bin = os.getenv("CORK_BIN") or (os.getenv("CORK_ROOT") .. "/build/cork")
local dir = fs.tempdir("cork-hostile")
local s <close> = cork.scope("test_hostile_files")
s:defer(fs.remove, dir, { recursive = true })

local home, cwd = dir .. "/home", dir .. "/repo"
local cfg = home .. "/.config/cork"
local places = {
  { kind = "bottle", dir = cfg .. "/bottles" },
  { kind = "bottle", dir = home .. "/.bot-bottle/bottles" },
  { kind = "agent", dir = cfg .. "/agents" },
  { kind = "agent", dir = home .. "/.bot-bottle/agents" },
  { kind = "agent", dir = cwd .. "/.cork/agents" },
}
for _, p in ipairs(places) do fs.mkdir(p.dir) end
local env = { HOME = home, XDG_CONFIG_HOME = home .. "/.config", XDG_STATE_HOME = dir .. "/state",
  PATH = os.getenv("PATH"), PWD = cwd }

local function cork_run(argv, extra)
  local a = { bin }
  for _, x in ipairs(argv) do a[#a + 1] = x end
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  for k, v in pairs(extra or {}) do e[k] = v end
  local t = cork.time()
  local r = cork.proc.run(a, { env = e, cwd = cwd, timeout = 20 })
  r.took = cork.time() - t
  return r
end

local function hostile(path, what)
  if what == "fifo" then cork.proc.run({ "mkfifo", path })
  elseif what == "zero" then cork.proc.run({ "ln", "-s", "/dev/zero", path })
  else fs.write(path, ("# padding padding padding padding padding padding padding\n"):rep(20000)) end
end

local WHY = {
  fifo = "not a regular file %(a FIFO%)",
  zero = "not a regular file %(a character device%)",
  big = "larger than 1048576 bytes %(the most a manifest may be%)",
}

for i, p in ipairs(places) do
  for _, what in ipairs({ "fifo", "zero", "big" }) do
    local name = ("h%d%s"):format(i, what)
    local path = p.dir .. "/" .. name .. ".yaml"
    hostile(path, what)
    local r = cork_run({ "plan", "--no-docker", "--" .. p.kind, name })
    local label = ("%s in %s"):format(what, p.dir:sub(#dir + 2))
    T.ok(r.took < 10, label .. ": answered at once (" .. ("%.1f"):format(r.took) .. " s)")
    T.is(r.status, 2, label .. ": exit 2")
    T.like(r.stderr, path:gsub("%p", "%%%0") .. ": " .. WHY[what], label .. ": says what is wrong")
    fs.remove(path)
  end
end

-- an `extends` parent that is a FIFO
do
  hostile(cfg .. "/bottles/pipe.yaml", "fifo")
  fs.write(cfg .. "/bottles/kid.yaml", "extends: pipe\n")
  local r = cork_run({ "plan", "--no-docker", "--bottle", "kid" })
  T.ok(r.took < 10, "a FIFO as extends parent: answered at once")
  T.like(r.stderr, "pipe%.yaml: not a regular file %(a FIFO%)", "a FIFO as extends parent: refused")
  fs.remove(cfg .. "/bottles/pipe.yaml"); fs.remove(cfg .. "/bottles/kid.yaml")
end

-- a directory where a bottle file would be; a symlink loop; an unreadable dir
do
  fs.mkdir(cfg .. "/bottles/adir.yaml")
  local r = cork_run({ "plan", "--no-docker", "--bottle", "adir" })
  T.like(r.stderr, ('bottle "adir" cannot be loaded: %s/bottles/adir%%.yaml is a directory, not a manifest file')
    :format(cfg:gsub("%p", "%%%0")), "a directory named like the bottle: said so")
  fs.remove(cfg .. "/bottles/adir.yaml")
  fs.remove(cfg .. "/bottles", { recursive = true })
  cork.proc.run({ "ln", "-s", "bottles", cfg .. "/bottles" })
  r = cork_run({ "plan", "--no-docker", "--bottle", "any" })
  T.like(r.stderr, 'bottle "any" cannot be loaded: .*Too many levels of symbolic links',
    "a bottles dir that is a symlink loop: said so")
  T.unlike(r.stderr, "no bottle named", "not 'no bottle named'")
  fs.remove(cfg .. "/bottles")
  fs.mkdir(cfg .. "/bottles")
  if cork.core.uid() ~= 0 then
    cork.proc.run({ "chmod", "000", cfg .. "/bottles" })
    r = cork_run({ "plan", "--no-docker", "--bottle", "any" })
    T.like(r.stderr, 'bottle "any" cannot be loaded: .*Permission denied', "an unreadable bottles dir: said so")
    cork.proc.run({ "chmod", "700", cfg .. "/bottles" })
  else
    T.skip("an unreadable dir: root reads it anyway")
  end
end

-- a relative HOME is refused before anything else
do
  local r = cork_run({ "plan", "--no-docker", "--bottle", "any" }, { HOME = "relative/home", XDG_CONFIG_HOME = "" })
  T.is(r.status, 1, "relative HOME: exit 1")
  T.like(r.stderr, "HOME=relative/home is not an absolute path", "relative HOME: said so")
end

-- many unknown keys: did-you-mean for the first few only; the list capped
do
  local lines = { "agent:", "  provider: claude" }
  for i = 1, 20000 do lines[#lines + 1] = ("unknwon_key_%d: 1"):format(i) end
  fs.write(cfg .. "/bottles/many.yaml", table.concat(lines, "\n") .. "\n")
  local r = cork_run({ "plan", "--no-docker", "--bottle", "many" })
  T.is(r.status, 2, "20000 unknown keys: exit 2")
  T.ok(r.took < 8, ("20000 unknown keys: %.1f s (did-you-mean is capped)"):format(r.took))
  local err = T.raises(function() require("cork.manifest").parse(table.concat(lines, "\n"), "many.yaml", "bottle") end,
    "manifest", nil, "20000 unknown keys: a manifest error")
  local list = err and err.errors or {}
  T.is(#list, 51, "at most 50 errors listed, and a line saying how many more")
  T.is(list[51], "many.yaml: ... and 19950 more errors", "the last line")
  local hints = 0
  for _, e in ipairs(list) do if e:find("did you mean", 1, true) then hints = hints + 1 end end
  T.is(hints, 0, "no suggestion for keys nothing is close to")
  fs.remove(cfg .. "/bottles/many.yaml")
end

-- cork.fs.read's options
do
  local f = dir .. "/f"
  fs.write(f, "12345")
  T.is(fs.read(f, { max = 5, regular = true }), "12345", "read: at the cap")
  T.raises(function() fs.read(f, { max = 4 }) end, "too_large", "larger than 4 bytes", "read: over the cap")
  cork.proc.run({ "mkfifo", dir .. "/p" })
  T.raises(function() fs.read(dir .. "/p", { regular = true }) end, "invalid", "not a regular file %(a FIFO%)",
    "read{regular}: a FIFO refused without blocking")
  T.raises(function() fs.read("/dev/zero", { regular = true }) end, "invalid", "a character device",
    "read{regular}: /dev/zero refused")
  T.raises(function() fs.read(dir, { regular = true }) end, nil, nil, "read{regular}: a directory refused")
  T.raises(function() fs.read(f, { maxx = 1 }) end, nil, "maxx", "read: an unknown option is an error")
end

T.done()
