-- cork.smolvm: the driver against the stand-in tests/fakes/smolvm (both
-- dialects), through cork.proc.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local proc, fs, json = cork.proc, cork.fs, cork.json
local smolvm = require "cork.smolvm"

local ROOT = os.getenv("CORK_ROOT")
local FAKE = ROOT .. "/tests/fakes/smolvm"
local tmp = fs.tempdir("cork-smolvm")
local image = tmp .. "/agent.smolmachine"
fs.write(image, "fake image\n")

local n = 0
-- A fresh fake world: its own smolvm state and cork state dir.
local function world(version, extra)
  n = n + 1
  local st = ("%s/fake%d"):format(tmp, n)
  local env = { FAKE_SMOLVM_STATE = st, FAKE_SMOLVM_VERSION = version }
  for k, v in pairs(extra or {}) do env[k] = v end
  local d = smolvm.driver { binary = FAKE, env = env, state_dir = st .. "/cork", call_timeout = 30 }
  return d, st, env
end

local function calls(st)
  local out = {}
  if not fs.exists(st .. "/calls.log") then return out end
  for line in fs.read(st .. "/calls.log"):gmatch("[^\n]+") do
    if not line:match("^version ") and not line:match("^ls ") then out[#out + 1] = line end
  end
  return out
end
local function last_call(st) local c = calls(st); return c[#c] end

-- ---- version and capabilities -------------------------------------------------
local d19, st19 = world("1.9.0")
local v = d19:version()
T.is(v.string, "1.9.0", "version parsed from `smolvm --version`")
T.is(v.dialect, "1.x", "1.9 speaks the 1.x dialect")
local caps = d19:capabilities()
T.same({ caps.create_name, caps.policy_backend, caps.allowlist_enforced, caps.host_from_guest,
  caps.exec_timeout, caps.net_implied_by_allow_cidr },
  { "--name", "virtio-net", true, "100.96.0.1", true, true }, "1.9 capabilities")
local d08, st08 = world("0.8.2")
caps = d08:capabilities()
T.is(caps.dialect, "0.8", "0.8.2 speaks the 0.8 dialect")
T.same({ caps.create_name, caps.policy_backend, caps.allowlist_enforced, caps.exec_timeout,
  caps.exec_workdir, caps.net_implied_by_allow_cidr },
  { "positional", "tsi", false, false, false, false }, "0.8 capabilities")
T.like(caps.allowlist_reason, "TSI backend, which does not enforce", "and why the allowlist is not enforced")
local d14 = world("1.4.0")
T.is(d14:capabilities().allowlist_enforced, false, "1.4: allowlist not trusted (unverified version)")

-- ---- create: argv per dialect, --net explicit, env, labels ----------------------
local entry = d19:create("vm1", { from = image, allow_cidrs = { "127.0.0.16/32" },
  env = { B = "two", A = "1" }, labels = { ["cork.slug"] = "dev" } })
T.is(last_call(st19), "create --name vm1 --from " .. image ..
  " --net --allow-cidr 127.0.0.16/32 -e A=1 -e B=two --label cork.slug=dev", "1.x create argv")
T.is(entry.state, "created", "create returns the listed machine")
T.same(entry.network, { enabled = true, backend = "virtio-net", allowed_cidrs = { "127.0.0.16/32" }, allowed_hosts = {} },
  "allowlist took effect (verified from ls --json)")
T.same(entry.labels, { ["cork.slug"] = "dev" }, "labels echoed")

local e = T.raises(function() d08:create("vm1", { from = image, allow_cidrs = { "127.0.0.16/32" } }) end,
  "unprotected", "^smolvm 0%.8%.2 would not enforce the egress allowlist: smolvm 0%.x runs the TSI backend",
  "0.8 with an allowlist: refused before anything is created")
T.is(last_call(st08), nil, "nothing was run")
entry = d08:create("vm1", { from = image, allow_cidrs = { "127.0.0.16/32" }, env = { A = "1" },
  allow_unenforced = true })
T.is(last_call(st08), "create vm1 --from " .. image .. " --net --allow-cidr 127.0.0.16/32 -e A=1",
  "0.8 create argv: positional name, --net explicit")
T.is(entry.network.enabled, true, "--net took effect (0.8 does not imply it from --allow-cidr)")
-- What happens without the explicit --net, straight to the stand-in:
local raw = proc.run({ FAKE, "machine", "create", "raw", "--from", image, "--allow-cidr", "127.0.0.16/32" },
  { env = { FAKE_SMOLVM_STATE = st08, FAKE_SMOLVM_VERSION = "0.8.2" } })
T.is(raw.status, 0, "(stand-in: 0.8 create --from with only --allow-cidr)")
T.is(d08:status("raw").network.enabled, false, "(stand-in: leaves the network off, as 0.8 does)")

-- The allowlist-dropping versions: verified after create, fail closed.
local ddrop, stdrop = world("1.9.0", { FAKE_SMOLVM_DROP_ALLOWLIST = "1" })
e = T.raises(function() ddrop:create("vm1", { from = image, allow_cidrs = { "127.0.0.16/32" } }) end,
  "unprotected", "^smolvm 1%.9%.0: the egress allowlist did not take effect on 'vm1' %(allowlist lacks 127%.0%.0%.16/32%)$",
  "a dropped allowlist is caught after create")
T.same(ddrop:ls(), {}, "and the unprotected machine was deleted again")
T.is(last_call(stdrop), "delete --name vm1 -f", "(with -f)")

-- Usage errors, before anything runs.
T.raises(function() d19:create("bad name", { from = image }) end, "usage", "bad machine name 'bad name'", "bad name")
T.raises(function() d19:create("x", { from = image, smolfile = "S" }) end, "usage",
  "'from' and 'smolfile' are mutually exclusive", "from and smolfile")
T.raises(function() d19:create("x", { allow_cidrs = { "127.0.0.16" } }) end, "usage",
  "allow_cidrs%[1%] '127%.0%.0%.16' is not an IPv4 CIDR", "a CIDR without a prefix")
T.raises(function() d19:create("x", { allow_cidrs = { "127.0.0.16/32" }, net_backend = "tsi" }) end, "usage",
  "TSI backend does not enforce", "explicit TSI with a policy")
T.raises(function() d08:create("x", { labels = { a = "b" } }) end, "usage", "labels need smolvm 1%.x %(found 0%.8%.2%)",
  "labels on 0.8")
T.raises(function() d19:create("x", { form = image }) end, nil, "unknown option 'form'", "unknown option named")
e = T.raises(function() d19:create("vm1", { from = image }) end, "exists",
  "^smolvm create failed: machine 'vm1' already exists$", "names are unique: kind exists")
T.is(e.status, 1, "error carries the exit status")
T.same(e.argv, { FAKE, "machine", "create", "--name", "vm1", "--from", image }, "error carries the argv")
T.like(e.stderr, "^Error: machine 'vm1' already exists", "error carries stderr")

-- ---- start, exec: env per exec, runuser, status, timeouts ---------------------------
d19:start("vm1")
T.is(last_call(st19), "start --name vm1", "start argv")
T.is(d19:status("vm1").state, "running", "running")
local r = d19:exec("vm1", { "sh", "-c", 'echo "$A $B ${FAKE_SMOLVM_GUEST-}"' })
T.is(r.stdout, "1 two 1\n", "create-time env passed again on exec")
T.is(last_call(st19), "exec --name vm1 -e A=1 -e B=two -- sh -c echo \"$A $B ${FAKE_SMOLVM_GUEST-}\"",
  "exec argv carries the machine env as -e")
r = d19:exec("vm1", { "sh", "-c", 'echo "$A $B $C"' }, { env = { B = "three", C = "c" } })
T.is(r.stdout, "1 three c\n", "per-exec env adds to and overrides the machine env")
-- The stand-in, like smolvm, never carries create-time env into exec:
raw = proc.run({ FAKE, "machine", "exec", "--name", "vm1", "--", "sh", "-c", 'echo "${A-unset}"' },
  { env = { FAKE_SMOLVM_STATE = st19 } })
T.is(raw.stdout, "unset\n", "(stand-in: exec without -e sees no create-time env)")

r = d19:exec("vm1", { "sh", "-c", 'echo "$HOME $USER $FAKE_SMOLVM_RUNUSER"' }, { user = "agent" })
T.is(r.stdout, "/home/agent agent agent\n", "user: runuser -u agent with HOME and USER")
T.like(last_call(st19), " %-e HOME=/home/agent %-e USER=agent %-%- runuser %-u agent %-%- sh %-c ",
  "user wraps argv in runuser -u USER --")
r = d19:exec("vm1", { "sh", "-c", "echo out; echo err >&2; exit 3" })
T.same(r, { status = 3, stdout = "out\n", stderr = "err\n" }, "exec returns the guest's status and output")
e = T.raises(function() d19:exec("vm1", { "sh", "-c", "echo nope >&2; exit 4" }, { check = true }) end,
  "exec_failed", "^'sh' in 'vm1' exited with status 4: nope$", "check = true raises exec_failed")
local t0 = cork.time()
e = T.raises(function() d19:exec("vm1", { "sleep", "10" }, { timeout = 1 }) end, "timeout",
  "^smolvm exec in 'vm1' timed out after 1s$", "1.x exec timeout")
T.ok(cork.time() - t0 < 5, "and it did not wait for the command")
T.like(last_call(st19), "%-%-timeout 1s %-%- sleep 10$", "1.x passes --timeout to smolvm")
r = d19:exec("vm1", { "pwd" }, { workdir = "/tmp" })
T.is(r.stdout, "/tmp\n", "workdir (1.x -w)")
T.like(last_call(st19), " %-w /tmp %-%- pwd$", "as -w")

-- ---- the guest: a chroot per machine -----------------------------------------------
local gfs = st19 .. "/machines/vm1/fs"
T.ok(fs.exists(gfs .. "/bin/busybox"), "(stand-in: create made a busybox rootfs for the machine)")
r = d19:exec("vm1", { "sh", "-c", "ls /; id -u; stat -c '%U %a' /home/agent /tmp" })
T.like(r.stdout, "^bin\n", "exec runs inside the machine's rootfs, not on this host")
T.like(r.stdout, "\n0\nroot 755\nroot 755\n$", "as root; home and /tmp as packing leaves them (root-owned, 0755)")
d19:exec("vm1", { "sh", "-c", "echo guest > /tmp/made-in-guest" })
T.is(fs.read(gfs .. "/tmp/made-in-guest"), "guest\n", "a file written in the guest lands in its rootfs")
T.ok(not fs.exists("/tmp/made-in-guest"), "and not on this host")
r = d19:exec("vm1", { "id", "-un" }, { user = "agent" })
T.is(r.stdout, "agent\n", "user: really the agent user (uid from the guest's /etc/passwd)")
r = d19:exec("vm1", { "true" }, { user = "nobody2" })
T.like(r.stderr, "^runuser: user nobody2 does not exist", "runuser of an unknown user fails as runuser does")
e = T.raises(function() d19:exec("vm1", { "pwd" }, { workdir = "/no/such" }) end, "smolvm",
  "workdir /no/such does not exist", "a missing workdir is smolvm's error")
fs.write(tmp .. "/art.smolmachine", "user=dev\ncommands=git,claude\n")
d19:create("art", { from = tmp .. "/art.smolmachine" })
d19:start("art")
r = d19:exec("art", { "sh", "-c", "git config x y; claude mcp add z; cat /var/log/stand-in-commands.log; ls /home" })
T.is(r.stdout, "git config x y\nclaude mcp add z\ndev\n", "the artifact names the user and stub commands")
d19:delete("art")
-- not root: a clear error, nothing made
if cork.fs.exists("/usr/bin/setpriv") then
  local nd = fs.tempdir("cork-smolvm-nonroot")
  proc.run({ "chmod", "777", nd })
  fs.write(nd .. "/a.smolmachine", "x\n", { mode = 420 })
  raw = proc.run({ "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", FAKE, "machine", "create",
    "--name", "nr", "--from", nd .. "/a.smolmachine" }, { env = { FAKE_SMOLVM_STATE = nd .. "/st" } })
  T.is(raw.stderr, "Error: the smolvm stand-in runs guests in a chroot and must run as root (uid 65534)\n",
    "(stand-in: not root is a clear error)")
  T.ok(not fs.exists(nd .. "/st/machines/nr"), "(and makes no machine)")
  fs.remove(nd, { recursive = true })
else
  T.skip("setpriv not installed", 2)
end

d08:start("vm1")
r = d08:exec("vm1", { "sh", "-c", 'echo "$A"' })
T.is(r.stdout, "1\n", "0.8: env passed per exec too")
t0 = cork.time()
T.raises(function() d08:exec("vm1", { "sleep", "10" }, { timeout = 1 }) end, "timeout", nil,
  "0.8 exec timeout (no --timeout flag: the call is stopped)")
T.ok(cork.time() - t0 < 5, "promptly")
T.unlike(last_call(st08), "%-%-timeout", "0.8 gets no --timeout flag")
r = d08:exec("vm1", { "pwd" }, { workdir = "/tmp" })
T.is(r.stdout, "/tmp\n", "0.8 workdir through a cd wrapper (no -w in 0.8)")

-- ---- wait_ready: an exec right after start is SIGKILLed ----------------------------
local dk, stk = world("1.9.0", { FAKE_SMOLVM_KILL_EXECS = "3" })
dk:create("vm1", { from = image })
dk:start("vm1")
e = T.raises(function() dk:exec("vm1", { "true" }) end, "killed", "^smolvm exec failed: killed by signal 9$",
  "an exec right after start is SIGKILLed: kind killed")
local ready = dk:wait_ready("vm1", { timeout = 20 })
T.is(ready.attempts, 4, "wait_ready polled through the kills (2 more killed, then 2 successes)")
T.ok(ready.elapsed < 5, "with backoff, not a fixed sleep")
dk:stop("vm1")
t0 = cork.time()
e = T.raises(function() dk:wait_ready("vm1", { timeout = 1 }) end, "timeout",
  "^machine 'vm1' not ready after 1s %(%d+ attempts%): smolvm exec failed: machine 'vm1' is not running$",
  "wait_ready gives up at its timeout with the last failure")
T.ok(cork.time() - t0 < 3, "on time")
T.raises(function() dk:wait_ready("nosuch", { timeout = 5 }) end, "not_found", "machine 'nosuch' not found",
  "wait_ready on a missing machine fails at once")

-- ---- ls, cp ---------------------------------------------------------------------
local list = d19:ls()
T.is(#list, 1, "ls --json parsed")
T.is(list[1].name, "vm1", "ls entry name")
fs.write(tmp .. "/hello.txt", "hi\n")
d19:cp("vm1", tmp .. "/hello.txt", "/home/agent/hello.txt")
T.is(last_call(st19), "cp " .. tmp .. "/hello.txt vm1:/home/agent/hello.txt", "cp in: SRC NAME:DST")
d19:cp("vm1", "/home/agent/hello.txt", tmp .. "/back.txt", { direction = "out" })
T.is(fs.read(tmp .. "/back.txt"), "hi\n", "cp out brings it back")

-- ---- pack -----------------------------------------------------------------------
T.is(d19:pack { image = "debian:bookworm", output = tmp .. "/out.smolmachine" }, tmp .. "/out.smolmachine",
  "pack from an image")
T.is(last_call(st19), "pack create --image debian:bookworm -o " .. tmp .. "/out", "pack argv (1.x: -o names the stub)")
T.like(fs.read(tmp .. "/out.smolmachine"), "\nimage=debian:bookworm\n", "the artifact records its input (stand-in)")
T.ok(not fs.exists(tmp .. "/out"), "the packed executable stub beside the artifact is removed")
T.is(d19:pack { image = "debian:bookworm", output = tmp .. "/plain" }, tmp .. "/plain.smolmachine",
  "an output without .smolmachine: the artifact is OUT.smolmachine (1.x)")
T.is(d08:pack { image = "debian:bookworm", output = tmp .. "/o08.smolmachine" }, tmp .. "/o08.smolmachine",
  "0.8: the artifact is the output")
T.is(last_call(st08), "pack create --image debian:bookworm -o " .. tmp .. "/o08.smolmachine", "0.8 pack argv")
-- straight to the stand-in: 1.x refuses an output ending in .smolmachine
raw = proc.run({ FAKE, "pack", "create", "--image", "a", "-o", tmp .. "/x.smolmachine" }, { env = { FAKE_SMOLVM_STATE = st19 } })
T.like(raw.stderr, "^Error: %-%-output names the packed executable", "(stand-in: 1.x -o X.smolmachine is refused)")
-- pack --image takes registry references only
e = T.raises(function() d19:pack { image = "./saved.tar", output = tmp .. "/y.smolmachine" } end, "smolvm",
  "invalid image reference '%./saved%.tar:latest'", "pack --image with a path: smolvm's own error")
T.is(d19:pack { from_vm = "vm1", output = tmp .. "/vm1.smolmachine" }, tmp .. "/vm1.smolmachine", "pack --from-vm (1.x)")
T.is(last_call(st19), "pack create --from-vm vm1 -o " .. tmp .. "/vm1", "pack --from-vm argv")
T.like(fs.read(tmp .. "/vm1.smolmachine"), "\nfrom%-vm=vm1\n", "the artifact records the machine (stand-in)")
T.raises(function() d08:pack { from_vm = "vm1", output = tmp .. "/x" } end, "usage",
  "from_vm needs smolvm 1%.x %(found 0%.8%.2%)", "no --from-vm on 0.8")
T.raises(function() d19:pack { image = "a", from_vm = "vm1", output = tmp .. "/x" } end, "usage",
  "exactly one of 'image' and 'from_vm'", "image and from_vm are exclusive")

-- a machine from a `docker save` archive (1.x create --image), packed with --from-vm from 1.9
local archive = tmp .. "/saved.tar"
fs.mkdir(tmp .. "/saved")
fs.write(tmp .. "/saved/manifest.json", "[]\n")
proc.run({ "tar", "-C", tmp .. "/saved", "-cf", archive, "manifest.json" })
T.same({ d19:capabilities().create_image, d19:capabilities().pack_local_archive, d14:capabilities().pack_local_archive,
  caps.create_image }, { true, true, false, false }, "capabilities: create_image (1.x), pack_local_archive (1.9+)")
d19:create("arch", { image = archive })
T.is(last_call(st19), "create --name arch --image " .. archive, "create --image ARCHIVE argv")
T.is(d19:pack { from_vm = "arch", output = tmp .. "/arch.smolmachine" }, tmp .. "/arch.smolmachine", "1.9 packs it")
T.like(fs.read(tmp .. "/arch.smolmachine"), "\nimage=local:%x+\n", "recording the archive's digest (stand-in)")
d19:delete("arch")
T.raises(function() d08:create("arch", { image = archive }) end, "usage", "image needs smolvm 1%.x", "no --image on 0.8")
local d18, st18 = world("1.8.2")
d18:create("arch", { image = archive })
T.raises(function() d18:pack { from_vm = "arch", output = tmp .. "/a18.smolmachine" } end, "smolvm",
  "can only snapshot VMs created from a REGISTRY image", "1.8 refuses to pack a machine from a local archive")
d18:delete("arch")
T.ok(not fs.exists(st18 .. "/machines/arch"), "delete removes the machine's rootfs")

-- ---- delete: always -f ----------------------------------------------------------
-- Without -f smolvm stops the machine, asks [y/N] and, on EOF, cancels:
raw = proc.run({ FAKE, "machine", "delete", "--name", "vm1" }, { env = { FAKE_SMOLVM_STATE = st19 } })
T.is(raw.status, 0, "(stand-in: delete without -f exits 0 ...)")
T.like(raw.stdout, "Cancelled\n$", "(... prints Cancelled on EOF ...)")
T.is(d19:status("vm1").state, "stopped", "(... and deleted nothing)")
d19:delete("vm1")
T.is(last_call(st19), "delete --name vm1 -f", "1.x delete argv has -f")
T.is(d19:status("vm1"), nil, "deleted")
d08:delete("vm1")
T.is(last_call(st08), "delete -f vm1", "0.8 delete argv: -f NAME")
T.is(d08:status("vm1"), nil, "deleted (0.8)")

-- ---- errors ---------------------------------------------------------------------
local df, stf = world("1.9.0", { FAKE_SMOLVM_FAIL = "start:1,exec" })
df:create("vm1", { from = image, env = { TOKEN = "s3cr3t-value" } })
e = T.raises(function() df:start("vm1") end, "smolvm", "^smolvm start failed: injected failure in start$",
  "a failing call: kind smolvm, smolvm's message")
T.same(e.argv, { FAKE, "machine", "start", "--name", "vm1" }, "with its argv")
T.is(e.status, 1, "exit status")
T.is(e.stderr, "Error: injected failure in start\n", "and stderr")
df:start("vm1")
T.is(df:status("vm1").state, "running", "the injected failure was one-shot (start:1)")
e = T.raises(function() df:exec("vm1", { "true" }, { env = { OTHER = "x" } }) end, "smolvm",
  "injected failure in exec", "a failing exec (smolvm's own error, not the guest's)")
T.same(e.argv, { FAKE, "machine", "exec", "--name", "vm1", "-e", "OTHER=<hidden>", "-e", "TOKEN=<hidden>",
  "--", "true" }, "env values are hidden in the error's argv")
T.unlike(json.encode(e), "s3cr3t", "the secret value appears nowhere in the error")
T.raises(function() d19:start("ghost") end, "not_found", "^smolvm start failed: machine 'ghost' not found$",
  "start of a missing machine: not_found")

local dmiss = smolvm.driver { binary = tmp .. "/no/smolvm" }
e = T.raises(function() dmiss:version() end, "not_found", nil, "missing smolvm binary: not_found")
T.like(e.message, "^smolvm is not installed %(.-/no/smolvm not found%): install smolvm %(see docs/smolvm%.md%) or set CORK_SMOLVM to its path$",
  "says so in one line, with how to fix it")
T.unlike(e.message, "\n", "one line")

local dh, sth = world("1.9.0", { FAKE_SMOLVM_HANG = "stop" })
dh:create("vm1", { from = image })
dh.call_timeout = 1
t0 = cork.time()
e = T.raises(function() dh:stop("vm1") end, "timeout", "^smolvm stop failed: timed out$", "a hung call times out")
T.ok(cork.time() - t0 < 4, "promptly")
dh.env.FAKE_SMOLVM_HANG = nil
dh:delete("vm1")
T.is(dh:status("vm1"), nil, "the lifecycle lock was released after the hung call")

-- ---- lifecycle serialization across processes ------------------------------------
local dl, stl, envl = world("1.9.0", { FAKE_SMOLVM_LOCK_HOLD = "0.15" })
-- Straight to the stand-in, concurrent lifecycle calls collide:
local ps = {}
for i = 1, 3 do
  ps[i] = proc.spawn({ FAKE, "machine", "create", "--name", "raw" .. i, "--from", image },
    { env = envl, stdout = tmp .. "/raw.log", stderr = tmp .. "/raw.log" })
end
local failed = 0
for i = 1, 3 do
  local w = ps[i]:wait()
  if w.status ~= 0 then failed = failed + 1 end
end
T.ok(failed > 0, "(stand-in: concurrent lifecycle calls fail with a lock error)")
T.like(fs.read(tmp .. "/raw.log"), "Error: database is locked", "(stand-in: 'database is locked')")
-- Through cork.smolvm in separate cork processes, they are serialized:
local script = tmp .. "/lifecycle.lua"
fs.write(script, ([[
local smolvm = require "cork.smolvm"
local name = os.getenv("VM")
local d = smolvm.driver { binary = %q, state_dir = %q }
d:create(name, { from = %q })
d:start(name)
d:stop(name)
d:delete(name)
io.write("done ", name, "\n")
]]):format(FAKE, stl .. "/cork", image))
ps = {}
for i = 1, 4 do
  local env = { VM = "par" .. i }
  for k, val in pairs(envl) do env[k] = val end
  ps[i] = proc.spawn({ os.getenv("CORK_BIN"), "script", script },
    { env = env, stdout = tmp .. "/par" .. i .. ".log", stderr = tmp .. "/par" .. i .. ".log" })
end
local ok_all = true
for i = 1, 4 do
  local w = ps[i]:wait()
  if w.status ~= 0 then
    ok_all = false
    T.diag(fs.read(tmp .. "/par" .. i .. ".log"))
  end
end
T.ok(ok_all, "4 concurrent cork processes: every create/start/stop/delete succeeded")
local log = fs.read(stl .. "/calls.log")
local _, ncreates = log:gsub("\ncreate %-%-name par", "")
T.is(ncreates, 4, "each create ran exactly once (no lock-error retries were needed)")
T.ok(fs.exists(stl .. "/cork/smolvm.lock"), "the lock file lives in the state dir")
local left = {}
for _, m in ipairs(dl:ls()) do if m.name:match("^par") then left[#left + 1] = m.name end end
T.same(left, {}, "nothing left")

-- ---- the default driver: CORK_SMOLVM ------------------------------------------------
local child = tmp .. "/default.lua"
fs.write(child, 'local s = require "cork.smolvm"; io.write(s.version().string, " ", s.capabilities().dialect)')
r = proc.run({ os.getenv("CORK_BIN"), "script", child },
  { env = { CORK_SMOLVM = FAKE, FAKE_SMOLVM_STATE = tmp .. "/dflt", FAKE_SMOLVM_VERSION = "0.8.4",
    CORK_STATE_DIR = tmp .. "/dflt-state" } })
T.is(r.stdout, "0.8.4 0.8", "module functions use CORK_SMOLVM")

fs.remove(tmp, { recursive = true })
T.done()
