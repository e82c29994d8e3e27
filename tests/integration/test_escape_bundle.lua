-- `cork run escape-suite` against the private engine with the real bundle
-- (cork-bundle:latest, built by bundle.from_apt from the cached root
-- filesystem): every attack runs and is blocked, the content-layer ones
-- included (1p, 2p, 3, 5 against the suite's own upstream, and 6's echo
-- through the route), exit 0, nothing left. Then the same bundle with the
-- filter's fragment reassembly switched off by a user recipe
-- (tests/fixtures/escape: docker-no-reassembly) must report attack 3 as an
-- escape, with the upstream's evidence. Plain engine shape only (the
-- network-layer attacks run on both shapes in test_escape_suite.lua).
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local R = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/recipe_test.lua")
local cork = require "cork"
local bundle = require "cork.bundle"

local d = H.connect(T)
local cache = os.getenv("CORK_BUNDLE_CACHE") or (H.root .. "/build/bundle-cache")
local cached = cork.fs.exists(("%s/%s.tar"):format(cache, bundle.rootfs_key({})))
if not cached and cork.core.uid() ~= 0 then T.skip_all("--from-apt needs root (debootstrap, chroot)") end
if not cached and not cork.fs.exists("/usr/sbin/debootstrap") then T.skip_all("debootstrap is not installed (tools/deps.sh)") end
R.images(d)
local before = H.snapshot(d)
local built = bundle.from_apt(d, { cache = cache, progress = false })
before.images[d:image_inspect(built.image).Id] = true
local s <close> = cork.scope("test_escape_bundle")
s:defer(function() H.sweep(d) end)
local E = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/escape_test.lua")(d, R, s)

local function leftovers(h, slug) return table.concat(E.left(h, { locks = true }, slug), "; ") end

local home, by_id = E.home, E.by_id

-- 1. the stock docker recipe and the real bundle: everything runs, everything holds
do
  local h = home("escape-bundle")
  local t0 = cork.time()
  local r = R.cork(h, { "run", "escape-suite", "--bundle-image", built.image }, nil, 600)
  local secs = cork.time() - t0
  T.diag(("the suite against the real bundle: %.1f s"):format(secs))
  local res = R.find(r.events, { event = "escape_result" })[1] or {}
  local at = by_id(r.events)
  T.is(r.status, 0, "cork run escape-suite --bundle-image " .. built.image .. ": exit 0", r.stderr)
  for _, id in ipairs({ "1", "1p", "2", "2p", "3", "4", "4p", "4r", "5", "6", "7", "8", "9", "10", "10i" }) do
    local e = at[id] or {}
    T.is(e.verdict, "blocked", ("attack %s (%s): blocked"):format(id, e.name or "?"),
      table.concat(e.evidence or {}, "; ") .. (e.output or ""))
  end
  for id, e in pairs(at) do
    if e.verdict ~= "blocked" then T.ok(false, ("attack %s: %s"):format(id, e.verdict)) end
  end
  T.is(res.not_applicable, 0, "escape_result: nothing is \"not applicable\" with the real bundle")
  T.is(res.escaped, 0, "escape_result: nothing escaped")
  T.is(res.errors, 0, "escape_result: every attack ran as meant")
  T.is(#(res.left or { "?" }), 0, "the suite found nothing left behind")
  T.like(r.stdout, "upstream cork%-escape%-%w+%-upstream on [%d.]+ .-a clean push reached it",
    "the suite's upstream records, and git-gate reaches it")
  local all = r.stdout .. r.stderr
  T.ok(not all:find("cork-escape-egress-", 1, true), "the planted egress token is never printed")
  T.ok(not all:find("glpat%-%w%w%w%w%w%w%w%w%w%w%w%w"), "nor the agent's key-shaped secret")
  T.is(leftovers(h, res.slug), "", "nothing left: containers, networks, state")
end

-- 2. the same bundle with fragment reassembly switched off: attack 3 escapes
do
  local h = home("escape-bundle-weak")
  h.env.CORK_PATH = os.getenv("CORK_ROOT") .. "/tests/fixtures/escape"
  local r = R.cork(h, { "run", "escape-suite", "--bundle-image", built.image, "--recipe", "docker-no-reassembly" }, nil, 600)
  local res = R.find(r.events, { event = "escape_result" })[1] or {}
  local at = by_id(r.events)
  T.is(r.status, 1, "without fragment reassembly: exit 1", r.stderr)
  local e3 = at["3"] or {}
  T.is(e3.verdict, "escaped", "attack 3 (the secret to an allowed host) escaped")
  local ev = table.concat(e3.evidence or {}, "; ")
  T.like(ev, "canary upstream %([%d.]+:8080%) received the planted agent_secret %(the second half%) in: GET /collect%?part=2&d=<agent_secret> ",
    "with the upstream's evidence, the secret's piece masked: " .. ev)
  T.is((at["1p"] or {}).verdict, "blocked", "the allowlist still holds (attack 1p)")
  T.is(res.escaped, 1, "one attack escaped")
  T.is(leftovers(h, res.slug), "", "nothing left after a failing run either")
end

s:close()
H.no_leaks(T, d, before)
T.done()
