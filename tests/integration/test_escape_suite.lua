-- `cork run escape-suite` against the private engine with the stand-in
-- bundle: every network-layer attack blocked, the content-layer ones "not
-- applicable: stand-in bundle" (never "blocked"), exit 0, nothing left of
-- either bottle; then a deliberately weakened bottle (tests/fixtures/escape:
-- a user recipe that undoes the docker recipe's seal) must be reported as an
-- escape, with the attack and the evidence, and exit 1. On the plain engine
-- (no iptables) the stock run and the weakened bottle's second run have the
-- host forwarding IPv4: sealed, everything still holds; unsealed, Docker
-- 20.10's embedded DNS forwards from the agent's own namespace, so the
-- exfiltration name reaches the canary resolver (attack 4), and the agent
-- reaches the second bottle's bundle (attack 8).
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")

local d = H.connect(T)
R.images(d)
local before = H.snapshot(d)
local s <close> = cork.scope("test_escape_suite")
s:defer(function() H.sweep(d) end)
local E = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/escape_test.lua")(d, R, s)

local function leftovers(h, slug, slug2)
  local left = E.left(h, { locks = true }, slug, slug2)
  local ps = cork.proc.run({ "sh", "-c", "ps -eo args | grep -F -- \"$0\" | grep -v grep || true",
    h.env.TMPDIR .. "/cork-escape-www" }).stdout
  if ps ~= "" then left[#left + 1] = "process " .. ps end
  return table.concat(left, "; ")
end

local NETWORK = { ["1"] = true, ["2"] = true, ["4"] = true, ["4r"] = true, ["6"] = true, ["7"] = true, ["8"] = true,
  ["9"] = true, ["10"] = true, ["10i"] = true }
local CONTENT = { ["1p"] = true, ["2p"] = true, ["3"] = true, ["5"] = true, ["4p"] = true }

local home, by_id = E.home, E.by_id

-- The host forwarding IPv4 with no iptables (a router-like host, where
-- Docker's --internal alone would leak): the engine's namespace is made to
-- forward for one run, and put back however the run ends. Only on the plain
-- engine, as root, in a namespace that does not forward already.
local can_forward = cork.core.uid() == 0 and os.getenv("CORK_DOCKERD_SHAPE") ~= "iptables"
  and cork.fs.read("/proc/sys/net/ipv4/ip_forward"):match("%d") == "0"
local function forwarding(fn, ...)
  if not can_forward then return fn(...) end
  local function forward(v) local f = assert(io.open("/proc/sys/net/ipv4/ip_forward", "w")); f:write(v); f:close() end
  forward("1\n")
  local res = table.pack(pcall(fn, ...))
  forward("0\n")
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

-- 1. the stock docker recipe and the stand-in bundle: everything holds, on
--    the plain engine with the host forwarding (so that the seal alone holds
--    what test 2 shows leaking without it) -----------------------------------
do
  local h = home("escape-ok")
  local r = forwarding(R.cork, h, { "run", "escape-suite" }, nil, 300)
  local res = R.find(r.events, { event = "escape_result" })[1] or {}
  local at = by_id(r.events)
  T.is(r.status, 0, "cork run escape-suite: exit 0", r.stderr)
  for id in pairs(NETWORK) do
    local e = at[id] or {}
    T.is(e.verdict, "blocked", ("attack %s (%s): blocked"):format(id, e.name or "?"),
      table.concat(e.evidence or {}, "; "))
    T.is(e.layer, "network", ("attack %s is a network-layer attack"):format(id))
  end
  for id in pairs(CONTENT) do
    T.is((at[id] or {}).verdict, "not applicable: stand-in bundle", ("attack %s: not applicable: stand-in bundle"):format(id))
  end
  T.is(res.escaped, 0, "escape_result: nothing escaped")
  T.is(res.errors, 0, "escape_result: every attack ran")
  T.is(res.not_applicable, 5, "escape_result: 5 not applicable (content layer)")
  T.is(#(res.left or { "?" }), 0, "the suite found nothing left behind")
  T.ok(not r.stdout:find("cork-escape-egress-", 1, true) and not r.stderr:find("cork-escape-egress-", 1, true),
    "the planted egress token is never printed")
  T.ok(res.neighbour_slug and res.neighbour_slug ~= res.slug, ("a second bottle was launched (%s)"):format(tostring(res.neighbour_slug)))
  T.is(leftovers(h, res.slug, res.neighbour_slug), "", "nothing left of either bottle: containers, networks, state, host canaries")
  local said = {}
  for _, e in ipairs(R.find(r.events, { event = "info" })) do said[#said + 1] = e.msg or "" end
  said = table.concat(said, "\n")
  T.like(said, "canary dns: container [^ ]+ on 203%.0%.113%.%d+:8080", "the canary resolver is on a TEST-NET-3 address")
  T.like(said, "canary neighbour_bundle: the second bottle's bundle cork%-" .. (res.neighbour_slug or "?"):gsub("%-", "%%-")
    .. "%-bundle %(%d+%.%d+%.%d+%.%d+:8888 ", "attack 8's outside check: the second bottle's bundle, each address and port")
  local steps = {}
  for _, e in ipairs(R.find(r.events, { event = "step" })) do steps[#steps + 1] = e.name or e.step end
  T.like(table.concat(steps, " "), "escape%-images escape%-launch network .* seal provision escape%-launch%-neighbour network .* seal provision escape%-canaries escape%-attacks escape%-teardown",
    "the steps, in order")
end

-- 2. a weakened bottle: the seal undone by a user recipe -------------------
do
  local h = home("escape-weak")
  h.env.CORK_PATH = os.getenv("CORK_ROOT") .. "/tests/fixtures/escape"
  local r = R.cork(h, { "run", "escape-suite", "--recipe", "docker-unsealed" }, nil, 300)
  local res = R.find(r.events, { event = "escape_result" })[1] or {}
  local at = by_id(r.events)
  T.is(r.status, 1, "the weakened bottle: exit 1", r.stderr)
  T.ok((res.escaped or 0) >= 1, ("escape_result counts the escape (%s)"):format(tostring(res.escaped)))
  local e7 = at["7"] or {}
  T.is(e7.verdict, "escaped", "attack 7 (the host) escaped")
  local ev = table.concat(e7.evidence or {}, "; ")
  T.like(ev, "canary host_gateway %(%d+%.%d+%.%d+%.%d+:%d+%) logged: ", "with the outside canary's evidence: " .. ev)
  T.like(ev, "the agent: %d+%.%d+%.%d+%.%d+:%d+ answered: HTTP/", "and the agent's own")
  -- Attacks 4 and 8 with the seal undone, as this engine has it: the plain
  -- engine does not forward (a name Docker's embedded DNS forwards leaves
  -- from the agent's namespace and dies at the host), the iptables one drops
  -- what leaves an internal network. Either way the canaries saw nothing.
  T.is((at["4"] or {}).verdict, "blocked", "unsealed, attack 4 (DNS through Docker's embedded DNS): blocked by this engine",
    table.concat((at["4"] or {}).evidence or {}, "; "))
  T.is((at["8"] or {}).verdict, "blocked", "unsealed, attack 8 (the second bottle's bundle): blocked by this engine",
    table.concat((at["8"] or {}).evidence or {}, "; "))
  T.is(leftovers(h, res.slug, res.neighbour_slug), "", "nothing left after a failing run either")
  -- For a human, and on the plain engine with the host forwarding IPv4 (an
  -- engine without iptables on a router-like host): attack 4 escapes through
  -- Docker's embedded DNS alone (the agent asks 127.0.0.11 only; the canary
  -- resolver, its upstream, receives the forwarded query), and attack 8
  -- reaches the second bottle's bundle. Forwarding is put back however this ends.
  local human = forwarding(cork.proc.run, { R.bin, "run", "escape-suite", "--recipe", "docker-unsealed" }, { env = h.env, timeout = 300 })
  T.is(human.status, 1, "for a human: exit 1 too")
  T.like(human.stderr, "attack 7 %(the host[^)]*%): ESCAPED: canary host_gateway", "says which attack escaped, with evidence")
  T.like(human.stderr, "the bottle did NOT hold: %d+ attack%(s%) escaped", "and the summary")
  if can_forward then
    T.like(human.stderr, "attack 4 %(DNS exfiltration through the agent's own resolvers[^\n]*%): ESCAPED: canary resolver "
      .. "%(203%.0%.113%.%d+:53%) received %d+ packet%(s%)\n",
      "host forwarding: attack 4 escaped through Docker's embedded DNS, seen by the canary resolver alone")
    T.like(human.stderr, "attack 8 %(neighbours[^\n]*%): ESCAPED: canary neighbour_bundle %([^)]*%) received %d+ packet%(s%)",
      "host forwarding: attack 8 reached the second bottle's bundle, seen from its counters")
    T.like(human.stderr, "attack 10i %(ICMP echo[^\n]*%): ESCAPED: canary neighbour %([^)]*%) received %d+ packet%(s%)",
      "host forwarding: attack 10i's ICMP (a raw socket beside the agent) reached the neighbour, seen from its counter")
  else
    T.skip("the forwarding case: needs root, the plain engine and a host namespace that does not forward", 3)
  end
  T.ok(not human.stderr:find("attack 4 [^\n]*cork%-escape%-agent%-"), "the planted secret is not in attack 4's evidence")
end

-- 3. usage (the smolmachines backend: test_escape_suite_smolmachines.lua) --
do
  local h = home("escape-usage")
  local r = cork.proc.run({ R.bin, "run", "escape-suite", "--backend", "nosuch" }, { env = h.env })
  T.is(r.status, 2, "--backend nosuch: a usage error")
  T.like(r.stderr, "unknown backend 'nosuch' %(docker, smolmachines%)", "names the backends")
end

s:close()
H.no_leaks(T, d, before)
T.done()
