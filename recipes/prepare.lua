-- prepare: pack an agent's container image into the .smolmachine the smolmachines recipe boots
--
-- usage: cork run prepare (--agent NAME | --bottle NAME | --image REF) [--force]
--                         [--registry-image REF]
--
-- The smolmachines flow starts from a packed VM artifact. This recipe makes
-- it from the agent's container image (agent.image, or the provider's
-- default; --image overrides) and caches it under
-- $XDG_CACHE_HOME/cork/smolmachines/ keyed by the image's ID, so a second
-- run with an unchanged image does nothing, and a rebuilt image is packed
-- again. `cork run smolmachines` finds the artifact there when the bottle
-- names none (agent.from, --from). Prints the artifact's path.
--
-- How the image reaches smolvm depends on the installed version (see
-- docs/smolvm.md): `pack create --image` takes registry references only, so
--   * smolvm 1.9 and later: a `docker save` archive of the image (from the
--     Engine API, no docker CLI) boots a throwaway machine
--     (`machine create --image ARCHIVE`), which is then packed
--     (`pack create --from-vm`) and deleted;
--   * older versions: the image is pushed to a throwaway registry container
--     on a loopback port (an image given by --registry-image or
--     CORK_REGISTRY_IMAGE, default registry:2, which cork cannot pull: it
--     must already be in the engine; `cork run standin --registry` makes
--     one from Debian's docker-registry), packed from there, and the
--     container and the tag removed. Such a smolvm cannot launch the result
--     (`cork run smolmachines` needs 1.9 or later), and prepare says so first.
-- Every resource is journalled as bottle "prepare-<id>" and registered on the
-- scope, so Ctrl-C, an error or `kill -9` plus `cork down` leaves nothing.
local cork = require "cork"
local log = require "cork.log"
local fs = require "cork.fs"
local args = require "cork.args"
local bottle = require "cork.bottle"
local journal = require "cork.journal"
local artifacts = require "cork.artifacts"
local providers = require "cork.providers"

local USAGE = "cork run prepare (--agent NAME | --bottle NAME | --image REF) [--force] [--registry-image REF]"
local opts, rest = args.parse({ ... }, { agent = "string", bottle = "string", image = "string",
  force = "boolean", registry_image = "string", help = "boolean" }, { usage = USAGE })
if opts.help then print("usage: " .. USAGE); return 0 end
if #rest > 0 then cork.error("usage", ("unexpected argument '%s'\nusage: %s"):format(rest[1], USAGE)) end
if not (opts.agent or opts.bottle or opts.image) then
  cork.error("usage", "prepare needs --agent NAME, --bottle NAME or --image REF\nusage: " .. USAGE)
end

-- 1. Which image: the agent's, as the bottle resolves its provider. Its ID
--    (a content digest, unlike a tag) is the cache key.
bottle.step("image", "finding the agent's image")
local image = opts.image
if not image then
  local b = bottle.load(opts)
  image = providers.resolve(b.agent).image
  if not image then
    cork.error("usage", ("bottle %s names no agent image (agent.image): set one, or pass --image REF")
      :format(b.name or opts.bottle or opts.agent))
  end
end
local docker = require("cork.docker").connect()
local okimg, info = pcall(docker.image_inspect, docker, image)
if not okimg then
  if cork.is_error(info, "not_found") then
    cork.error("not_found", ("agent image %s not found in the Docker engine: build or load it first (%s)")
      :format(image, require("cork.launch").image_hint("agent")), { image = image })
  end
  error(info, 0)
end
local id, key = info.Id, artifacts.key(info.Id)
local out = artifacts.path(id)
log.info(("%s is %s"):format(image, id:sub(1, 19)), { image = image, image_id = id })

-- 2. One builder per image at a time; an artifact already there is the
--    answer (a second prepare waits for the first, then finds it).
fs.mkdir(artifacts.root(), 448)
local lk <close> = fs.lock(artifacts.lock_path(id), { timeout = 1800 })
local function done(cached)
  log.event("prepared", { image = image, image_id = id, artifact = out, cached = cached })
  if not cork.core.settings().json then print(out) end
  return 0
end
if artifacts.find(id) and not opts.force then
  log.info(("%s is up to date"):format(out))
  return done(true)
end
-- under the lock, a half-packed artifact of this image is a killed run's
for _, f in ipairs(fs.list(artifacts.root())) do
  if f:sub(1, #key + 9) == key .. ".partial-" then fs.remove(artifacts.root() .. "/" .. f, { missing_ok = true }) end
end

local smol = bottle.smolvm({})
local caps = smol:capabilities()
if not caps.allowlist_enforced then
  -- said before any work: what this prepare makes cannot be launched here
  log.warn(("smolvm %s: `cork run smolmachines` refuses to launch on it (%s); packing anyway, for a smolvm "
    .. "of 1.9 or later%s"):format(caps.version or "?", caps.allowlist_reason or "unknown version",
    caps.pack_local_archive and "" or ", through a registry (--registry-image)"), { version = caps.version })
end
local slug = "prepare-" .. key:sub(1, 12)
local vm = "cork-" .. slug
local s <close> = cork.scope("prepare " .. slug)
local j = journal.open(slug, { backend = "prepare", image = image, image_id = id })
s:defer(journal.finish, slug)
-- the saved archive lives in the journal's 0700 state dir: whatever ends the
-- run (or `cork down` after a kill -9) removes it with the journal
local tmp = journal.dir(slug)
-- packed next to its final place, then renamed: a reader never sees half an artifact
local partial = ("%s/%s.partial-%d.smolmachine"):format(artifacts.root(), key, cork.core.pid())
s:defer(fs.remove, partial, { missing_ok = true })
-- (smolvm 1.x writes a packed executable beside it, which cork.smolvm removes)
s:defer(fs.remove, (partial:gsub("%.smolmachine$", "")), { missing_ok = true })
local method

if caps.pack_local_archive then
  method = "docker-save"
  -- 3. The image as a `docker save` archive, straight from the Engine API.
  bottle.step("save", ("saving %s"):format(image))
  local archive = tmp .. "/image.tar"
  -- streamed to the file (0600), never whole in memory: agent images run to GBs
  local function mib(n) return ("%.1f MiB"):format(n / 1048576) end
  local r = docker:request("GET", "/images/" .. id .. "/get", {
    timeout = 1800, output = archive,
    progress = function(n) log.info("saved " .. mib(n), { bytes = n }) end,
  })
  if r.bytes == 0 then
    cork.error("daemon", ("saving %s returned no archive"):format(image), { image = image })
  end
  log.info(("saved %s (%s)"):format(image, mib(r.bytes)), { bytes = r.bytes })

  -- 4. A throwaway machine boots from the archive (smolvm flattens it on
  --    first boot); packing that machine is how a local image becomes a
  --    .smolmachine.
  bottle.step("vm", ("machine %s from the archive"):format(vm))
  j:add("vm", vm)
  s:defer(bottle.remove.vm, smol, vm, j)
  smol:create(vm, { image = archive })
  smol:start(vm)
  smol:stop(vm)

  bottle.step("pack", ("packing %s"):format(vm))
  smol:pack({ from_vm = vm, output = partial })
else
  method = "registry"
  -- 3. This smolvm packs registry references only: serve the image from a
  --    throwaway registry on a loopback port.
  bottle.step("registry", "starting a throwaway registry")
  local reg = opts.registry_image or os.getenv("CORK_REGISTRY_IMAGE") or "registry:2"
  if not pcall(docker.image_inspect, docker, reg) then
    cork.error("not_found", ("smolvm %s packs registry references only, and the registry image %s that would "
      .. "serve %s is not in the Docker engine (cork pulls nothing): `cork run standin --registry` builds one "
      .. "from Debian's docker-registry, then pass --registry-image cork-standin-registry:latest (or set "
      .. "CORK_REGISTRY_IMAGE; see docs/smolvm.md); or use smolvm 1.9 or later, which packs a `docker save` "
      .. "archive, and which `cork run smolmachines` needs anyway")
      :format(caps.version, reg, image), { image = image, registry_image = reg })
  end
  -- its own bridge network: publishing needs one, and an engine may run
  -- without a default bridge (`--bridge none`, as the tests' engine does)
  local labels = { ["cork.slug"] = slug, ["cork.role"] = "registry" }
  local net = vm .. "-registry"
  j:add("network", net)
  s:defer(bottle.remove.network, docker, net, j)
  docker:network_create({ name = net, labels = labels })
  local name = vm .. "-registry"
  j:add("container", name, { role = "registry" })
  s:defer(bottle.remove.container, docker, name, j)
  docker:container_create({ name = name, image = reg, labels = labels, networks = { { name = net } },
    ports = { { container_port = 5000, host_ip = "127.0.0.1", host_port = "" } } })
  docker:container_start(name)
  local port = docker:host_port(name, 5000, "127.0.0.1")
  local repo = ("127.0.0.1:%d/cork-prepare/%s"):format(port, key:sub(1, 12))
  docker:request("POST", "/images/" .. id .. "/tag", { query = { repo = repo, tag = "latest" } })
  s:defer(function() pcall(docker.image_remove, docker, repo .. ":latest") end)

  -- 4. Push (the engine reaches 127.0.0.0/8 registries without TLS). The
  --    push answers 200 and reports failure in its progress stream; the
  --    registry may still be starting, so a refused or reset connection is
  --    retried.
  bottle.step("push", ("pushing %s:latest"):format(repo))
  local delay = 0.25
  for attempt = 1, 6 do
    -- X-Registry-Auth is required (Docker 28.3.3 dropped the old auth-in-body
    -- fallback); this registry has no auth, so the credential is `{}`
    local r = docker:request("POST", "/images/" .. repo .. "/push", { query = { tag = "latest" },
      headers = { ["X-Registry-Auth"] = "e30=" }, timeout = 1800 })
    local why
    local lines = type(r.body) == "table" and { r.body } or {}
    for line in (type(r.body) == "string" and r.body or ""):gmatch("[^\r\n]+") do
      local okj, v = pcall(require("cork.json").decode, line)
      if okj and type(v) == "table" then lines[#lines + 1] = v end
    end
    for _, v in ipairs(lines) do
      why = why or (type(v.errorDetail) == "table" and v.errorDetail.message) or v.error
    end
    if not why then break end
    -- not ready yet: nothing listens (refused), or Docker's port proxy took
    -- the connection and found no listener behind it (reset, EOF)
    local starting = why:find("connection refused", 1, true) or why:find("connection reset", 1, true)
      or why:find("EOF", 1, true)
    if attempt == 6 or not starting then
      cork.error("daemon", ("pushing %s to the throwaway registry failed: %s"):format(image, why),
        { image = image, registry = repo })
    end
    log.debug(("registry not ready (%s), retrying"):format(why))
    cork.sleep(delay)
    delay = delay * 2
  end

  bottle.step("pack", ("packing %s:latest"):format(repo))
  smol:pack({ image = repo .. ":latest", output = partial })
end

-- 5. Into place, with a note of what made it; the artifact of the image's
--    previous ID (a rebuilt image) goes.
local ok, err = os.rename(partial, out)
if not ok then cork.error("io", ("cannot move the artifact into %s: %s"):format(out, err)) end
local replaced = artifacts.record(image, id, { image = image, image_id = id, method = method,
  smolvm = caps.version, created = os.time() })
if replaced then log.info(("removed the artifact of %s's previous image (%s)"):format(image, replaced:sub(1, 12))) end
log.info(("packed %s (%s, smolvm %s)"):format(out, method, caps.version))
return done(false)
