-- cork.bottle.inline and the launch option table (a recipe passes a bottle
-- held in memory; a command line cannot), and cork.standin's pure parts.
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local bottle = require "cork.bottle"
local standin = require "cork.standin"
local plan = require "cork.plan"

local TEXT = "agent: { provider: custom, image: a:1, command: [sh] }\nbundle: { image: b:1 }\n"

local b = bottle.inline(TEXT, "demo", "<demo>.yaml")
T.is(b.kind, "bottle", "inline: a bottle")
T.is(b.name, "demo", "named as given")
T.ok(b.inline, "marked inline")
T.same(b.chain, { "demo" }, "its chain is itself")
T.is(b.bundle.image, "b:1", "fields normalised as from a file")
local p = plan.build(b, nil, { suffix = "abc123" })
T.is(p.slug, "demo-abc123", "plan.build takes it")

T.raises(function() bottle.inline("agent: [", "x", "<x>.yaml") end, "manifest", "^<x>%.yaml:", "bad YAML: manifest error naming the label")
T.raises(function() bottle.inline("egress: { routes: 3 }\n", "x") end, "manifest", "<inline bottle x>%.yaml", "invalid bottle: manifest error")
T.raises(function() bottle.inline("extends: base\n", "x") end, "manifest", "cannot extend", "extends refused")
do
  -- bot-bottle's forms load inline too, each field cork cannot use a warning
  local log = require "cork.log"
  local warn, said = log.warn, {}
  log.warn = function(msg) said[#said + 1] = msg end
  local ok, bb = pcall(bottle.inline, "agent_provider: {template: codex, dockerfile: ./D}\n", "bb", "<bb>.yaml")
  log.warn = warn
  T.is(ok and bb.agent.provider, "codex", "inline: agent_provider.template")
  T.same(said, { "<bb>.yaml:1:35: agent_provider.dockerfile: cork does not build agent images; not used "
    .. "(give agent.image for docker, agent.from for smolmachines)" }, "inline: the warning is said")
end

local o = bottle.parse({ "--detach", { bottle = b } }, "docker")
T.is(o.inline_bottle, b, "parse: the table's bottle becomes opts.inline_bottle")
T.is(o.detach, true, "with the other options")
T.is(select(1, bottle.load(o)), b, "load returns it, reading no file")
T.raises(function() bottle.parse({ "--bottle", "dev", { bottle = b } }, "docker") end, "usage", "cannot be combined", "not with --bottle")
T.raises(function() bottle.parse({ { bottle = b, image = "x" } }, "docker") end, "usage", "unknown launch option table key 'image'", "unknown key")
T.raises(function() bottle.parse({ { bottle = { kind = "bottle", name = "evil" } } }, "docker") end, "usage", "bottle%.inline", "only inline bottles")
T.raises(function() bottle.parse({ 42 }, "docker") end, "usage", "argument 1 of the docker recipe is a number", "no other types")
T.raises(function() bottle.parse({ "--bottle", "../x" }, "docker"); bottle.load({ bottle = "../x" }) end, "usage", "not a plain name", "--bottle stays a plain name")

-- standin: the label is stable and names what the image is made of
local v1, v2 = standin.version("bundle"), standin.version("bundle")
T.is(v1, v2, "standin.version is stable")
T.like(v1, "^" .. standin.VERSION .. "%-%x+$", "VERSION-hash")
T.isnt(standin.version("agent"), v1, "bundle and agent differ")
T.raises(function() standin.busybox("/nonexistent/busybox") end, "not_found", "busybox%-static", "missing busybox names the package")
T.raises(function() standin.busybox("/bin/sh") end, "invalid", "statically linked", "a dynamic binary is refused")
T.done()
