-- standin: build the stand-in bundle and agent images (busybox, no registry) for a first bottle
--
-- usage: cork run standin [--bottle NAME] [--registry] [--force]
--
--   --bottle NAME  also write a bottle NAME that uses both stand-ins, as
--                  $XDG_CONFIG_HOME/cork/bottles/NAME.yaml (never over an
--                  existing file)
--   --registry     also build cork-standin-registry:latest, the registry
--                  `cork run prepare --registry-image` needs on smolvm
--                  before 1.9 (from Debian's docker-registry)
--   --force        build again even when an image is up to date
--
-- Builds cork-standin-bundle:latest and cork-standin-agent:latest in the
-- Docker engine from Debian's busybox-static (no registry, no Dockerfile).
-- They let a bottle launch end to end where no real images are at hand: the
-- agent is a busybox shell, and the bundle honours the bundle contract's
-- shape but FILTERS NOTHING (docs/bundle.md, "The stand-in bundle"). Use
-- them to learn cork, not to contain an agent: `cork run bundle` builds the
-- real bundle. docs/getting-started.md walks from here to a running bottle.
local cork = require "cork"
local log = require "cork.log"
local args = require "cork.args"
local standin = require "cork.standin"
local manifest = require "cork.manifest"

local USAGE = "cork run standin [--bottle NAME] [--registry] [--force]"
local opts, rest = args.parse({ ... }, { bottle = "string", registry = "boolean", force = "boolean",
  help = "boolean" }, { usage = USAGE })
if opts.help then print("usage: " .. USAGE); return 0 end
if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], USAGE)) end

-- The bottle file is checked first, so a name that is taken fails before
-- any image is built.
local path
if opts.bottle then
  if not opts.bottle:find("^[A-Za-z0-9][A-Za-z0-9._-]*$") then
    cork.error("usage", ("bottle name %q is not a plain name"):format(opts.bottle))
  end
  local dir = manifest.dirs().bottles[1]
  path = dir .. "/" .. opts.bottle .. ".yaml"
  if cork.fs.exists(path) then
    cork.error("exists", ("%s exists: pick another --bottle name (cork never overwrites a bottle)"):format(path),
      { path = path })
  end
end

local docker = require("cork.docker").connect()
log.step("images", { detail = "stand-in images from busybox-static" })
local bundle, agent = standin.images(docker, { force = opts.force })
log.event("standin_image", { role = "bundle", image = bundle })
log.event("standin_image", { role = "agent", image = agent })
local registry
if opts.registry then
  registry = standin.registry_image(docker, { force = opts.force })
  log.event("standin_image", { role = "registry", image = registry })
end

if path then
  cork.fs.mkdir(path:match("^(.*)/[^/]*$"), "0700")
  cork.fs.write(path, ([[
# A first bottle on cork's stand-in images (`cork run standin`): the agent is
# a busybox shell, and the bundle FILTERS NOTHING. For learning cork only:
# drop the bundle block to use cork's bundle (`cork run bundle`), and see
# docs/getting-started.md for your own agent image.
agent:
  provider: custom
  image: %s
  command: [sh]
bundle:
  image: %s
allowlist: [example.com]
]]):format(agent, bundle), { mode = "0600" })
  log.event("bottle_written", { bottle = opts.bottle, path = path })
end

if not cork.core.settings().json then
  print(("bundle    %s  (filters nothing)"):format(bundle))
  print(("agent     %s  (a busybox shell)"):format(agent))
  if registry then print(("registry  %s  (cork run prepare --registry-image %s)"):format(registry, registry)) end
  if path then
    print(("bottle    %s"):format(path))
    print(("next:     cork plan --bottle %s; cork run docker --bottle %s"):format(opts.bottle, opts.bottle))
  end
end
return 0
