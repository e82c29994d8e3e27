-- cork.fs: modes from creation, atomic writes, errors with kinds, locks.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local fs = cork.fs

local d = fs.tempdir("cork-fs")
T.is(fs.stat(d).mode, 448, "tempdir is 0700")
T.like(d, "/cork%-fs%.[%w]+$", "tempdir name has the prefix")

fs.mkdir(d .. "/a/b/c", 448)
T.is(fs.stat(d .. "/a/b/c").type, "directory", "mkdir with parents")
T.is(fs.stat(d .. "/a/b/c").mode, 448, "last component gets the mode")
T.lives(function() fs.mkdir(d .. "/a/b/c") end, "mkdir of an existing dir is fine")
fs.write(d .. "/file", "x")
T.raises(function() fs.mkdir(d .. "/file") end, "exists", "cannot create directory", "mkdir over a file")

-- modes apply from creation, whatever the umask (run a child with umask 000)
local script = ([[
  local fs = cork.fs
  fs.write(%q, "secret", { mode = 384 })
  fs.write(%q, "x", { mode = 384, atomic = false })
]]):format(d .. "/s1", d .. "/s2")
fs.write(d .. "/umask.lua", script)
local r = cork.proc.run({ "sh", "-c", 'umask 000; exec "$0" script "$1"', os.getenv("CORK_BIN"), d .. "/umask.lua" })
T.is(r.status, 0, "writer under umask 000 ran")
T.is(fs.stat(d .. "/s1").mode, 384, "atomic write: 0600 under umask 000")
T.is(fs.stat(d .. "/s2").mode, 384, "plain write: 0600 under umask 000")
T.is(fs.read(d .. "/s1"), "secret", "read back")

-- an existing world-readable file is tightened before the new bytes land
fs.write(d .. "/wide", "old", { mode = 420, atomic = false })
fs.write(d .. "/wide", "new", { mode = 384, atomic = false })
T.is(fs.stat(d .. "/wide").mode, 384, "rewrite tightens the mode")

-- atomic write leaves no temp files behind
fs.write(d .. "/atom", string.rep("y", 100000))
local leftovers = 0
for _, n in ipairs(fs.list(d)) do if n:find("%.tmp%.") then leftovers = leftovers + 1 end end
T.is(leftovers, 0, "no temp files left by atomic writes")

T.same(fs.list(d .. "/a"), { "b" }, "list")
T.ok(fs.exists(d .. "/atom"), "exists")
T.ok(not fs.exists(d .. "/nope"), "not exists")
T.is(fs.stat(d .. "/nope"), nil, "stat of a missing path is nil")

T.raises(function() fs.read(d .. "/nope") end, "not_found", "^cannot read .*/nope: No such file or directory$", "read missing: not_found")
local e = T.raises(function() fs.remove(d .. "/nope") end, "not_found", "cannot remove", "remove missing: not_found")
T.is(e and e.path, d .. "/nope", "error names the path")
T.lives(function() fs.remove(d .. "/nope", { missing_ok = true }) end, "missing_ok")
T.raises(function() fs.remove(d .. "/a") end, "exists", "cannot remove", "non-recursive remove of a non-empty dir")
T.raises(function() fs.write("/proc/cork-nope/x", "y") end, "not_found", nil, "write into a missing dir")
T.raises(function() fs.write(d .. "/x", "y", { mod = 1 }) end, nil, "unknown option 'mod'", "unknown option")
T.raises(function() fs.remove("/") end, nil, "refusing to remove", "never remove /")

T.is(fs.join("a", "b", "c"), "a/b/c", "join")
T.is(fs.join("a/", "/abs", "c"), "/abs/c", "join restarts at an absolute part")
T.is(fs.join("a", "", "b"), "a/b", "join skips empty parts")
T.is(fs.expand_tilde("~/x"), os.getenv("HOME") .. "/x", "expand_tilde")
T.is(fs.expand_tilde("/x/~"), "/x/~", "expand_tilde leaves other paths")

-- locks: exclusive across processes, timeout kind, released on close
do
  local lk <close> = fs.lock(d .. "/lock")
  T.ok(lk:held(), "lock held")
  local other = ([[
    local ok, e = pcall(cork.fs.lock, %q, { timeout = 0.2 })
    io.write(ok and "got" or (e.kind .. ":" .. e.message))
  ]]):format(d .. "/lock")
  fs.write(d .. "/other.lua", other)
  local r2 = cork.proc.run({ os.getenv("CORK_BIN"), "script", d .. "/other.lua" })
  T.like(r2.stdout, "^timeout:timed out after 0%.2s waiting for lock ", "second process times out on the lock")
end
local r3 = cork.proc.run({ os.getenv("CORK_BIN"), "script", d .. "/other.lua" })
T.is(r3.stdout, "got", "lock released at scope exit")
T.is(fs.stat(d .. "/lock").mode, 384, "lock file is 0600")

-- modes (issue 19.4): Lua reads 0755 as decimal 755 (mode 01363); octal
-- strings are the way to write a mode, and a decimal-looking one is refused
fs.write(d .. "/m1", "x", { mode = "0755" })
T.is(fs.stat(d .. "/m1").mode, 493, "write: mode \"0755\" is 0755")
fs.write(d .. "/m2", "x", { mode = "640", atomic = false })
T.is(fs.stat(d .. "/m2").mode, 416, "write: mode \"640\" is 0640")
fs.mkdir(d .. "/md", "0o750")
T.is(fs.stat(d .. "/md").mode, 488, "mkdir: mode \"0o750\" is 0750")
fs.append(d .. "/ma", "x", { mode = "0640" })
T.is(fs.stat(d .. "/ma").mode, 416, "append: a string mode")
fs.write(d .. "/m3", "x", { mode = 384 })
T.is(fs.stat(d .. "/m3").mode, 384, "an integer mode up to 0777 still works")
T.is(fs.mode("4755"), 2541, "fs.mode: the special bits in the string form")
local ok, e = pcall(fs.write, d .. "/m4", "x", { mode = 755 })
T.ok(not ok and not fs.exists(d .. "/m4"), "write: mode 755 (0755 in Lua) is refused, nothing written")
T.like(tostring(e), 'mode 755 is not a file mode %(Lua reads 0755 as the decimal 755%): write it as a string, "0755"',
  "and the message names the string to write")
ok, e = pcall(fs.mkdir, d .. "/md2", 0700)
T.ok(not ok and not fs.exists(d .. "/md2"), "mkdir: mode 0700 (decimal 700) is refused")
ok, e = pcall(fs.mode, "0785")
T.like(tostring(e), 'mode "0785" is not a file mode: write octal digits', "a string that is not octal")
ok, e = pcall(fs.mode, "010000")
T.like(tostring(e), 'mode "010000" is out of range', "a string above 07777")
ok, e = pcall(fs.mode, 1.5)
T.like(tostring(e), "a file mode is a string of octal digits", "a float")

fs.remove(d, { recursive = true })
T.ok(not fs.exists(d), "recursive remove")
T.done()
