-- `cork run escape-suite --backend smolmachines` against the private engine,
-- the smolvm stand-in (tests/fakes/smolvm: its guests are chroots in a
-- network namespace of their own behind tests/fakes/smolvm-gateway, the
-- model of smolvm's virtio-net gateway) and the stand-in bundle: every
-- network-layer attack blocked inside the VM, the content-layer ones "not
-- applicable: stand-in bundle", exit 0, nothing left (containers, networks,
-- VMs, gateways and their namespaces, aliases and their guards, host
-- canaries, state). Then a deliberately weakened bottle
-- (tests/fixtures/escape/recipes/smolmachines-widened.lua: the allowlist
-- widened to the gateway 100.96.0.1/32, the DNS filter off) must be reported
-- as escaping by attack 7 (the host's 127.0.0.1 through the gateway) and
-- attack 4 (the canary resolver saw the secret's lookup), with evidence,
-- exit 1, and leave nothing either.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")

local d = H.connect(T)
R.images(d)
local before = H.snapshot(d)
local s <close> = cork.scope("test_escape_suite_smolmachines")
s:defer(function() H.sweep(d) end)
local E = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/escape_test.lua")(d, R, s)

-- each run its own slice of the alias pool (engineers' runs share this host)
local K = 1 + (cork.core.pid() + 97) % 250
local function home(name) return E.smol_home(name, K, "git,claude") end
local function leftovers(h, slug) return E.smol_left(h, K, {}, slug) end

local NETWORK = { "1", "2", "4", "6", "7", "8", "9", "10", "10i" }
local CONTENT = { "1p", "2p", "3", "4p", "5" }
-- under smolvm, port 53 to any address is the gateway's DNS relay: attack 4 covers 4r

local by_id = E.by_id

-- 1. the stock smolmachines recipe and the stand-in bundle: everything holds
do
  local h = home("escape-smol-ok")
  local t0 = cork.time()
  local r = R.cork(h, { "run", "escape-suite", "--backend", "smolmachines", "--from", h.dir .. "/agent.smolmachine" },
    nil, 300)
  T.diag(("escape-suite --backend smolmachines: %.1f s"):format(cork.time() - t0))
  local res = R.find(r.events, { event = "escape_result" })[1] or {}
  local at = by_id(r.events)
  T.is(r.status, 0, "cork run escape-suite --backend smolmachines: exit 0", r.stderr)
  T.is(res.backend, "smolmachines", "escape_result: the backend")
  for _, id in ipairs(NETWORK) do
    local e = at[id] or {}
    T.is(e.verdict, "blocked", ("attack %s (%s): blocked"):format(id, e.name or "?"),
      table.concat(e.evidence or {}, "; "))
  end
  for _, id in ipairs(CONTENT) do
    T.is((at[id] or {}).verdict, "not applicable: stand-in bundle", ("attack %s: not applicable: stand-in bundle"):format(id))
  end
  T.is(res.escaped, 0, "escape_result: nothing escaped")
  T.is(res.errors, 0, "escape_result: every attack ran (attack 4's lookup carried the planted secret)")
  T.like((at["4r"] or {}).verdict or "", "^not applicable: port 53 to any address goes to smolvm's DNS relay",
    "attack 4r: not applicable, with the reason")
  T.is(res.not_applicable, 6, "escape_result: 6 not applicable (content layer, 4r)")
  T.is(#(res.left or { "?" }), 0, "the suite found nothing left behind")
  T.ok(not r.stdout:find("cork-escape-egress-", 1, true) and not r.stderr:find("cork-escape-egress-", 1, true),
    "the planted egress token is never printed")
  local info = {}
  for _, e in ipairs(r.events) do if e.msg then info[#info + 1] = e.msg end end
  info = table.concat(info, "\n")
  T.like(info, "canary smol_gateway: busybox httpd on 127%.0%.0%.1:%d+", "a canary on the host's 127.0.0.1 for the gateway")
  T.like(info, "canary dns: container [^\n]* on 203%.0%.113%.%d+:8080", "a canary resolver container")
  T.like(info, "canary neighbour_bundle: the second bottle's bundle [^\n]*198%.18%." .. K .. "%.%d+:%d+",
    "the second bottle's bundle, with its alias's published ports")
  T.is(leftovers(h, res.slug), "", "nothing left: containers, networks, VMs, gateways, aliases, guards, state, canaries")
  local steps = {}
  for _, e in ipairs(R.find(r.events, { event = "step" })) do steps[#steps + 1] = e.step end
  T.like(table.concat(steps, " "), "escape%-images escape%-resolver escape%-launch alias network .* vm provision "
    .. "escape%-launch%-neighbour alias .* vm provision escape%-canaries escape%-attacks escape%-teardown", "the steps, in order")
end

-- 2. a weakened bottle: the allowlist widened to the gateway, DNS unfiltered
do
  local h = home("escape-smol-weak")
  h.env.CORK_PATH = os.getenv("CORK_ROOT") .. "/tests/fixtures/escape"
  local r = R.cork(h, { "run", "escape-suite", "--backend", "smolmachines", "--from", h.dir .. "/agent.smolmachine",
    "--recipe", "smolmachines-widened" }, nil, 300)
  local res = R.find(r.events, { event = "escape_result" })[1] or {}
  local at = by_id(r.events)
  T.is(r.status, 1, "the weakened bottle: exit 1", r.stderr)
  T.is(res.escaped, 2, ("escape_result counts two escapes (%s)"):format(tostring(res.escaped)))
  local e7 = at["7"] or {}
  T.is(e7.verdict, "escaped", "attack 7 (the host) escaped")
  local ev = table.concat(e7.evidence or {}, "; ")
  T.like(ev, "canary smol_gateway %(100%.96%.0%.1:%d+, on the host's 127%.0%.0%.1%) logged: ",
    "with the outside canary's evidence: " .. ev)
  T.like(ev, "the agent: 100%.96%.0%.1:%d+ answered: HTTP/", "and the agent's own")
  T.unlike(ev, "canary host_loopback", "the guest's own 127.0.0.1 still reaches nothing of the host")
  local e4 = at["4"] or {}
  T.is(e4.verdict, "escaped", "attack 4 (DNS exfiltration) escaped")
  T.like(table.concat(e4.evidence or {}, "; "), "canary resolver %(203%.0%.113%.%d+:53%) received %d+ packet",
    "the canary resolver saw the lookup")
  for _, id in ipairs({ "1", "2", "8", "10" }) do
    T.is((at[id] or {}).verdict, "blocked", ("attack %s still blocked (the neighbour is off the allowlist)"):format(id))
  end
  T.like(r.stdout, "ESCAPED", "said in the events' messages too")
  T.is(leftovers(h, res.slug), "", "nothing left after a failing run either")
end

-- 3. usage --------------------------------------------------------------------
do
  local h = home("escape-smol-usage")
  local r = cork.proc.run({ R.bin, "run", "escape-suite", "--backend", "tsi" }, { env = h.env })
  T.is(r.status, 2, "an unknown backend: a usage error")
  T.like(r.stderr, "unknown backend 'tsi' %(docker, smolmachines%)", "names the backends")
  r = cork.proc.run({ R.bin, "run", "escape-suite", "--from", "x.smolmachine" }, { env = h.env })
  T.is(r.status, 2, "--from without --backend smolmachines: a usage error")
end

s:close()
H.no_leaks(T, d, before)
T.done()
