-- libcurl and libcrypto are loaded on first use: a cork process that never
-- talks to Docker does not map libcurl (nor the ~25 libraries it needs), one
-- that makes no certificate does not map libcrypto; docker.connect loads
-- libcurl (dlopen of libcurl.so.4), cork.ca libcrypto, and a missing libcurl
-- is a clear error naming the Debian package. cork's own trimmed libcurl,
-- when built (tools/libcurl.sh), is found beside the binary.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local BIN = os.getenv("CORK_BIN")
local fs = cork.fs

local function mapped(lib)
  return (fs.read("/proc/self/maps"):match("[^\n/]*" .. lib .. "[^\n]*")) or false
end
local function libcurl_mapped() return mapped("libcurl") end

local dir = fs.tempdir("cork-test-curl")
local s <close> = cork.scope("test_libcurl_lazy")
s:defer(function() fs.remove(dir, { recursive = true }) end)

-- 1. neither the executable nor libcork needs libcurl at load time
local lib = BIN:gsub("/cork$", "/libcork.so")
for _, f in ipairs({ BIN, lib }) do
  local r = cork.proc.run({ "ldd", f })
  T.is(r.status, 0, "ldd " .. f)
  T.unlike(r.stdout, "libcurl", f:match("[^/]+$") .. " does not link libcurl")
  T.unlike(r.stdout, "libcrypto", f:match("[^/]+$") .. " does not link libcrypto")
end

-- 2. a process that never connects: this test itself, and a fresh one that
--    requires every module
T.is(libcurl_mapped(), false, "this cork script (no Docker yet) does not map libcurl")
T.is(mapped("libcrypto"), false, "nor libcrypto (no certificate yet)")
local probe = dir .. "/probe.lua"
fs.write(probe, [[
require "cork.docker"; require "cork.ca"; require "cork.cli"; require "cork.bottle"; require "cork.cmd.ls"
local maps = io.open("/proc/self/maps"):read("a")
io.write((maps:match("[^\n/]*libcurl[^\n]*")) or (maps:match("[^\n/]*libcrypto[^\n]*")) or "none")
]])
local r = cork.proc.run({ BIN, "script", probe })
T.is(r.stdout, "none", "requiring cork.docker, cork.ca and the commands maps neither libcurl nor libcrypto")
r = cork.proc.run({ BIN, "version" })
T.like(r.stdout, "\nlibcurl [%d.]+\n", "cork version still names libcurl (the version built against)")

-- 3. the first connect loads it, whether or not a daemon answers
local ok, err = pcall(cork.docker.connect, "unix://" .. dir .. "/no-such.sock")
T.ok(not ok and cork.is_error(err), "connect to a missing socket fails with a cork error")
T.like(libcurl_mapped() or "", "libcurl[%w-]*%.so%.4", "and libcurl is mapped from then on")

-- the first certificate loads libcrypto
cork.ca.mint({ dir = dir .. "/ca", name = "t" })
T.like(mapped("libcrypto") or "", "libcrypto%.so%.3", "cork.ca.mint loads libcrypto")
T.like(cork.ca.fingerprint(dir .. "/ca/t.pem"), "^%x+$", "and uses it")

-- 4. a missing libcurl: kind not_found, the library and the Debian package named
fs.write(probe, [[
local ok, err = pcall(cork.docker.connect, "unix:///nonexistent.sock")
print(err.kind); print(err.message)
ok, err = pcall(cork.docker.connect, "unix:///nonexistent.sock")
print(err.kind)
]])
r = cork.proc.run({ BIN, "script", probe }, { env = { CORK_LIBCURL = dir .. "/libcurl.so.4" } })
local kind, msg, again = r.stdout:match("^(%S+)\n([^\n]*)\n(%S+)\n$")
T.is(kind, "not_found", "without libcurl: kind not_found")
T.like(msg or r.stdout, "^cannot load .*/libcurl%.so%.4, which cork uses to talk to Docker: ", "names the library")
T.like(msg or "", "%(install the Debian package libcurl4%)$", "and the Debian package")
T.is(again, "not_found", "a second connect says the same (no crash, no half-loaded state)")
r = cork.proc.run({ BIN, "down", "--all" }, { env = { CORK_LIBCURL = dir .. "/libcurl.so.4",
  XDG_STATE_HOME = dir .. "/state", CORK_SMOLVM = dir .. "/no-smolvm" } })
T.like(r.stderr, "install the Debian package libcurl4", "cork down without libcurl: the warning says what to install")
T.is(r.status, 0, "and the rest of cork still works (nothing to end)")
-- 5. cork's own libcurl (tools/libcurl.sh, `make libcurl`): libcurl/libcurl.so.4
--    beside the binary, or ../lib/cork/libcurl.so.4 from it (an install), is
--    loaded instead of Debian's; not when group or others may write it; and
--    CORK_LIBCURL still wins. Any libcurl stands in for it here.
do
  local loaded = fs.read("/proc/self/maps"):match("(/[^\n ]*libcurl[^\n /]*)\n")
  local function which(bin, env)
    fs.write(probe, [[
pcall(cork.docker.connect, "unix:///nonexistent.sock")
io.write(io.open("/proc/self/maps"):read("a"):match("(/[^\n ]*libcurl[^\n /]*)\n") or "none")
]])
    return cork.proc.run({ bin, "script", probe }, { env = env }).stdout
  end
  local function copy(from, to, mode)
    fs.write(to, fs.read(from), { mode = mode })
  end
  local tree = dir .. "/tree"
  fs.mkdir(tree .. "/libcurl", 448)
  copy(BIN, tree .. "/cork", "0755")
  copy(loaded, tree .. "/libcurl/libcurl.so.4", "0644")
  T.is(which(tree .. "/cork"), tree .. "/libcurl/libcurl.so.4", "libcurl/libcurl.so.4 beside the binary is loaded")
  T.is(which(tree .. "/cork", { CORK_LIBCURL = loaded }), loaded, "CORK_LIBCURL wins over it")
  cork.proc.run({ "chmod", "0664", tree .. "/libcurl/libcurl.so.4" })
  local got = which(tree .. "/cork")
  T.ok(got ~= "none" and not got:find(tree, 1, true), "not when the group may write it (Debian's then): " .. got)
  local inst = dir .. "/inst"
  fs.mkdir(inst .. "/bin", 448)
  fs.mkdir(inst .. "/lib/cork", 448)
  copy(BIN, inst .. "/bin/cork", "0755")
  copy(loaded, inst .. "/lib/cork/libcurl.so.4", "0644")
  T.is(which(inst .. "/bin/cork"), inst .. "/lib/cork/libcurl.so.4", "an install's PREFIX/lib/cork/libcurl.so.4")

  -- 6. beside it, libcurl-notls.so.4 is loaded for an endpoint without TLS,
  --    libcurl.so.4 for one with TLS; the first connect decides
  cork.proc.run({ "chmod", "0644", tree .. "/libcurl/libcurl.so.4" })
  copy(loaded, tree .. "/libcurl/libcurl-notls.so.4", "0644")
  T.is(which(tree .. "/cork"), tree .. "/libcurl/libcurl-notls.so.4", "a unix socket: libcurl-notls.so.4")
  fs.write(probe, [[
pcall(cork.docker.connect, "tcp://127.0.0.1:1", { tls_verify = true, cert_path = "/nonexistent" })
io.write(io.open("/proc/self/maps"):read("a"):match("(/[^\n ]*libcurl[^\n /]*)\n") or "none")
]])
  T.is(cork.proc.run({ tree .. "/cork", "script", probe }).stdout, tree .. "/libcurl/libcurl.so.4",
    "a TLS endpoint: libcurl.so.4")
  T.is(which(inst .. "/bin/cork"), inst .. "/lib/cork/libcurl.so.4", "without a TLS-less one: libcurl.so.4 for both")
  -- the real one (make libcurl) has no TLS: a TLS endpoint after it is refused, clearly
  local notls = BIN:gsub("/cork$", "/libcurl/libcurl-notls.so.4")
  if fs.exists(notls) then
    fs.write(probe, [[
local ok, err = pcall(cork.docker.connect, "unix:///nonexistent.sock")
ok, err = pcall(cork.docker.connect, "tcp://127.0.0.1:1", { tls_verify = true, cert_path = "/nonexistent" })
io.write(err.kind, "\n", err.message)
]])
    r = cork.proc.run({ BIN, "script", probe })
    T.like(r.stdout, "^unsupported\nthis process loaded .*libcurl%-notls%.so%.4, which has no TLS",
      "cork's own TLS-less libcurl, then a TLS endpoint: unsupported, saying why")
    fs.write(probe, [[
pcall(cork.docker.connect, "unix:///nonexistent.sock")
local maps = io.open("/proc/self/maps"):read("a")
io.write(maps:find("libssl", 1, true) and "libssl" or "", maps:find("libcrypto", 1, true) and "libcrypto" or "")
]])
    T.is(cork.proc.run({ BIN, "script", probe }).stdout, "", "and a unix socket maps neither libssl nor libcrypto")
  else
    T.diag("SKIP: no " .. notls .. " (make libcurl builds it): the TLS-less library's own checks")
  end
end
T.done()
