-- Bundle subnets against a real engine: the plan's /24 avoids every subnet
-- Docker already has, Docker accepts the one it picks, and `cork plan` says
-- it checked. Nothing is left behind.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local plan = require "cork.plan"

if not os.getenv("DOCKER_HOST") then
  T.skip_all("DOCKER_HOST is not set (run through tests/run-all, which starts a private engine)")
end
local docker = require "cork.docker"
local ok, d = pcall(docker.connect)
if not ok then T.skip_all("no Docker engine: " .. tostring(cork.is_error(d) and d.message or d)) end

local tag = "plan-" .. cork.core.pid()
local labels = {["cork.test"] = tag}
local function ours()
  local n = 0
  for _, net in ipairs(d:networks()) do
    if type(net.Labels) == "table" and net.Labels["cork.test"] == tag then n = n + 1 end
  end
  return n
end

do
  local s <close> = cork.scope("test_plan_subnet")
  local slug = "subnet-" .. plan.random_suffix(6)
  local first = plan.pick_subnet(slug, plan.docker_subnets(d))
  T.is(first.probes, 1, "the derived /24 is free on a fresh engine")
  local n1 = d:network_create{name = "corktest-" .. tag .. "-a", subnet = first.subnet, gateway = first.gateway,
    labels = labels}
  s:defer(function() d:network_remove(n1.id) end)
  T.ok(n1.id, "Docker accepts the derived subnet")
  local seen = plan.docker_subnets(d)
  local found = false
  for _, sn in ipairs(seen) do if sn == first.subnet then found = true end end
  T.ok(found, "docker_subnets sees the new network's subnet")
  local second = plan.pick_subnet(slug, seen)
  T.isnt(second.subnet, first.subnet, "same slug, subnet taken: another one")
  T.is(second.probes, 2, "the next /24 of the pool")
  local n2 = d:network_create{name = "corktest-" .. tag .. "-b", subnet = second.subnet, gateway = second.gateway,
    labels = labels}
  s:defer(function() d:network_remove(n2.id) end)
  T.ok(n2.id, "Docker accepts the second subnet (no overlap)")
  -- taking the first one again is what the plan avoids: Docker refuses it
  local ok3, e3 = pcall(d.network_create, d, {name = "corktest-" .. tag .. "-c", subnet = first.subnet,
    labels = labels})
  if ok3 then s:defer(function() d:network_remove(e3.id) end) end
  T.ok(not ok3, "Docker refuses an overlapping subnet", ok3 and "created" or nil)

  -- cork plan against this engine checks the subnets
  local F = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/bottle_fixtures.lua")
  local fx <close> = F.setup()
  local r = cork.proc.run({os.getenv("CORK_BIN"), "--json", "plan", "--bottle", "minimal"},
    {env = {HOME = fx.home, XDG_CONFIG_HOME = fx.home .. "/.config", DOCKER_HOST = os.getenv("DOCKER_HOST")},
     timeout = 30})
  T.is(r.status, 0, "cork plan exits 0", r.stderr)
  local ev = cork.json.decode(r.stdout:match("[^\n]*\"event\":\"plan\"[^\n]*") or "{}")
  local net = ev.plan and ev.plan.network or {}
  T.is(net.checked, true, "cork plan checked Docker's subnets")
  local clash = false
  for _, sn in ipairs(plan.docker_subnets(d)) do if plan.overlaps(sn, net.subnet or "") then clash = true end end
  T.ok(not clash, "its subnet overlaps none of Docker's")
end
T.is(ours(), 0, "no network left behind")
d:close()
T.done()
