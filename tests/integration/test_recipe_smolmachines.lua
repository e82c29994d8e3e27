-- The smolmachines recipe against the private engine and the stand-in
-- smolvm (tests/fakes/smolvm, whose guests are chroots): --detach end to end
-- (ports on the alias only, guest env, allowlist exactly <alias>/32, token
-- and secret whereabouts, provisioning inside the guest, cork ls, down),
-- sixteen concurrent launches and a seventeenth that finds the pool
-- exhausted, --dry-run, and fault injection at every step (attach included),
-- with a user recipe whose provisioning step fails in the guest.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local json = require "cork.json"

-- Provisioning runs chown/chmod on /tmp and /home: only safe once the fake
-- runs `machine exec` in a per-machine chroot, never on this host. Without
-- it, only what stops before the first exec runs (dry run, faults, which fire
-- at the start of a step, and the pool held by launches paused there).
local fake = cork.fs.read(R.root .. "/tests/fakes/smolvm")
local HAVE_CHROOT = fake:find("chroot", 1, true) ~= nil
local NO_CHROOT = "tests/fakes/smolvm does not yet run `machine exec` in a chroot"
local d = H.connect(T)
R.images(d)
local t0 = cork.time()
local before = H.snapshot(d)
local s <close> = cork.scope("test_recipe_smolmachines")
s:defer(function() H.sweep(d) end)

-- The end-to-end bottle: git-gate (a remote and a git user), supervise, a
-- prompt and a secret for the agent on top of the egress route of R.BOTTLE.
local SECRET = "agent-W6SECRET-" .. tostring(os.time()) .. "-kq2"
local FULL = R.BOTTLE .. [[
env:
  EDITOR: vi
  DEPLOY_KEY: "${CORK_W6_AGENT_SECRET}"
git:
  user: {name: W6 Bot, email: w6@example.com}
  remotes:
    - name: app
      url: https://example.com/acme/app.git
supervise: true
prompt: |
  Work on the w6 test.
]]
-- each run its own slice of the alias pool (engineers' runs share this host)
local K = 1 + cork.core.pid() % 250
local POOL = ("198.18.%d.1-198.18.%d.254"):format(K, K)
local POOL16 = ("198.18.%d.16-198.18.%d.31"):format(K, K)
local function home(name, bottle)
  local h = R.home(name, bottle)
  h.env.CORK_ALIAS_POOL = POOL
  -- the stand-in resolves names from this (empty) file only: no DNS query leaves the host
  cork.fs.write(h.dir .. "/hosts", "")
  h.env.FAKE_SMOLVM_HOSTS = h.dir .. "/hosts"
  h.env.CORK_W6_AGENT_SECRET = SECRET
  -- the stand-in's artifact: the agent user and the agent image's commands
  cork.fs.write(h.dir .. "/agent.smolmachine", "user=agent\ncommands=git,claude\n")
  h.run = { "run", "smolmachines", "--bottle", "w6", "--from", h.dir .. "/agent.smolmachine" }
  return h
end
local function args(h, more)
  local a = {}
  for _, x in ipairs(h.run) do a[#a + 1] = x end
  for _, x in ipairs(more or {}) do a[#a + 1] = x end
  return a
end
local function vms(h)
  local r = cork.proc.run({ R.root .. "/tests/fakes/smolvm", "machine", "ls", "--json" }, { env = h.env })
  local ok, v = pcall(json.decode, r.stdout)
  return ok and type(v) == "table" and v or {}
end
local alias = require "cork.alias"
-- addresses of this run's slice of the pool on lo, guard rules of slug, and
-- stand-in gateways of h (each holds a guest's network namespaces)
local function on_lo()
  local n = 0
  for _, a in ipairs(cork.net.addresses(alias.IFACE)) do
    if a:match("^198%.18%." .. K .. "%.") or a:match("^10%.234%." .. K .. "%.") then n = n + 1 end
  end
  return n
end
local function gateways(h)
  local n = 0
  for _, pid in ipairs(cork.fs.list("/proc")) do
    if pid:match("^%d+$") then
      local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
      local c = f and f:read("a") or ""
      if f then f:close() end
      if c:find("smolvm-gateway", 1, true) and c:find(h.dir, 1, true) then n = n + 1 end
    end
  end
  return n
end
local function nothing_left(h, slug, what)
  T.is(R.engine_left(d, slug), 0, what .. ": no container or network of " .. slug)
  T.is(#vms(h), 0, what .. ": no VM")
  T.is(#alias.guards(slug), 0, what .. ": no guard rule")
  T.is(on_lo(), 0, what .. ": no alias left on " .. alias.IFACE)
  T.is(gateways(h), 0, what .. ": no stand-in gateway (no guest network namespace)")
  -- the pool's and smolvm's lock files (aliases.lock, smolvm.lock) are shared by all bottles
  local left = R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")
  T.is(left, "", what .. ": no journal, state or alias reservation left")
end
local function guest(h, vm, script)
  return cork.proc.run({ R.root .. "/tests/fakes/smolvm", "machine", "exec", "--name", vm, "--", "sh", "-c", script },
    { env = h.env })
end
local function http(host, port)
  return cork.proc.run({ "sh", "-c",
    ('printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 busybox nc %s %d'):format(host, port) }).stdout
end
-- A second network namespace joined to this one by a veth (100.127.K.1 here,
-- 100.127.K.2 there, 198.18.0.0/15 routed here): another host on the "LAN".
local B_HERE, B_THERE = ("100.127.%d.1"):format(K), ("100.127.%d.2"):format(K)
local function other_ns()
  local hold = cork.proc.spawn({ "unshare", "-n", "sleep", "3600" })
  local pid = tostring(hold:pid())
  local mine = cork.proc.run({ "readlink", "/proc/self/ns/net" }).stdout
  for _ = 1, 100 do
    if cork.proc.run({ "readlink", "/proc/" .. pid .. "/ns/net" }).stdout ~= mine then break end
    cork.sleep(0.02)
  end
  local NS = "--net=/proc/" .. pid .. "/ns/net"
  local hv = "ckb" .. tostring(cork.core.pid() % 100000)
  local function sh(script) return cork.proc.run({ "sh", "-c", script }) end
  sh(("ip link add name %s type veth peer name eth0 netns %s && ip addr add %s/30 dev %s && ip link set %s up")
    :format(hv, pid, B_HERE, hv, hv))
  sh(("nsenter %s sh -c 'ip link set lo up; ip addr add %s/30 dev eth0; ip link set eth0 up; "
    .. "ip route add 198.18.0.0/15 via %s'"):format(NS, B_THERE, B_HERE))
  local B = {}
  function B.http(host, port)
    return cork.proc.run({ "nsenter", NS, "sh", "-c",
      ('printf "GET / HTTP/1.0\\r\\n\\r\\n" | timeout 3 busybox nc %s %d'):format(host, port) }).stdout
  end
  function B.serve(port)
    local p = cork.proc.spawn({ "nsenter", NS, "python3", "-c", ([[
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("%s", %d)); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b"canary-b\n"); c.close()
]]):format(B_THERE, port) }, { stdout = "null", stderr = "null" })
    for _ = 1, 50 do
      if cork.proc.run({ "nsenter", NS, "sh", "-c", "busybox netstat -ltn | grep -q ':" .. port .. " '" }).status == 0 then break end
      cork.sleep(0.05)
    end
    return p
  end
  function B.close() hold:close(0) end   -- the veth goes with the namespace
  return B
end

-- 1. end to end with --detach ------------------------------------------------
if not HAVE_CHROOT then T.skip(NO_CHROOT .. ": end to end", 1) else
  local h = home("e2e", FULL)
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local out = h.dir .. "/out.ndjson"
  local a = { R.bin, "--json" }
  for _, x in ipairs(args(h, { "--detach" })) do a[#a + 1] = x end
  local p = cork.proc.spawn(a, { env = h.env, stdout = out, stderr = h.dir .. "/err" })
  local on_argv, samples = {}, 0
  local deadline = cork.time() + 120
  while true do
    for _, pid in ipairs(cork.fs.list("/proc")) do
      if pid:match("^%d+$") then
        local f = io.open("/proc/" .. pid .. "/cmdline", "rb")
        if f then
          local c = f:read("a") or ""; f:close()
          if c:find(R.TOKEN, 1, true) then on_argv.token = true end
          if c:find(SECRET, 1, true) then on_argv.secret = true end
        end
      end
    end
    samples = samples + 1
    -- (not `kill -0`: it succeeds on the exited, unreaped child)
    if not p:running() or cork.time() > deadline then break end
  end
  local r = p:wait()
  local text = cork.fs.read(out)
  local err = cork.fs.read(h.dir .. "/err")
  local ev = R.decode(text)
  T.is(r.status, 0, "smolmachines --detach: exit 0", err)
  T.ok(samples >= 2, "sampled /proc/*/cmdline during the launch (" .. samples .. " rounds)")
  T.ok(not on_argv.token, "the token value is on no process's argv")
  T.ok(not on_argv.secret, "the agent's secret is on no process's argv")
  T.ok(not (text .. err):find(R.TOKEN, 1, true), "the token value is in no event line, nor on stderr")
  T.ok(not (text .. err):find(SECRET, 1, true), "the agent's secret is in no event line, nor on stderr")
  local ready = R.find(ev, { event = "bottle_ready" })[1] or {}
  local slug = ready.slug or "none"
  local vm = "cork-" .. slug
  local ip
  for _, e in ipairs(ev) do if e.alias then ip = e.alias end end
  T.like(ip, "^198%.18%." .. K .. "%.%d+$", "an alias from the pool (198.18.0.0/15, this run's slice)")
  local pip = H.pat(ip or "x")
  local bundle = "cork-" .. slug .. "-bundle"
  local ib = d:container_inspect(bundle)
  T.ok(table.concat(ib.Config.Env, "\n"):find("=" .. R.TOKEN, 1, true), "the token value is in the bundle's env")
  -- ports: on the alias only
  local urls = R.find(ev, { event = "agent_urls" })[1] or {}
  local port = tonumber((urls.HTTPS_PROXY or ""):match("^http://" .. pip .. ":(%d+)$"))
  T.ok(port, "HTTPS_PROXY is the alias and a published port", urls.HTTPS_PROXY)
  local gport = tonumber((urls.GIT_GATE_URL or ""):match("^git://" .. pip .. ":(%d+)$"))
  T.ok(gport, "GIT_GATE_URL is git://<alias>:<port>", urls.GIT_GATE_URL)
  local sport = tonumber((urls.MCP_SUPERVISE_URL or ""):match("^http://" .. pip .. ":(%d+)/$"))
  T.ok(sport, "MCP_SUPERVISE_URL is http://<alias>:<port>/", urls.MCP_SUPERVISE_URL)
  local bound_ok, nbound = true, 0
  for _, binds in pairs(ib.NetworkSettings.Ports or {}) do
    for _, b in ipairs(binds ~= json.null and binds or {}) do
      nbound = nbound + 1
      if b.HostIp ~= ip then bound_ok = false end
    end
  end
  T.is(nbound, 3, "three ports published (egress, git-gate, supervise)")
  T.ok(bound_ok, "every published port is bound on the alias only")
  for daemon, pt in pairs({ egress = port, ["git-gate"] = gport, supervise = sport }) do
    T.like(http(ip, pt), H.pat(daemon), daemon .. ": connect on the alias works")
    T.is(http("127.0.0.1", pt), "", daemon .. ": the same port on 127.0.0.1 is not served")
  end
  -- allowlist
  local v = vms(h)[1] or {}
  T.same(v.network and v.network.allowed_cidrs, { ip .. "/32" }, "the VM's allowlist is exactly <alias>/32")
  T.is(v.network and v.network.backend, "virtio-net", "under a backend that enforces it")
  -- provisioning ran inside the guest (a chroot of the stand-in), not here
  local g = guest(h, vm, "stat -c '%U:%G %a' /home/agent /tmp /var/tmp /home/agent/.cork/env; "
    .. "cat /usr/local/share/ca-certificates/cork.crt; echo ---; cat /var/log/stand-in-commands.log; echo ---; "
    .. "cat /home/agent/.claude/CLAUDE.md").stdout
  T.like(g, "^agent:agent 755\nroot:root 1777\nroot:root 1777\nagent:agent 600\n",
    "guest: home owned by the agent, /tmp and /var/tmp root-owned 1777, the secrets file 0600 the agent's")
  local ca = d:exec(bundle, { "cat", "/etc/cork/pipelock/ca/ca.pem" }).stdout
  local eca = d:exec(bundle, { "cat", "/etc/cork/egress/ca/ca.pem" }).stdout
  T.ok(#ca > 100 and g:find(ca, 1, true) and g:find(eca, 1, true), "guest: the bundle's CAs (pipelock, egress) installed")
  T.like(g, "\ngit config %-%-global user%.name W6 Bot\n", "guest: git identity configured (as the agent)")
  T.like(g, "\ngit config %-%-global %-%-add url%.git://" .. pip .. ":" .. tostring(gport)
    .. "/app%.git%.insteadOf https://example%.com/acme/app%.git\n", "guest: the remote goes through git-gate")
  T.like(g, "\nclaude mcp add %-%-scope user %-%-transport http supervise http://" .. pip .. ":" .. tostring(sport)
    .. "/\n", "guest: supervise registered with the agent's CLI")
  T.like(g, "Work on the w6 test%.\n$", "guest: the prompt where claude reads it")
  T.ok(not cork.fs.exists("/home/agent/.cork/env") or not cork.fs.read("/home/agent/.cork/env"):find(SECRET, 1, true),
    "nothing was written on this host")
  -- cork ls: the VM's status from smolvm
  local ls = R.cork(h, { "ls" })
  local row = R.find(ls.events, { event = "bottle", slug = slug })[1] or {}
  T.is(row.backend, "smolmachines", "cork ls --json: backend", ls.stdout)
  T.is(row.alias, ip, "cork ls --json: alias")
  T.is(row.status, "running", "cork ls --json: status running")
  T.is(row.vm and row.vm.state, "running", "cork ls --json: the VM's state from smolvm")
  T.is(row.ports and math.tointeger(row.ports.egress), port, "cork ls --json: ports")
  local lst = cork.proc.run({ R.bin, "ls" }, { env = h.env }).stdout
  T.like(lst, "\n" .. H.pat(slug) .. " +smolmachines +" .. pip .. " +%d+s +running +running +egress="
    .. tostring(port) .. ",git%-gate=" .. tostring(gport) .. ",supervise=" .. tostring(sport) .. "\n",
    "cork ls: slug, backend, alias, age, status, VM, ports", lst)
  -- guest env: the attach argv, with `env` as the program (as root) ...
  local att = {}
  for _, x in ipairs(ready.attach or {}) do
    if x == "--" then break end
    att[#att + 1] = x
  end
  att[#att + 1] = "--"; att[#att + 1] = "env"
  local ge = cork.proc.run(att, { env = h.env }).stdout
  T.like(ge, "\nHTTPS_PROXY=http://" .. pip .. ":" .. tostring(port) .. "\n", "guest env: HTTPS_PROXY")
  T.like(ge, "\nHTTP_PROXY=http://" .. pip .. ":" .. tostring(port) .. "\n", "guest env: HTTP_PROXY")
  T.like(ge, "\nGIT_GATE_URL=git://" .. pip .. ":" .. tostring(gport) .. "\n", "guest env: GIT_GATE_URL")
  T.like(ge, "\nMCP_SUPERVISE_URL=http://" .. pip .. ":" .. tostring(sport) .. "/\n", "guest env: MCP_SUPERVISE_URL")
  T.like(ge, "\nNO_PROXY=[^\n]*" .. pip, "guest env: NO_PROXY holds the alias")
  T.ok(not ge:find(R.TOKEN, 1, true), "guest env: no bundle token")
  T.ok(not ge:find(SECRET, 1, true), "guest env: the agent's secret is not on the exec's env")
  -- ... and the whole attach argv with `env` for the agent's command: the
  -- agent user, its secrets sourced from the 0600 file
  local full = {}
  for i, x in ipairs(ready.attach or {}) do full[i] = x end
  full[#full] = "env"
  local ae = cork.proc.run(full, { env = h.env }).stdout
  T.like(ae, "\nUSER=agent\n", "attach: runs as the agent")
  T.like(ae, "\nDEPLOY_KEY=" .. H.pat(SECRET) .. "\n", "attach: the agent's secret from its env file")
  -- confinement, from inside the guest (the stand-in's virtio-net network)
  local iso = R.find(ev, { event = "isolation_check" })[1] or {}
  T.ok(type(iso.elapsed) == "number", "the isolation check ran before the bottle was handed over", text)
  T.diag(("isolation check: %.2f s"):format(iso.elapsed or -1))
  local function from_guest(host, pt)
    return guest(h, vm, ('printf "GET / HTTP/1.0\r\n\r\n" | timeout 3 nc %s %d 2>/dev/null'):format(host, pt)).stdout
  end
  for daemon, pt in pairs({ egress = port, ["git-gate"] = gport, supervise = sport }) do
    T.like(from_guest(ip, pt), H.pat(daemon), "guest: reaches " .. daemon .. " on its alias")
  end
  local canary <close> = cork.canary.open({ addrs = { "127.0.0.1" } })
  T.is(from_guest("127.0.0.1", canary:port()), "", "guest: 127.0.0.1 is its own loopback")
  T.is(from_guest("100.96.0.1", canary:port()), "", "guest: the gateway 100.96.0.1 is refused")
  T.is((canary:hits()), 0, "the canary on the host's 127.0.0.1 saw nothing")
  local dns = guest(h, vm, "nslookup localhost 2>&1; nslookup example.com 2>&1; nslookup w6.test " .. ip .. " 2>&1").stdout
  T.unlike(dns, "Address: %d", "guest: no DNS answer for any name (the filter is on, no name allowed)")
  T.like(dns, "can't find localhost: NXDOMAIN", "guest: NXDOMAIN even for localhost")
  local egr = cork.proc.run({ R.root .. "/tests/fakes/smolvm", "machine", "egress-events", "--name", vm }, { env = h.env }).stdout
  T.like(egr, "egress policy denied connect to 100%.96%.0%.1:" .. canary:port(), "egress-events: the gateway was refused")
  T.like(egr, "egress policy denied resolve example%.com", "egress-events: the name was refused")
  -- a second namespace on a veth: a canary there, and a "LAN host" for the guard
  local B = other_ns()
  s:defer(B.close)
  local bport = 20000 + cork.core.pid() % 10000
  local bc = B.serve(bport)
  T.like(http(B_THERE, bport), "canary%-b", "the canary in another namespace answers this host")
  T.is(from_guest(B_THERE, bport), "", "guest: the canary in another namespace is not reachable")
  T.is(B.http(ip, port), "", "guard: the bundle's port on the alias is dropped from another namespace")
  local rules = alias.guards(slug)
  T.is(#rules, 1, "one guard rule for the bottle", table.concat(rules, "\n"))
  T.like(rules[1] or "", "%-d " .. pip .. "/32 ! %-i lo ", "the guard: packets for the alias not from lo")
  alias.unguard(ip, slug)
  T.like(B.http(ip, port), "egress", "without the guard another namespace would reach it (the test sees the hole)")
  alias.guard(ip, slug)
  bc:close(0)
  -- two bottles at once: neither reaches the other's alias
  local h2 = home("e2e-2")
  h2.env.XDG_STATE_HOME, h2.env.FAKE_SMOLVM_STATE = h.env.XDG_STATE_HOME, h.env.FAKE_SMOLVM_STATE
  s:defer(cork.fs.remove, h2.dir, { recursive = true })
  local r2 = R.cork(h2, { "run", "smolmachines", "--bottle", "w6", "--from", h.dir .. "/agent.smolmachine", "--detach" })
  T.is(r2.status, 0, "a second bottle at the same time", r2.stderr)
  local slug2 = (R.find(r2.events, { event = "bottle_ready" })[1] or {}).slug or "none"
  local ip2, port2
  for _, e in ipairs(r2.events) do if e.alias then ip2 = e.alias end end
  local u2 = R.find(r2.events, { event = "agent_urls" })[1] or {}
  port2 = tonumber((u2.HTTPS_PROXY or ""):match(":(%d+)$"))
  T.ok(ip2 and ip2 ~= ip, "with an alias of its own", tostring(ip2))
  T.is(from_guest(ip2 or "x", port2 or 1), "", "guest 1 cannot reach bottle 2's alias")
  T.like(guest(h, "cork-" .. slug2, ('printf "GET / HTTP/1.0\r\n\r\n" | timeout 3 nc %s %d'):format(ip2, port2)).stdout,
    "egress", "while bottle 2's guest reaches it")
  T.is(guest(h, "cork-" .. slug2, ('printf "GET / HTTP/1.0\r\n\r\n" | timeout 3 nc %s %d'):format(ip, port)).stdout,
    "", "and cannot reach bottle 1's")
  T.is(R.cork(h, { "down", slug2 }).status, 0, "down the second bottle")
  T.is(#alias.guards(slug2), 0, "its guard is gone")
  local dn = R.cork(h, { "down", slug })
  T.is(dn.status, 0, "cork down: exit 0")
  nothing_left(h, slug, "after down")
  T.ok(not cork.fs.exists(h.dir .. "/smolvm/machines/" .. vm), "the VM's rootfs is gone")
  T.unlike(cork.proc.run({ R.bin, "ls" }, { env = h.env }).stdout, H.pat(slug), "cork ls: the bottle is gone after down")
end

-- 2. sixteen concurrent launches, then a seventeenth --------------------------
if not HAVE_CHROOT then T.skip(NO_CHROOT .. ": sixteen --detach launches", 1) else
  local h = home("pool")
  h.env.CORK_ALIAS_POOL = POOL16
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local t = cork.time()
  local procs = {}
  for i = 1, 16 do
    local a = { R.bin, "--json" }
    for _, x in ipairs(args(h, { "--detach" })) do a[#a + 1] = x end
    procs[i] = { p = cork.proc.spawn(a, { env = h.env, stdout = h.dir .. "/pool" .. i, stderr = h.dir .. "/pool" .. i .. ".err" }) }
  end
  local aliases, distinct, okc = {}, 0, 0
  for i, x in ipairs(procs) do
    local r = x.p:wait()
    if r.status == 0 then okc = okc + 1
    else T.diag(("launch %d: exit %s: %s"):format(i, tostring(r.status), cork.fs.read(h.dir .. "/pool" .. i .. ".err"))) end
    for _, e in ipairs(R.decode(cork.fs.read(h.dir .. "/pool" .. i))) do
      if e.alias and not aliases[e.alias] then aliases[e.alias] = true; distinct = distinct + 1 end
    end
  end
  T.is(okc, 16, "sixteen concurrent launches succeed")
  T.is(distinct, 16, "with sixteen distinct aliases")
  local range = true
  for i = 16, 31 do if not aliases[("198.18.%d.%d"):format(K, i)] then range = false end end
  T.ok(range, "exactly the pool " .. POOL16)
  T.is(#vms(h), 16, "sixteen VMs running")
  T.diag(("16 concurrent launches: %.1f s"):format(cork.time() - t))
  local snap = H.snapshot(d)
  local r = R.cork(h, args(h, { "--detach" }))
  T.is(r.status, 1, "the seventeenth: exit 1")
  local f = R.find(r.events, { event = "failed" })[1] or {}
  T.is(f.kind, "pool_exhausted", "kind pool_exhausted")
  T.like(f.msg, "pool " .. POOL16:gsub("%p", "%%%0") .. " exhausted", "a clear message")
  H.no_leaks(T, d, snap)
  T.is(#vms(h), 16, "the seventeenth left no VM")
  -- sixteen bottles, one after another: 120 s was not enough at a load of 12
  -- (a clean-clone run beside other work), and the killed down left all 16
  local td = cork.time()
  local dn = R.cork(h, { "down", "--all" }, nil, 900)
  T.diag(("down --all of 16 bottles: %.1f s"):format(cork.time() - td))
  T.is(dn.status, 0, "down --all: exit 0")
  T.is(#vms(h), 0, "no VM after down --all")
  T.is((R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")), "", "no state after down --all")
end

-- 2b. the pool held by sixteen launches paused at provisioning (no exec) ----
do
  local h = R.home("pool-paused")
  h.env.CORK_ALIAS_POOL = POOL16
  cork.fs.write(h.dir .. "/a.smolmachine", "x")
  local run = {R.bin,"--json","run","smolmachines","--bottle","w6","--from",h.dir.."/a.smolmachine"}
  local t = cork.time()
  local ps = {}
  for i = 1, 16 do ps[i] = cork.proc.spawn(run, {env = R.merge(h.env, {CORK_FAULT="pause@provision"}), stdout = h.dir.."/o"..i, stderr="null"}) end
  local deadline = cork.time() + 240   -- sixteen launches on two cores
  local n = 0
  while cork.time() < deadline and n < 16 do
    n = 0
    for i = 1, 16 do local ok, tx = pcall(cork.fs.read, h.dir.."/o"..i); if ok and tx:find('"fault_pause"',1,true) then n = n + 1 end end
    cork.sleep(0.1)
  end
  T.is(n, 16, "paused: sixteen concurrent launches reach provisioning")
  if n < 16 then
    for i = 1, 16 do
      local ok, tx = pcall(cork.fs.read, h.dir .. "/o" .. i)
      local f = ok and tx:match('[^\n]*"event":"failed"[^\n]*')
      if f then T.diag(("launch %d: %s"):format(i, f)) end
    end
  end
  local aliases, distinct = {}, 0
  for i = 1, 16 do for _, e in ipairs(R.decode(cork.fs.read(h.dir.."/o"..i))) do if e.alias and not aliases[e.alias] then aliases[e.alias]=true; distinct=distinct+1 end end end
  T.is(distinct, 16, "paused: sixteen distinct aliases")
  T.diag(("16 launches to provision: %.1f s"):format(cork.time()-t))
  -- (should the pool wrongly have room, the seventeenth fails at provisioning, before any exec)
  local r = R.cork(h, {"run","smolmachines","--bottle","w6","--from",h.dir.."/a.smolmachine"}, { CORK_FAULT = "user@provision" })
  T.is(r.status, 1, "paused: the seventeenth exits 1")
  local f = R.find(r.events, {event="failed"})[1] or {}
  T.is(f.kind, "pool_exhausted", "paused: kind pool_exhausted"); T.like(f.msg, "pool " .. POOL16:gsub("%p", "%%%0") .. " exhausted", "paused: a clear message")
  local slug17 = (R.find(r.events, {event="bottle"})[1] or {}).slug or "none"
  T.is(R.engine_left(d, slug17), 0, "paused: the seventeenth left nothing on the engine")
  for i = 1, 16 do ps[i]:kill("TERM") end
  local codes = {}
  for i = 1, 16 do codes[#codes+1] = ps[i]:wait().status end
  T.is(table.concat(codes, ","), string.rep("130,", 15).."130", "paused: SIGTERM ends all sixteen with 130")
  T.is((R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")), "", "paused: no state left")
  T.diag(("total %.1f s"):format(cork.time()-t))
  for i = 1, 16 do T.is(R.engine_left(d, (R.find(R.decode(cork.fs.read(h.dir .. "/o" .. i)), { event = "bottle" })[1] or {}).slug or "none"), 0, "paused: launch " .. i .. " left nothing") end
  cork.fs.remove(h.dir, { recursive = true })
end

-- 3. --dry-run ---------------------------------------------------------------
do
  local h = home("dry")
  s:defer(cork.fs.remove, h.dir, { recursive = true })
  local snap = H.snapshot(d)
  local r = R.cork(h, args(h, { "--dry-run" }))
  T.is(r.status, 0, "--dry-run: exit 0")
  local names = {}
  for _, c in ipairs(R.find(r.events, { event = "dry_run" })) do names[c.call] = true end
  T.ok(names["docker.container_create"], "--dry-run shows the would-be bundle", r.stdout)
  T.ok(not (r.stdout .. r.stderr):find(R.TOKEN, 1, true), "--dry-run prints no secret value")
  H.no_leaks(T, d, snap)
  T.is(#vms(h), 0, "--dry-run: no VM")
  T.is((R.files(h.env.XDG_STATE_HOME):gsub("[^\n]*/cork/[%a]+%.lock\n?", "")), "", "--dry-run leaves no state")
end

-- 4. fault injection at every step ------------------------------------------
local STEPS = { "alias", "network", "ca", "bundle", "ports", "vm", "provision", "attach" }
-- where the recipe calls smolvm, the stand-in fails that call (at provision:
-- every exec after the readiness poll's two); elsewhere the hook raises a
-- smolvm error (an always-failing exec would only make the readiness poll
-- wait out its timeout)
local SMOLVM_CALL = { vm = "create", provision = "exec+2" }
local function slug_in(events) return (R.find(events, { event = "bottle" })[1] or {}).slug or "none" end
local function case(label, fn)
  local h = home("f")
  local ok, err = pcall(fn, h)
  T.ok(ok, label .. ": ran", tostring(err))
  cork.fs.remove(h.dir, { recursive = true, missing_ok = true })
end
local function paused(h, step, sig)
  local out = h.dir .. "/out"
  local a = { R.bin, "--json" }
  for _, x in ipairs(h.run) do a[#a + 1] = x end
  local p = cork.proc.spawn(a, { env = R.merge(h.env, { CORK_FAULT = "pause@" .. step }), stdout = out, stderr = "null" })
  local deadline, seen = cork.time() + 30, false
  while cork.time() < deadline and not seen do
    local ok, text = pcall(cork.fs.read, out)
    if ok and text:find('"fault_pause"', 1, true) then seen = true else cork.sleep(0.05) end
  end
  T.ok(seen, sig .. "@" .. step .. ": paused at the step")
  p:kill(sig)
  local r = p:wait()
  return slug_in(R.decode(cork.fs.read(out))), r
end
for _, step in ipairs(STEPS) do
  for _, sig in ipairs({ "INT", "TERM" }) do
    case("SIG" .. sig .. "@" .. step, function(h)
      local slug, r = paused(h, step, sig)
      T.is(r.status, 130, "SIG" .. sig .. "@" .. step .. ": exit 130")
      nothing_left(h, slug, "SIG" .. sig .. "@" .. step)
    end)
  end
  case("docker@" .. step, function(h)
    local r = R.cork(h, h.run, { CORK_FAULT = "docker@" .. step })
    T.is(r.status, 1, "docker@" .. step .. ": exit 1")
    T.is((R.find(r.events, { event = "failed" })[1] or {}).kind, "daemon", "docker@" .. step .. ": kind daemon")
    nothing_left(h, slug_in(r.events), "docker@" .. step)
  end)
  case("smolvm@" .. step, function(h)
    local extra = SMOLVM_CALL[step] and { FAKE_SMOLVM_FAIL = SMOLVM_CALL[step] } or { CORK_FAULT = "smolvm@" .. step }
    local r = R.cork(h, h.run, extra)
    T.is(r.status, 1, "smolvm failure @" .. step .. ": exit 1")
    T.is((R.find(r.events, { event = "failed" })[1] or {}).kind, "smolvm",
      "smolvm failure @" .. step .. ": kind smolvm")
    nothing_left(h, slug_in(r.events), "smolvm@" .. step)
  end)
  case("user@" .. step, function(h)
    local r = R.cork(h, h.run, { CORK_FAULT = "user@" .. step })
    T.is(r.status, 1, "user@" .. step .. ": exit 1")
    nothing_left(h, slug_in(r.events), "user@" .. step)
  end)
  case("KILL@" .. step, function(h)
    local slug = paused(h, step, "KILL")
    local dn = R.cork(h, { "down", slug })
    T.is(dn.status, 0, "down after KILL@" .. step .. ": exit 0")
    nothing_left(h, slug, "KILL@" .. step .. " + down")
  end)
end

-- 5. a user recipe whose own provisioning step fails in the guest ------------
if not HAVE_CHROOT then T.skip(NO_CHROOT .. ": a failing user step", 1) else
  case("user recipe step", function(h)
    local recipe = h.dir .. "/mine.lua"
    cork.fs.write(recipe, [[
-- mine: the stock smolmachines flow with one more step, which fails
local provision = require "cork.provision"
provision.steps:insert_after("ca", { name = "tool", run = function(ctx)
  ctx:exec({ "sh", "-c", "echo no such package >&2; exit 7" })
end })
return require("cork.recipes").run("smolmachines", { ... })
]])
    local run = { "run", recipe }
    for i = 3, #h.run do run[#run + 1] = h.run[i] end
    local r = R.cork(h, run)
    T.is(r.status, 1, "a user step failing in the guest: exit 1")
    local f = R.find(r.events, { event = "failed" })[1] or {}
    T.is(f.kind, "exec_failed", "kind exec_failed")
    T.like(f.msg, "exited with status 7: no such package", "with the guest's status and message")
    nothing_left(h, slug_in(r.events), "a failing user step")
  end)
end

-- 6. the isolation check fails closed -----------------------------------------
if HAVE_CHROOT then
  -- a pool inside smolvm's strict floor: the VM may not reach its alias, so
  -- the agent cannot reach its proxy
  case("unreachable first hop", function(h)
    local r = R.cork(h, h.run, { CORK_ALIAS_POOL = ("10.234.%d.1-10.234.%d.254"):format(K, K),
      SMOLVM_EGRESS_FLOOR = "strict" })
    T.is(r.status, 1, "the agent cannot reach its proxy: exit 1")
    local f = R.find(r.events, { event = "failed" })[1] or {}
    T.is(f.kind, "unreachable", "kind unreachable", r.stdout)
    T.like(f.msg, "the agent cannot reach its first hop http://10%.234%.", "the message names the hop", r.stdout)
    nothing_left(h, slug_in(r.events), "unreachable first hop")
  end)
  -- a smolvm that lists the allowlist but enforces none of it
  case("isolation breach", function(h)
    local r = R.cork(h, h.run, { FAKE_SMOLVM_IGNORE_POLICY = "1" })
    T.is(r.status, 1, "the agent reaches what it must not: exit 1")
    local f = R.find(r.events, { event = "failed" })[1] or {}
    T.is(f.kind, "isolation", "kind isolation", r.stdout)
    T.like(f.msg, "the canary on [^;]*127%.0%.0%.1:%d+", "the canary on the host's 127.0.0.1 saw the agent")
    T.like(f.msg, "the bundle's own address", "and the bundle's own address answered it")
    nothing_left(h, slug_in(r.events), "isolation breach")
  end)
  -- the stand-in's gateway killed (-9) under a detached bottle, then cork down
  case("kill -9 of the gateway", function(h)
    local r = R.cork(h, args(h, { "--detach" }))
    T.is(r.status, 0, "a detached bottle", r.stderr)
    local slug = slug_in(r.events)
    local gw = cork.fs.read(h.dir .. "/smolvm/machines/cork-" .. slug .. "/gw"):match("^(%d+)")
    cork.proc.run({ "kill", "-9", gw })
    T.is(R.cork(h, { "down", slug }).status, 0, "cork down after kill -9 of the gateway: exit 0")
    nothing_left(h, slug, "kill -9 of the gateway + down")
  end)
  -- what the check costs: the same launch with the step dropped
  case("launch time", function(h)
    local recipe = h.dir .. "/nocheck.lua"
    cork.fs.write(recipe, [[
require("cork.provision").steps:remove("isolation")
return require("cork.recipes").run("smolmachines", { ... })
]])
    local function timed(run)
      local t = cork.time()
      local r = R.cork(h, run)
      local slug = slug_in(r.events)
      local took = cork.time() - t
      R.cork(h, { "down", slug })
      return r, took
    end
    local with, tw = timed(args(h, { "--detach" }))
    local run = { "run", recipe }
    for i = 3, #h.run do run[#run + 1] = h.run[i] end
    run[#run + 1] = "--detach"
    local without, to = timed(run)
    T.is(with.status + without.status, 0, "both launches succeed", with.stderr .. without.stderr)
    T.is(#R.find(without.events, { event = "isolation_check" }), 0, "a user recipe drops the step by name")
    local iso = R.find(with.events, { event = "isolation_check" })[1] or {}
    T.diag(("launch with the isolation check %.2f s, without %.2f s; the check itself %.2f s")
      :format(tw, to, iso.elapsed or -1))
  end)
end

T.diag(("smolmachines recipe tests: %.1f s"):format(cork.time() - t0))
s:close()   -- T.done() exits: run the defers (sweep, temp dirs) now
H.no_leaks(T, d, before)
T.done()
