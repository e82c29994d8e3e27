-- bundle: build cork's real bundle image (cork-bundle:latest) from Debian packages
--
-- usage: cork run bundle [--from-apt] [--name REF] [--force] [--pipelock FILE]
--                        [--cache DIR] [--mirror URL]
--
-- The image every bottle uses by default (docs/bundle.md): the filter in
-- pipelock's place, egress, git-gate and supervise, made from one package
-- list (lua/cork/assets/bundle/packages) in one of two ways:
--   * the Engine API's build endpoint, FROM debian:bookworm-slim, for
--     engines that reach a registry (the default);
--   * --from-apt, for engines with none: debootstrap and apt from the
--     host's Debian archive make a root filesystem, cached under
--     $XDG_CACHE_HOME/cork/bundle (--cache DIR, CORK_BUNDLE_CACHE), which is
--     imported with the daemons (needs root for debootstrap and chroot).
-- The image carries a content label (cork.bundle.version): an unchanged
-- build is reused and the run takes a second. --force rebuilds.
-- --pipelock FILE puts an operator's own pipelock binary in the image, which
-- then runs it in the filter's place.
-- A terminal shows one progress line; --json gives bundle_progress events and
-- a final bundle event {image, version, reused, seconds, size}.
local cork = require "cork"
local log = require "cork.log"
local args = require "cork.args"
local bundle = require "cork.bundle"

local USAGE = "cork run bundle [--from-apt] [--name REF] [--force] [--pipelock FILE] [--cache DIR] [--mirror URL]"
local opts, rest = args.parse({ ... }, { from_apt = "boolean", name = "string", force = "boolean",
  pipelock = "string", cache = "string", mirror = "string", help = "boolean" }, { usage = USAGE })
if opts.help then print("usage: " .. USAGE); return 0 end
if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], USAGE)) end

local d = require("cork.docker").connect()
local o = { name = opts.name, force = opts.force, pipelock = opts.pipelock, cache = opts.cache, mirror = opts.mirror }
log.step("bundle", { detail = ("building %s (%s)"):format(opts.name or bundle.IMAGE,
  opts.from_apt and "debootstrap + apt" or "Engine API build") })
local r
if opts.from_apt then
  r = bundle.from_apt(d, o)
else
  r = bundle.build(d, o)
end
log.event("bundle", { image = r.image, version = r.version, reused = r.reused, seconds = r.seconds, size = r.size })
if not cork.core.settings().json then print(r.image) end
return 0
