-- cork.bundle: cork's real bundle image, built from Debian packages.
--
--   local bundle = require "cork.bundle"
--   bundle.from_apt(d[, {name=, cache=, mirror=, suite=, pipelock=, force=, progress=}])
--                                           -> {image=, version=, reused=, seconds=, size=}
--   bundle.version([{pipelock=}])           -> the content label a current image carries
--   bundle.daemons_version()                -> the daemons' label (cork.bundle.daemons)
--   bundle.stale(name, info)                -> a warning for a cork-built image of another cork
--   bundle.packages()                       -> the package list (assets/bundle/packages)
--
-- The sources live in lua/cork/assets/bundle/ (embedded in the binary): the
-- Dockerfile, the package list, the setup script both build paths run, and
-- the daemons (entry.py, filter.py, egress.py, supervise.py, scan.py and the
-- detectors they share). docs/bundle.md says what each daemon does.
--
-- --from-apt (engines with no registry): debootstrap makes a minbase
-- bookworm root filesystem from the host's Debian archive, setup.sh installs
-- the package list with apt inside it (chroot), and the result is cached as
-- a tar under the cache dir, keyed by what went into it (package list,
-- setup script, suite, mirror). The daemons are appended to a copy of that
-- tar and imported with image_import, labelled cork.bundle.version: an
-- image that carries the current label is reused, and a changed daemon
-- rebuilds only the (seconds-long) import, not the root filesystem.
local cork = require "cork"
local log = require "cork.log"
local plan = require "cork.plan"
local xdg = require "cork.xdg"

local M = {}

M.IMAGE = plan.DEFAULT_BUNDLE_IMAGE           -- cork-bundle:latest
M.LABEL = "cork.bundle.version"
M.SUITE = "bookworm"
M.MIRROR = "http://deb.debian.org/debian"
M.LIB = "/usr/lib/cork-bundle"
-- The daemons' files, installed under M.LIB; the rest of the asset dir is
-- build input (Dockerfile, packages, setup.sh).
M.DAEMON_FILES = { "entry.py", "common.py", "detectors.py", "filter.py", "egress.py", "supervise.py", "scan.py" }
M.BUILD_FILES = { "Dockerfile", "packages", "setup.sh" }
M.CMD = '["python3", "/usr/lib/cork-bundle/entry.py"]'

-- The text of one asset (CORK_PATH first, then the embedded copy).
function M.asset(name)
  return require("cork.gitgate").asset("bundle/" .. name)
end

function M.packages()
  local out = {}
  for line in M.asset("packages"):gmatch("[^\n]+") do
    local p = line:match("^%s*([^#%s]%S*)")
    if p then out[#out + 1] = p end
  end
  return out
end

-- The host's Debian mirror: the first deb URI of its apt sources that serves
-- the suite (deb822 or one-line format), else deb.debian.org.
function M.mirror(suite)
  suite = suite or M.SUITE
  local files = { "/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list" }
  for _, f in ipairs(files) do
    if cork.fs.exists(f) then
      local text = cork.fs.read(f)
      for stanza in (text .. "\n\n"):gmatch("(.-)\n%s*\n") do
        local uri = stanza:match("\nURIs:%s*(%S+)") or stanza:match("^URIs:%s*(%S+)")
        local suites = stanza:match("Suites:%s*([^\n]+)")
        if uri and suites and (" " .. suites .. " "):find(" " .. suite .. " ", 1, true) then return uri end
      end
      for line in text:gmatch("[^\n]+") do
        local uri, s = line:match("^%s*deb%s+%[?[^%]]*%]?%s*(%a+://%S+)%s+(%S+)")
        if not uri then uri, s = line:match("^%s*deb%s+(%a+://%S+)%s+(%S+)") end
        if uri and s == suite then return uri end
      end
    end
  end
  return M.MIRROR
end

local function hash_of(parts) return ("%08x"):format(plan.hash(table.concat(parts, "\0"))) end

-- The key of the cached root filesystem (packages only, no daemons).
function M.rootfs_key(o)
  o = o or {}
  return ("rootfs-%s-%s"):format(o.suite or M.SUITE, hash_of({ "1", M.asset("packages"), M.asset("setup.sh"),
    o.suite or M.SUITE, o.mirror or M.mirror(o.suite) }))
end

-- The content label: everything that goes into the image.
function M.version(o)
  o = o or {}
  local parts = { M.rootfs_key(o), M.CMD, M.asset("Dockerfile") }
  for _, f in ipairs(M.DAEMON_FILES) do parts[#parts + 1] = f .. "\0" .. M.asset(f) end
  if o.pipelock then
    local st = cork.fs.stat(o.pipelock)
    if not st then cork.error("not_found", ("--pipelock %s: no such file"):format(o.pipelock), { path = o.pipelock }) end
    parts[#parts + 1] = "pipelock\0" .. cork.fs.read(o.pipelock)
  end
  return "1-" .. hash_of(parts)
end

-- The daemons' label: what the configs cork writes must match. An image
-- without it (built by a cork before it existed) or with another value runs
-- daemons that may refuse this cork's configs (a key they do not know).
M.DAEMONS_LABEL = "cork.bundle.daemons"
local daemons_version
function M.daemons_version()
  if not daemons_version then
    local parts = { "1", M.CMD }
    for _, f in ipairs(M.DAEMON_FILES) do parts[#parts + 1] = f .. "\0" .. M.asset(f) end
    daemons_version = "1-" .. hash_of(parts)
  end
  return daemons_version
end

-- stale(info) -> a warning when an image that cork built (it carries
-- cork.bundle.version) holds daemons of another cork, else nil. Images of
-- other origins (an operator's own bundle) are not judged.
function M.stale(name, info)
  local labels = type(info) == "table" and info.Config and info.Config.Labels
  if type(labels) ~= "table" or not labels[M.LABEL] then return nil end
  if labels[M.DAEMONS_LABEL] == M.daemons_version() then return nil end
  return ("bundle image %s was built by another version of cork: its daemons may refuse this cork's "
    .. "configs and the bundle not start; rebuild it with `cork run bundle` (add --from-apt with no registry)"):format(name)
end

function M.cache_dir(o)
  return (o and o.cache) or os.getenv("CORK_BUNDLE_CACHE") or (xdg.home("cache") .. "/cork/bundle")
end

-- Progress: one status line rewritten in place on a terminal, a
-- bundle_progress event with --json, debug lines otherwise.
local function progress_fn(o)
  if o.progress == false then return function() end end
  local tty = not cork.core.settings().json and cork.core.isatty(2)
  local last = 0
  return function(phase, line, final)
    if cork.core.settings().json then
      log.event("bundle_progress", { phase = phase, line = line })
    elseif tty then
      local now = cork.time()
      if final or now - last > 0.1 then
        last = now
        local text = ("  %s: %s"):format(phase, line or ""):sub(1, 100)
        io.stderr:write("\r\27[K" .. text .. (final and "\n" or ""))
        io.stderr:flush()
      end
    else
      log.debug(("%s: %s"):format(phase, line or ""))
    end
  end
end

-- Runs argv, feeding each output line to progress; raises io with the tail
-- of the output when it fails.
local function run_progress(argv, phase, progress, env)
  local p <close> = cork.proc.spawn(argv, { stdout = "pipe", stderr = "pipe", env = env })
  local out, err = p:stdout(), p:stderr()
  local tail = {}
  local open = { out, err }
  while #open > 0 do
    for _, r in ipairs(cork.proc.poll(open, 1)) do
      local line, why = r:read_line(0)
      if line then
        progress(phase, line)
        tail[#tail + 1] = line
        if #tail > 20 then table.remove(tail, 1) end
      elseif why == "eof" then
        for i, x in ipairs(open) do if x == r then table.remove(open, i) break end end
      end
    end
  end
  local st = p:wait()
  if st.status ~= 0 then
    cork.error("io", ("%s failed (status %d):\n%s"):format(argv[1], st.status, table.concat(tail, "\n")),
      { argv0 = argv[1], status = st.status })
  end
end

local function run(argv)
  local r = cork.proc.run(argv)
  if r.status ~= 0 then
    cork.error("io", ("%s failed (status %d): %s"):format(argv[1], r.status, (r.stderr or ""):match("[^\n]*")))
  end
  return r
end

local function need(tool, package)
  if not (cork.fs.exists("/usr/sbin/" .. tool) or cork.fs.exists("/usr/bin/" .. tool)) then
    cork.error("not_found", ("%s is not installed: --from-apt needs the Debian package %s"):format(tool, package),
      { tool = tool })
  end
end

-- rootfs(o) -> path of the cached root filesystem tar, built when missing.
function M.rootfs(o)
  o = o or {}
  local progress = o.progress_fn or progress_fn(o)
  local dir = M.cache_dir(o)
  cork.fs.mkdir(dir, tonumber("0755", 8))
  local key = M.rootfs_key(o)
  local tar = ("%s/%s.tar"):format(dir, key)
  local lk <close> = cork.fs.lock(dir .. "/.lock", { timeout = 3600 })
  if cork.fs.exists(tar) and not o.force then
    log.info(("root filesystem %s is cached"):format(key), { rootfs = tar, cached = true })
    return tar, true
  end
  if cork.core.uid() ~= 0 then
    cork.error("permission", "--from-apt needs root (debootstrap and chroot): run it as root or with sudo")
  end
  need("debootstrap", "debootstrap")
  local mirror = o.mirror or M.mirror(o.suite)
  local suite = o.suite or M.SUITE
  log.info(("debootstrap %s from %s, then apt: %s"):format(suite, mirror, table.concat(M.packages(), " ")),
    { suite = suite, mirror = mirror })
  local s <close> = cork.scope("bundle rootfs")
  local tmp = cork.fs.tempdir("cork-bundle-rootfs")
  s:defer(cork.fs.remove, tmp, { recursive = true, missing_ok = true })
  local root = tmp .. "/rootfs"
  run_progress({ "debootstrap", "--variant=minbase", suite, root, mirror }, "debootstrap", progress)
  progress("debootstrap", "done", true)
  -- apt inside it sees the same suites as the host (updates, security)
  local host_sources = "/etc/apt/sources.list.d/debian.sources"
  if cork.fs.exists(host_sources) and cork.fs.read(host_sources):find(suite, 1, true) then
    cork.fs.write(root .. "/etc/apt/sources.list.d/debian.sources", cork.fs.read(host_sources))
    cork.fs.remove(root .. "/etc/apt/sources.list", { missing_ok = true })
  end
  cork.fs.mkdir(root .. "/tmp/cork-bundle", tonumber("0755", 8))
  cork.fs.write(root .. "/tmp/cork-bundle/packages", M.asset("packages"))
  cork.fs.write(root .. "/tmp/cork-bundle/setup.sh", M.asset("setup.sh"))
  run_progress({ "chroot", root, "sh", "/tmp/cork-bundle/setup.sh", "/tmp/cork-bundle/packages" }, "apt", progress,
    { PATH = "/usr/sbin:/usr/bin:/sbin:/bin", LANG = "C.UTF-8" })
  progress("apt", "done", true)
  cork.fs.remove(root .. "/tmp/cork-bundle", { recursive = true })
  cork.fs.write(root .. "/etc/resolv.conf", "")
  run({ "tar", "-C", root, "--numeric-owner", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
    "-cf", tar .. ".part", "." })
  s:defer(cork.fs.remove, tar .. ".part", { missing_ok = true })
  assert(os.rename(tar .. ".part", tar))
  return tar, false
end

local function image_info(d, name)
  local ok, info = pcall(d.image_inspect, d, name)
  if ok then return info end
  if not cork.is_error(info, "not_found") then error(info, 0) end
  return nil
end

-- current(d, name, version) -> image info when `name` carries the label.
function M.current(d, name, version)
  local info = image_info(d, name)
  local labels = info and info.Config and info.Config.Labels
  if type(labels) == "table" and labels[M.LABEL] == version and labels[M.DAEMONS_LABEL] == M.daemons_version() then
    return info
  end
  return nil, info
end

-- from_apt(d, o): the --from-apt build (see the top of this file).
function M.from_apt(d, o)
  o = o or {}
  local name = o.name or M.IMAGE
  local t0 = cork.time()
  local version = M.version(o)
  local cur, old = M.current(d, name, version)
  if cur and not o.force then
    log.info(("%s is current (%s)"):format(name, version), { image = name, version = version, reused = true })
    return { image = name, version = version, reused = true, seconds = 0, size = cur.Size, id = cur.Id }
  end
  o.progress_fn = progress_fn(o)
  local base = M.rootfs(o)
  local s <close> = cork.scope("bundle image")
  local tmp = cork.fs.tempdir("cork-bundle-image")
  s:defer(cork.fs.remove, tmp, { recursive = true, missing_ok = true })
  -- the daemons, appended to a copy of the cached root filesystem
  local stage = tmp .. "/stage"
  cork.fs.mkdir(stage .. M.LIB, tonumber("0755", 8))
  cork.fs.mkdir(stage .. "/usr/local/bin", tonumber("0755", 8))
  for _, f in ipairs(M.DAEMON_FILES) do
    cork.fs.write(stage .. M.LIB .. "/" .. f, M.asset(f), { mode = tonumber("0755", 8) })
  end
  run({ "ln", "-s", M.LIB .. "/scan.py", stage .. "/usr/local/bin/cork-scan" })
  local extra = { "." .. M.LIB, "./usr/local/bin/cork-scan" }
  if o.pipelock then
    cork.fs.write(stage .. "/usr/local/bin/pipelock", cork.fs.read(o.pipelock), { mode = tonumber("0755", 8) })
    extra[#extra + 1] = "./usr/local/bin/pipelock"
  end
  local tar = tmp .. "/image.tar"
  run({ "cp", base, tar })
  local argv = { "tar", "-C", stage, "--owner=0", "--group=0", "--numeric-owner", "-rf", tar }
  for _, e in ipairs(extra) do argv[#argv + 1] = e end
  run(argv)
  o.progress_fn("import", "importing into the engine")
  local repo, tag = name:match("^(.+):([%w_.%-]+)$")
  if not repo then repo, tag = name, "latest" end
  local r = d:image_import(tar, { repo = repo, tag = tag, timeout = 1800, message = "cork bundle (cork run bundle --from-apt)",
    changes = { ("LABEL %s=%q"):format(M.LABEL, version), ("LABEL %s=%q"):format(M.DAEMONS_LABEL, M.daemons_version()),
      "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8",
      "CMD " .. M.CMD } })
  o.progress_fn("import", "done", true)
  if old and old.Id ~= r.id then pcall(d.image_remove, d, old.Id) end
  local info = image_info(d, name) or {}
  local secs = cork.time() - t0
  log.info(("%s built in %.0f s (%.0f MB)"):format(name, secs, (info.Size or 0) / 1e6),
    { image = name, version = version, seconds = secs, size = info.Size })
  return { image = name, version = version, reused = false, seconds = secs, size = info.Size, id = r.id }
end

-- context(dir) -> path of a build context tar: the Dockerfile, the package
-- list, setup.sh and the daemons, made here from the embedded sources.
function M.context(dir)
  local root = dir .. "/context"
  cork.fs.mkdir(root, tonumber("0755", 8))
  local files = {}
  for _, f in ipairs(M.BUILD_FILES) do files[#files + 1] = f end
  for _, f in ipairs(M.DAEMON_FILES) do files[#files + 1] = f end
  for _, f in ipairs(files) do cork.fs.write(root .. "/" .. f, M.asset(f), { mode = tonumber("0644", 8) }) end
  local tar = dir .. "/context.tar"
  local argv = { "tar", "-C", root, "--owner=0", "--group=0", "--numeric-owner", "-cf", tar }
  for _, f in ipairs(files) do argv[#argv + 1] = f end
  run(argv)
  return tar
end

-- build(d, o): the Engine API build (the Dockerfile, FROM debian:bookworm-slim
-- or o.base), its output decoded and shown as it arrives. Same label and
-- reuse rule as from_apt. o = {name, force, base, network, progress, timeout}.
function M.build(d, o)
  o = o or {}
  local name = o.name or M.IMAGE
  local t0 = cork.time()
  local version = M.version({ pipelock = o.pipelock, suite = o.suite, mirror = "dockerfile:" .. (o.base or "default") })
  local cur, old = M.current(d, name, version)
  if cur and not o.force then
    log.info(("%s is current (%s)"):format(name, version), { image = name, version = version, reused = true })
    return { image = name, version = version, reused = true, seconds = 0, size = cur.Size, id = cur.Id }
  end
  if o.pipelock then
    cork.error("unsupported", "--pipelock goes with --from-apt (the Dockerfile build takes no extra files)")
  end
  local progress = progress_fn(o)
  local s <close> = cork.scope("bundle build")
  local tmp = cork.fs.tempdir("cork-bundle-context")
  s:defer(cork.fs.remove, tmp, { recursive = true, missing_ok = true })
  local tar = M.context(tmp)
  local step
  local r = d:image_build(tar, { tag = name, labels = { [M.LABEL] = version, [M.DAEMONS_LABEL] = M.daemons_version() }, network = o.network,
    buildargs = o.base and { BASE = o.base } or nil, timeout = o.timeout or 3600,
    stream = function(m)
      local text = type(m.stream) == "string" and m.stream:gsub("%s+$", "") or nil
      if text and text ~= "" then
        step = text:match("^(Step %d+/%d+)") or step
        progress(step or "build", text)
      elseif type(m.status) == "string" then
        progress(step or "build", m.status)
      end
    end })
  progress(step or "build", "done", true)
  if old and old.Id ~= r.id then pcall(d.image_remove, d, old.Id) end
  local info = image_info(d, name) or {}
  local secs = cork.time() - t0
  log.info(("%s built in %.0f s (%.0f MB)"):format(name, secs, (info.Size or 0) / 1e6),
    { image = name, version = version, seconds = secs, size = info.Size })
  return { image = name, version = version, reused = false, seconds = secs, size = info.Size, id = r.id }
end

return M
