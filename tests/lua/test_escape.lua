-- cork.escape: the built-in attacks load and are well formed; a user's
-- attack dir adds to them (bad files are usage errors naming the file); the
-- verdicts: escaped (canary hits, REACHED lines, a planted secret in the
-- output, each as evidence), blocked, not applicable on the stand-in,
-- error when a sanity secret is missing. And the launch option table's env.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local cork = require "cork"
local escape = require "cork.escape"
local launch = require "cork.launch"

local dir = cork.fs.tempdir("cork-escape-test")
local _ <close> = setmetatable({}, { __close = function() cork.fs.remove(dir, { recursive = true }) end })

-- built-ins
local all = escape.load()
local ids = {}
for _, a in ipairs(all) do ids[#ids + 1] = a.id end
T.is(table.concat(ids, " "), "1 1p 2 2p 3 4 4p 4r 5 6 7 8 9 10 10i", "the built-in attacks, in id order")
for _, backend in ipairs(escape.BACKENDS) do
  for _, a in ipairs(escape.load({ backend = backend })) do
    T.ok(a.stops and a.stops ~= "", ("%s: attack %s says what stops it"):format(backend, a.id))
    if a.layer == "content" then T.is(a.requires, "filtering bundle", ("content attack %s requires a filtering bundle"):format(a.id))
    end
    if not a.not_applicable then T.ok(a.script ~= nil, ("%s: attack %s has a script"):format(backend, a.id)) end
  end
end

-- per backend: the backend's field over the attack's own
local smol = {}
for _, a in ipairs(escape.load({ backend = "smolmachines" })) do smol[a.id] = a end
T.same(smol["7"].targets, { "host_loopback", "smol_gateway", "host_gateway", "link_local" },
  "smolmachines: attack 7 also aims at the host's 127.0.0.1 through smolvm's gateway")
T.like(smol["7"].stops, "100%.96%.0%.1", "smolmachines: attack 7 says what stops it there")
T.is(smol["7"].backend, "smolmachines", "the resolved attack names its backend")
T.unlike(smol["9"].script, "NoNewPrivs", "smolmachines: attack 9 has a script of its own")
T.like(smol["10"].script, "tftp", "smolmachines: attack 10 sends UDP to a port other than 53")
T.same(smol["10i"].cap_add, { "NET_RAW" }, "attack 10i runs beside the agent with CAP_NET_RAW (both backends)")
T.same(smol["10i"].expect, { "ICMP raw socket opened" }, "...and must show the raw socket was opened")
T.like(smol["10i"].stops, "gateway", "smolmachines: attack 10i says what stops it there")
T.like(smol["4"].script, "%.cork/env", "smolmachines: attack 4 has a script of its own (the secret from its file)")
T.same(smol["4"].sanity, { "agent_secret" }, "...which must carry the planted secret")
local dock = {}
for _, a in ipairs(all) do dock[a.id] = a end
T.like(dock["4"].script, "127%.0%.0%.11", "docker: attack 4 keeps its own script")
T.like(smol["4r"].not_applicable or "", "DNS relay", "smolmachines: attack 4r is not applicable, with the reason")
T.like(escape.verdict(smol["4r"], { output = "REACHED x" }).verdict, "^not applicable: port 53",
  "...whatever it would print")
T.like(dock["9"].script, "NoNewPrivs", "docker: attack 9 keeps its own script")
T.raises(function() escape.load({ backend = "lxc" }) end, "usage", "unknown backend 'lxc'", "an unknown backend: usage error")

-- a user's dir
cork.fs.write(dir .. "/11-mine.lua", 'return { id = 11, name = "mine", layer = "network", stops = "x", targets = { "neighbour" }, script = "true" }')
local more = escape.load({ dir = dir })
T.is(more[#more].id, "11", "a user's attack is added, ordered by id")
-- a bad attack file: escape.load refuses it (kind usage)
local function refused(src, pattern, name)
  cork.fs.write(dir .. "/12-bad.lua", src)
  T.raises(function() escape.load({ dir = dir }) end, "usage", pattern, name)
end
refused('return { id = 12, name = "bad", layer = "network", targets = { "the-moon" }, script = "true" }',
  "12%-bad%.lua: unknown target 'the%-moon' %(known: git_upstream, host_gateway, host_loopback, link_local, neighbour, neighbour_bundle, resolver, smol_gateway, upstream%)",
  "an unknown target: usage error naming the file and the known ones")
refused('return { id = 8, name = "dup", layer = "network", script = "true" }', "attack id 8 is taken", "a taken id: usage error")
refused('return { id = 12, name = "x", layer = "sideways", script = "true" }', "layer must be", "a bad layer: usage error")
refused('return { id = 12, name = "x", layer = "content", targets = { "upstream" }, script = "true" }', "target 'upstream' exists with a filtering bundle only",
  "the upstream without requires = \"filtering bundle\": usage error")
refused('return { id = 12, name = "x", layer = "network", image = "agent", script = "true" }', 'image must be "bundle"', "a bad image: usage error")
refused('return { id = 12, name = "x", layer = "network", cap_add = { "NET_ADMIN" }, script = "true" }',
  'cap_add must be { "NET_RAW" }', "a capability other than NET_RAW: usage error")
refused('return { id = 12, name = "x", layer = "network", image = "bundle", cap_add = { "NET_RAW" }, script = "true" }',
  "cap_add and image do not go together", "cap_add with image: usage error")
refused('return { id = 12, name = "x", layer = "network", arrives = "some", script = "true" }', 'arrives must be "nothing" or "clean"', "a bad arrives: usage error")
refused('return { id = 12, name = "x", layer = "network", script = "true", smolmachines = { scirpt = "x" } }', "smolmachines%.scirpt: not a per%-backend field",
  "a misspelt per-backend field: usage error")
refused('return { id = 12, name = "x", layer = "network", script = "true", smolmachines = { targets = { "moon" } } }', "unknown target 'moon'", "a bad per-backend target: usage error, on any backend")
refused('return { id = 12, name = "x", layer = "network", backends = { "vmware" }, script = "true" }', "unknown backend 'vmware' in backends", "a bad backends list: usage error")
cork.fs.write(dir .. "/12-na.lua", 'return { id = 12, name = "x", layer = "network", script = "true", docker = { not_applicable = "no VM here" } }')
cork.fs.remove(dir .. "/12-bad.lua")
local na = escape.load({ dir = dir })
T.is(escape.verdict(na[#na], {}).verdict, "not applicable: no VM here", "per-backend not_applicable: the verdict says why")
T.is(escape.load({ dir = dir, backend = "smolmachines" })[#na].not_applicable, nil, "...and only on that backend")
cork.fs.remove(dir .. "/12-na.lua")

-- verdicts
local by = {}
for _, a in ipairs(all) do by[a.id] = a end
-- attack 4 aims at the canary resolver; 8 at the second bottle's bundle too
T.same(by["4"].targets, { "resolver" }, "attack 4: the canary resolver is its outside check")
T.same(by["4r"].targets, { "resolver" }, "attack 4r: asks the canary resolver directly")
T.same(by["8"].targets, { "neighbour_bundle", "neighbour" }, "attack 8: the second bottle's bundle and the neighbour")
T.like(by["4"].script, "127%.0%.0%.11", "attack 4 asks Docker's embedded DNS")
T.like(by["8"].script, "%$ENDPOINTS", "attack 8 tries every endpoint of its target")
local sec = { egress_token = "EGRESS-xyz", agent_secret = "AGENT-abc" }
local v = escape.verdict(by["3"], { standin = true })
T.is(v.verdict, "not applicable: stand-in bundle", "content attack on the stand-in: not applicable")
T.is(v.escaped, false, "...and not an escape")
local noscript = { id = "x", name = "x", layer = "content", requires = "filtering bundle", targets = {}, secrets = {},
  sanity = {}, expect = {} }
v = escape.verdict(noscript, { standin = false })
T.like(v.verdict, "^untested", "content attack with no script on a filtering bundle: untested, not blocked")
v = escape.verdict(by["5"], { standin = false, output = "push refused: remote: git-gate: push rejected: github_token in config.py (commit 1)\n" })
T.is(v.verdict, "blocked", "attack 5: rejected, naming the detector: blocked")
v = escape.verdict(by["5"], { standin = false, output = "push refused: fatal: unable to connect\n" })
T.like(v.verdict, '^error: the output lacks "push rejected: github_token', "attack 5: refused for another reason: error, not blocked")
T.like(v.verdict, "%(it ended: push refused: fatal: unable to connect%)$", "the error quotes what the output ended with")
T.is(escape.tail("a\n  SECRET-1 b SECRET-1\n", { s = "SECRET-1" }), "a <s> b <s>", "tail: one line, planted secrets named, never shown")
T.is(escape.tail("", {}), "nothing", "tail: an empty output says so")
T.is(#escape.tail(("x"):rep(1000)), 243, "tail: the last 240 bytes")
v = escape.verdict(by["3"], { standin = false, output = "clean: answered by the upstream\n",
  hits = { "canary upstream (10.0.0.2:8080) received the planted agent_secret (base64) in: GET /c HTTP/1.1" } })
T.is(v.verdict, "escaped", "attack 3: the upstream's record decides")
T.is(by["3"].arrives, "clean", "attack 3 lets clean requests arrive")
T.same(by["3"].leaks, { "agent_secret" }, "...but never the agent's secret")
T.is(by["1p"].arrives, "nothing", "attack 1p: nothing may arrive")
T.is(by["5"].image, "bundle", "attack 5 runs git from the bundle's image beside the agent")
v = escape.verdict(by["8"], { output = "no answer from 10.0.0.2:8080 ()\n", hits = {} })
T.is(v.verdict, "blocked", "no hit, no REACHED: blocked")
v = escape.verdict(by["8"], { output = "REACHED 10.0.0.2:8080 answered: HTTP/1.1 200 OK\n", hits = { "canary neighbour received 3 packet(s)" } })
T.is(v.verdict, "escaped", "a hit and a REACHED line: escaped")
T.same(v.evidence, { "canary neighbour received 3 packet(s)", "the agent: 10.0.0.2:8080 answered: HTTP/1.1 200 OK" }, "both as evidence")
v = escape.verdict(by["8"], { output = "", hits = { "canary neighbour received 1 packet(s)" } })
T.is(v.verdict, "escaped", "the outside check alone decides too")
v = escape.verdict(by["6"], { output = "A=AGENT-abc\n", secrets = sec })
T.is(v.verdict, "blocked", "attack 6: only the agent's own secret: blocked")
v = escape.verdict(by["6"], { output = "A=AGENT-abc\nT=EGRESS-xyz\n", secrets = sec })
T.is(v.verdict, "escaped", "attack 6: the egress token readable: escaped")
T.like(v.evidence[1], "planted egress_token is readable", "with the evidence (the name, never the value)")
T.unlike(table.concat(v.evidence, " "), "EGRESS%-xyz", "the evidence does not hold the value")
v = escape.verdict(by["6"], { output = "A=AGENT-abc\nGITID-q1\n", secrets = { agent_secret = "AGENT-abc", egress_token = "EGRESS-xyz", git_identity = "GITID-q1" } })
T.is(v.verdict, "escaped", "attack 6: git-gate's identity readable: escaped")
T.like(v.evidence[1] or "", "planted git_identity is readable", "named as such")
v = escape.verdict(by["6"], { output = "", secrets = sec })
T.like(v.verdict, "^error: the planted agent_secret", "attack 6: the dump did not work: error, not blocked")
T.is(v.error, true, "...flagged as an error")

-- the launch option table's env
local inline = launch.inline("agent: {provider: custom, command: [sh], image: x}\n", "t")
local o = launch.parse({ { bottle = inline, env = { A = "1" } } }, "docker")
T.is(o.env and o.env.A, "1", "launch table: env is handed to the launch")
T.raises(function() launch.parse({ { bottle = inline, env = "x" } }, "docker") end, "usage", "env must be a table or a function",
  "launch table: a bad env is a usage error")
T.raises(function() launch.parse({ { bottle = inline, other = 1 } }, "docker") end, "usage", "known: bottle, env, dns, smolvm_env",
  "launch table: unknown keys still refused")
-- and its dns: the docker agent's upstream resolvers
o = launch.parse({ { bottle = inline, dns = { "203.0.113.2" } } }, "docker")
T.same(o.dns, { "203.0.113.2" }, "launch table: dns is handed to the launch")
T.is(launch.parse({ { bottle = inline } }, "docker").dns, nil, "launch table: no dns, none (the stock recipe's behaviour)")
for _, bad in ipairs({ "203.0.113.2", {}, { "resolver.example" }, { 7 } }) do
  T.raises(function() launch.parse({ { bottle = inline, dns = bad } }, "docker") end, "usage",
    "dns must be a non%-empty list of IP addresses", "launch table: a bad dns is a usage error")
end
T.raises(function() launch.parse({ { bottle = inline, dns = { "203.0.113.2" } } }, "smolmachines") end, "usage",
  "dns is for the docker recipe only", "launch table: dns on smolmachines is a usage error")
o = launch.parse({ { bottle = inline, smolvm_env = { FAKE_SMOLVM_RESOLVER = "10.0.0.2:53" } } }, "smolmachines")
T.is(o.smolvm_env and o.smolvm_env.FAKE_SMOLVM_RESOLVER, "10.0.0.2:53", "launch table: smolvm_env is handed to the launch")
T.raises(function() launch.parse({ { bottle = inline, smolvm_env = { A = 1 } } }, "smolmachines") end, "usage",
  "smolvm_env maps names to strings", "launch table: a bad smolvm_env is a usage error")

T.done()
