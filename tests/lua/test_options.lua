-- One option layer (src/auxlib.c): every module reads option tables and maps
-- errno the same way. Misuse (unknown key, wrong type, missing required) is
-- a plain error; an unusable value of the right type is kind "usage".
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local core, fs, proc, ca, yaml, net = cork.core, cork.fs, cork.proc, cork.ca, cork.yaml, cork.net

local function plain(fn, pattern, name)
  local ok, err = pcall(fn)
  T.ok(not ok and type(err) == "string" and err:find(pattern, 1, true) ~= nil, name,
    "  error: " .. tostring(err) .. "\n  want (plain): " .. pattern)
end

-- unknown keys, with a did-you-mean
plain(function() proc.run({ "true" }, { tiemout = 1 }) end, "unknown option 'tiemout' (did you mean 'timeout'?)",
  "proc: unknown option with a suggestion")
plain(function() fs.write("/nonexistent/x", "y", { atomc = false }) end, "unknown option 'atomc' (did you mean 'atomic'?)",
  "fs: the same message")
plain(function() proc.run({ "true" }, { zzzzzz = 1 }) end, "unknown option 'zzzzzz'", "no suggestion when nothing is close")
plain(function() proc.run({ "true" }, { [1] = 1 }) end, "option keys must be strings (got number)", "a non-string key")

-- booleans are booleans: 0 and "yes" are refused everywhere
plain(function() proc.run({ "true" }, { interactive = 0 }) end, "option 'interactive' must be a boolean (got number)",
  "proc: interactive = 0 is refused (was true)")
plain(function() proc.run({ "true" }, { capture = "no" }) end, "option 'capture' must be a boolean (got string)",
  "proc: capture = 'no' is refused")
local d = fs.tempdir("cork-opts")
plain(function() fs.write(d .. "/a", "x", { atomic = 0 }) end, "option 'atomic' must be a boolean (got number)",
  "fs.write: atomic = 0 is refused")
plain(function() fs.remove(d .. "/zz", { missing_ok = 1 }) end, "option 'missing_ok' must be a boolean (got number)",
  "fs.remove: missing_ok = 1 is refused")
plain(function() fs.lock(d .. "/l", { shared = "yes" }) end, "option 'shared' must be a boolean (got string)",
  "fs.lock: shared = 'yes' is refused")
plain(function() yaml.decode("a: 1", { positions = 1 }) end, "option 'positions' must be a boolean (got number)",
  "yaml: positions = 1 is refused")
plain(function() ca.mint { dir = d, overwrite = 1 } end, "option 'overwrite' must be a boolean (got number)",
  "ca: the same message as every module")
plain(function() net.ensure_pool { sudo = 1 } end, "option 'sudo' must be a boolean (got number)",
  "net: the same message as every module")

-- numbers are numbers: "5" is refused; integers are whole
plain(function() proc.run({ "true" }, { timeout = "5" }) end, "option 'timeout' must be a number (got string)",
  "proc: timeout = '5' is refused (was 5)")
plain(function() fs.lock(d .. "/l", { timeout = "1" }) end, "option 'timeout' must be a number (got string)",
  "fs.lock: timeout = '1' is refused (was 1)")
plain(function() proc.run({ "true" }, { max_output = 1.5 }) end, "option 'max_output' must be an integer (got 1.5)",
  "proc: max_output must be whole")
plain(function() fs.write(d .. "/m", "x", { mode = true }) end,
  "a file mode is a string of octal digits (\"0755\") or an integer, not boolean", "fs.write: mode is a string or an integer")
plain(function() fs.write(d .. "/m", "x", { mode = 99999 }) end,
  "mode 99999 is out of range (an integer mode is at most 0777, 511; write modes as octal strings, \"0755\")",
  "fs.write: mode out of range (octal strings: issue 19.4)")
T.lives(function() ca.mint { dir = d .. "/ca", days = 30.0 } end, "ca: days = 30.0 is a whole number")

-- strings are strings
plain(function() proc.run({ "true" }, { cwd = 1 }) end, "option 'cwd' must be a string (got number)",
  "proc: cwd = 1 is refused")
plain(function() proc.run({ "cat" }, { stdin = 5 }) end, "option 'stdin' must be a string (got number)",
  "proc: stdin = 5")
plain(function() yaml.decode("a: 1", { filename = 3 }) end, "option 'filename' must be a string (got number)",
  "yaml: filename = 3 is refused (was \"3\")")

-- required strings: absent is misuse, "" is kind usage
plain(function() ca.mint {} end, "option 'dir' is required", "absent required option: a plain error")
T.raises(function() ca.mint { dir = "" } end, "usage", "option 'dir' is empty", "empty required option: kind usage")
T.raises(function() ca.mint { dir = d, name = "" } end, "usage", "mint: option 'name' is empty", "empty name: kind usage")

-- errno -> kind, the same map everywhere
local e = T.raises(function() fs.read(d .. "/missing") end, "not_found", "missing", "fs: ENOENT is not_found")
T.is(e and e.path, d .. "/missing", "fs errors carry the path")
T.is(e and type(e.errno), "number", "fs errors carry errno")
fs.write(d .. "/file", "x")
T.raises(function() fs.read(d .. "/file/below") end, "not_found", nil, "fs: ENOTDIR is not_found")
T.raises(function() ca.mint { dir = d .. "/file/below" } end, "not_found", nil, "ca: ENOTDIR is not_found too (was io)")

-- the same layer from Lua: core.options and core.opt
T.same(core.options(nil, { "a" }), {}, "core.options(nil) is an empty table")
local o = { a = 1 }
T.is(core.options(o, { "a", "b" }), o, "core.options returns the table")
plain(function() core.options({ bb = 1 }, { "b", "c" }) end, "unknown option 'bb' (did you mean 'b'?)",
  "core.options: unknown key")
T.is(core.opt({ a = "x" }, "a", "string"), "x", "core.opt string")
T.is(core.opt({}, "a", "string", "d"), "d", "core.opt default")
T.is(core.opt(nil, "a", "boolean", true), true, "core.opt without a table")
T.is(math.type(core.opt({ a = 5.0 }, "a", "integer")), "integer", "core.opt integer gives an integer")
T.is(core.opt({ a = false }, "a", "boolean", true), false, "core.opt false is not the default")
plain(function() core.opt({ a = "5" }, "a", "number") end, "option 'a' must be a number (got string)", "core.opt number")
plain(function() core.opt({}, "a", "required") end, "option 'a' is required", "core.opt required")
T.raises(function() core.opt({ a = "" }, "a", "required") end, "usage", "option 'a' is empty", "core.opt required empty")
plain(function() core.opt({}, "a", "list") end, "invalid option 'list'", "core.opt: an unknown type")

fs.remove(d, { recursive = true })
T.done()
