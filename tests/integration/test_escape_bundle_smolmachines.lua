-- `cork run escape-suite --backend smolmachines` against the private engine
-- with the real bundle (cork-bundle:latest, built by bundle.from_apt from
-- the cached root filesystem) and the smolvm stand-in (tests/fakes/smolvm:
-- its guests are chroots in a network namespace of their own behind
-- tests/fakes/smolvm-gateway). The bundle is a container on this backend
-- too, so the suite's upstream joins its networks as on docker, and the
-- agent in the VM reaches the bundle through the gateway 100.96.0.1 to the
-- ports published on its alias. Every attack runs and is blocked, the
-- content-layer ones included (1p, 2p, 3 against the suite's upstream, 5's
-- push with git from the bundle image's files inside the VM as the agent's
-- uid, 6's echo through the route), and 10i's ICMP is sent from the VM by
-- root with a raw socket; exit 0, nothing escaped, no errors, nothing left
-- behind, no planted secret printed. Both engine shapes (tests/run-all).
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
local s <close> = cork.scope("test_escape_bundle_smolmachines")
s:defer(function() H.sweep(d) end)
local E = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/escape_test.lua")(d, R, s)

-- each run its own slice of the alias pool (engineers' runs share this host)
local K = 1 + (cork.core.pid() + 31) % 250
local h = E.smol_home("escape-bundle-smol", K, "claude")
local function leftovers(slug) return E.smol_left(h, K, { locks = true, temp = true }, slug) end

local t0 = cork.time()
local r = R.cork(h, { "run", "escape-suite", "--backend", "smolmachines", "--bundle-image", built.image,
  "--from", h.dir .. "/agent.smolmachine" }, nil, 600)
T.diag(("the suite against the real bundle on smolmachines: %.1f s"):format(cork.time() - t0))
local res = R.find(r.events, { event = "escape_result" })[1] or {}
local at = E.by_id(r.events)
T.is(r.status, 0, "cork run escape-suite --backend smolmachines --bundle-image " .. built.image .. ": exit 0", r.stderr)
T.is(res.backend, "smolmachines", "escape_result: the backend")
for _, id in ipairs({ "1", "1p", "2", "2p", "3", "4", "4p", "5", "6", "7", "8", "9", "10", "10i" }) do
  local e = at[id] or {}
  T.is(e.verdict, "blocked", ("attack %s (%s): blocked"):format(id, e.name or "?"),
    table.concat(e.evidence or {}, "; ") .. (e.output or ""))
end
T.like((at["4r"] or {}).verdict or "", "^not applicable: port 53 to any address goes to smolvm's DNS relay",
  "attack 4r: not applicable (smolvm's DNS relay; attack 4 asks there), the only one")
for id, e in pairs(at) do
  if e.verdict ~= "blocked" and id ~= "4r" then T.ok(false, ("attack %s: %s"):format(id, e.verdict)) end
end
T.is(res.not_applicable, 1, "escape_result: only 4r is \"not applicable\" with the real bundle")
T.is(res.escaped, 0, "escape_result: nothing escaped")
T.is(res.errors, 0, "escape_result: every attack ran as meant")
T.is(#(res.left or { "?" }), 0, "the suite found nothing left behind")
T.like(r.stdout, "upstream cork%-escape%-%w+%-upstream on [%d.]+ .-a clean push reached it",
  "the suite's upstream records, and git-gate reaches it from inside the VM")
local said = {}
for _, e in ipairs(r.events) do if e.msg then said[#said + 1] = e.msg end end
said = table.concat(said, "\n")
T.like(said, "the bundle image's files in the VM at /opt/cork%-escape/root %(for scripts beside the agent, as uid 1000%)",
  "git runs in the VM from the bundle image's files, as the agent's uid")
local all = r.stdout .. r.stderr
T.ok(not all:find("cork-escape-egress-", 1, true), "the planted egress token is never printed")
T.ok(not all:find("cork-escape-gitid-", 1, true), "nor the git identity")
T.ok(not all:find("glpat%-%w%w%w%w%w%w%w%w%w%w%w%w"), "nor the agent's key-shaped secret")
T.is(leftovers(res.slug), "", "nothing left: containers, networks, VMs, gateways, aliases, guards, state, canaries")

s:close()
H.no_leaks(T, d, before)
T.done()
