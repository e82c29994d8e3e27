-- cork.standin: stand-in bundle and agent images, made locally from
-- Debian's busybox-static (no registry, no Dockerfile, no docker CLI: a
-- rootfs tar handed to cork.docker's image_import). The demo, the tests, the
-- benchmarks and the example recipes use them until a real bundle image
-- exists.
--
--   local standin = require "cork.standin"
--   local bundle = standin.bundle_image(d)   -- "cork-standin-bundle:latest"
--   local agent = standin.agent_image(d)     -- "cork-standin-agent:latest"
--   local reg = standin.registry_image(d)    -- "cork-standin-registry:latest"
--
-- The stand-in bundle honours the bundle contract (docs/bundle.md) as far as
-- a test needs: for each daemon named in CORK_DAEMONS it serves HTTP on that
-- daemon's port, answering with the daemon's name; it logs which contract
-- files are mounted and the NAMES of its environment variables (never a
-- value), then sleeps. It filters nothing: it is not a bundle.
--
-- Building is idempotent: an image that exists with the same content label
-- (cork.standin.version) is used as it is; otherwise it is rebuilt and the
-- previous image of that name removed when nothing uses it.
local cork = require "cork"
local log = require "cork.log"
local plan = require "cork.plan"

local M = {}

M.VERSION = 1
M.LABEL = "cork.standin.version"
M.BUNDLE = "cork-standin-bundle:latest"
M.AGENT = "cork-standin-agent:latest"
M.BUSYBOX = "/bin/busybox"

-- busybox applets linked into both images (what the stand-ins, the demo and
-- the example recipes run). No wget: busybox-static's segfaults in
-- containers here; nc does the probing.
M.APPLETS = { "sh", "httpd", "sleep", "env", "cut", "sort", "tr", "sed", "nc", "cat", "mkdir",
  "chown", "chmod", "dirname", "basename", "id", "true", "false", "echo", "printf", "ls", "rm", "grep",
  "timeout", "head", "tail", "test", "[", "wc", "hostname", "ip", "kill", "ps", "stat", "nslookup", "ping",
  "base64" }

-- The bundle's entry point. Ports and paths come from cork.plan (the
-- contract), so the stand-in cannot drift from what the recipes mount.
local function bundle_entry()
  local p = plan.paths
  local cases = {}
  for _, d in ipairs({ "pipelock", "egress", "git-gate", "supervise" }) do
    cases[#cases + 1] = ("    %s) port=%d; conf=%s;;"):format(d, plan.ports[d], ({
      pipelock = p.pipelock_config, egress = p.egress_config,
      ["git-gate"] = p.git_gate_conf, supervise = p.supervise_queue })[d])
  end
  return ([[#!/bin/sh
# cork stand-in bundle (cork.standin): not a bundle. For each daemon in
# $%s it serves HTTP on the daemon's port, answering the daemon's name.
echo "cork stand-in bundle v%d: daemons $%s"
for d in $(echo "$%s" | tr , ' '); do
  case $d in
%s
    *) echo "unknown daemon $d (the contract knows pipelock, egress, git-gate, supervise)"; exit 2;;
  esac
  mkdir -p /www/$d && echo "$d" > /www/$d/index.html
  httpd -p $port -h /www/$d || exit 1
  if [ -e "$conf" ]; then echo "contract: $d config $conf mounted"; else echo "contract: $d config $conf missing"; fi
  echo "listening: $d $port"
done
for f in %s %s; do [ -e "$f" ] && echo "contract: CA $f mounted"; done
# names only, also when a value holds a newline (entries are NUL-separated;
# a newline inside a value becomes a space, never a line of its own)
tr '\n\000' ' \n' < /proc/$$/environ | cut -d= -f1 | sort | sed 's/^/env-name: /'
echo "ready"
exec sleep 2147483647
]]):format(plan.DAEMONS_ENV, M.VERSION, plan.DAEMONS_ENV, plan.DAEMONS_ENV, table.concat(cases, "\n"),
    p.pipelock_ca_cert, p.egress_ca_cert)
end

-- The directories of both rootfs (0755; tmp dirs 1777). The agent's
-- include what a Debian image has where provisioning writes (the CA step's
-- /usr/local/share/ca-certificates, tools in /usr/local/bin).
M.DIRS = { "bin", "etc", "tmp", "var/tmp", "www", "root", "home/agent", "usr/bin", "usr/local/bin",
  "usr/local/share/ca-certificates", "etc/ssl/certs" }

local PASSWD = "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n"
local GROUP = "root:x:0:\nagent:x:1000:\n"

-- What each image is: its files, the Dockerfile lines applied at import.
local function spec(which)
  if which == "bundle" then
    return { files = { ["bin/entry"] = { bundle_entry(), 493 } },
      changes = { "ENV PATH=/bin", 'CMD ["/bin/entry"]' } }
  end
  return { files = {}, changes = { "ENV PATH=/bin", 'CMD ["/bin/sh"]' } }
end

-- busybox() -> path of a statically linked busybox (checked), or raises
-- not_found naming the Debian package.
function M.busybox(path)
  path = path or os.getenv("CORK_BUSYBOX") or M.BUSYBOX
  local st = cork.fs.stat(path)   -- a symlink is fine: it is read through
  if not st or (st.type ~= "file" and st.type ~= "link") or not io.open(path, "rb") then
    cork.error("not_found", ("no busybox at %s: install the Debian package busybox-static "
      .. "(the stand-in images are made from it)"):format(path), { path = path })
  end
  local f = assert(io.open(path, "rb"))
  local head = f:read(8192) or ""
  f:close()
  if head:sub(1, 4) ~= "\127ELF" or head:find("ld-linux", 1, true) or head:find("/lib/ld-", 1, true) then
    cork.error("invalid", ("%s is not a statically linked busybox: install the Debian package "
      .. "busybox-static (the dynamic one cannot run in an empty image)"):format(path), { path = path })
  end
  return path
end

-- The content label: everything that goes into the image.
local function version_of(which, busybox)
  local s = spec(which)
  local parts = { tostring(M.VERSION), which, PASSWD, GROUP, table.concat(M.APPLETS, " "), table.concat(M.DIRS, " "),
    table.concat(s.changes, "\n") }
  local names = {}
  for n in pairs(s.files) do names[#names + 1] = n end
  table.sort(names)
  for _, n in ipairs(names) do parts[#parts + 1] = n .. "\0" .. s.files[n][1] end
  local f = assert(io.open(busybox, "rb"))
  parts[#parts + 1] = ("%d"):format(f:seek("end"))
  f:close()
  return ("%d-%08x"):format(M.VERSION, plan.hash(table.concat(parts, "\0")))
end

local function run(argv)
  local r = cork.proc.run(argv)
  if r.status ~= 0 then
    cork.error("io", ("%s failed (status %d): %s"):format(argv[1], r.status, (r.stderr or ""):match("[^\n]*")))
  end
end

-- A busybox rootfs for `which` under root.
local function fill_busybox(which, busybox, root)
  for _, dir in ipairs(M.DIRS) do cork.fs.mkdir(root .. "/" .. dir, tonumber("0755", 8)) end
  cork.fs.write(root .. "/bin/busybox", cork.fs.read(busybox), { mode = 493 })
  for _, a in ipairs(M.APPLETS) do run({ "ln", "-s", "busybox", root .. "/bin/" .. a }) end
  cork.fs.write(root .. "/etc/passwd", PASSWD)
  cork.fs.write(root .. "/etc/group", GROUP)
  for name, f in pairs(spec(which).files) do cork.fs.write(root .. "/" .. name, f[1], { mode = f[2] }) end
  run({ "chmod", "1777", root .. "/tmp", root .. "/var/tmp" })
end

-- ensure(d, name, which, version, source, force, fill, changes) -> name.
-- The image `name` as it is when it carries the content label `version`;
-- otherwise fill(root) makes a rootfs in a temp dir, which is imported with
-- the label and `changes`, and the previous build of that name is removed
-- unless something still uses it.
local function ensure(d, name, which, version, source, force, fill, changes)
  local old
  local ok, info = pcall(d.image_inspect, d, name)
  if ok then
    local labels = info.Config and info.Config.Labels
    if not force and type(labels) == "table" and labels[M.LABEL] == version then
      log.debug(("stand-in %s image %s is current (%s)"):format(which, name, version))
      return name
    end
    old = info.Id
  elseif not cork.is_error(info, "not_found") then
    error(info, 0)
  end
  log.info(("building the stand-in %s image %s from %s (no registry)"):format(which, name, source),
    { standin = which, image = name, version = version })
  local s <close> = cork.scope("standin " .. which)
  local tmp = cork.fs.tempdir("cork-standin")
  s:defer(cork.fs.remove, tmp, { recursive = true, missing_ok = true })
  fill(tmp .. "/rootfs")
  local tar = tmp .. "/rootfs.tar"
  run({ "tar", "-C", tmp .. "/rootfs", "--owner=0", "--group=0", "--numeric-owner", "-cf", tar, "." })
  local repo, tag = name:match("^(.+):([%w_.%-]+)$")
  if not repo then repo, tag = name, "latest" end
  local all = { ("LABEL %s=%q"):format(M.LABEL, version) }
  for _, c in ipairs(changes) do all[#all + 1] = c end
  local r = d:image_import(tar, { repo = repo, tag = tag, changes = all,
    message = "cork stand-in " .. which .. " image (cork.standin)" })
  if old and old ~= r.id then pcall(d.image_remove, d, old) end
  return name
end

-- image(d, which[, {name=, busybox=, force=}]) -> image reference.
local function image(d, which, o)
  o = o or {}
  local busybox = M.busybox(o.busybox)
  return ensure(d, o.name or (which == "bundle" and M.BUNDLE or M.AGENT), which, version_of(which, busybox),
    busybox, o.force, function(root) fill_busybox(which, busybox, root) end, spec(which).changes)
end

function M.bundle_image(d, o) return image(d, "bundle", o) end
function M.agent_image(d, o) return image(d, "agent", o) end

-- images(d) -> bundle ref, agent ref
function M.images(d, o)
  o = o or {}
  return M.bundle_image(d, { busybox = o.busybox, force = o.force }),
    M.agent_image(d, { busybox = o.busybox, force = o.force })
end

-- ---- a local registry -------------------------------------------------------
-- registry_image(d[, {name=, binary=, force=}]) -> "cork-standin-registry:latest"
--
-- A Docker registry (distribution's `registry serve`) on port 5000, plain
-- HTTP, no auth, made from Debian's docker-registry package: the binary and
-- the libraries ldd names, nothing else. `cork run prepare` needs one for
-- smolvm versions that pack only registry references
-- (`--registry-image cork-standin-registry:latest`); the tests use it to run
-- that path end to end. A missing binary raises not_found naming the package.
M.REGISTRY = "cork-standin-registry:latest"
M.REGISTRY_BINARY = "/usr/bin/docker-registry"
local REGISTRY_CONFIG = [[
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
]]

local function registry_files(binary)
  local st = cork.fs.stat(binary)
  if not st then
    cork.error("not_found", ("no registry at %s: install the Debian package docker-registry "
      .. "(the stand-in registry image is made from it)"):format(binary), { path = binary })
  end
  local files = { binary }
  local r = cork.proc.run({ "ldd", binary })
  -- "not a dynamic executable" (a static build) is fine: the binary alone
  for path in (r.stdout or ""):gmatch("(/[^%s]+) %(0x") do files[#files + 1] = path end
  return files, st
end

function M.registry_image(d, o)
  o = o or {}
  local binary = o.binary or os.getenv("CORK_REGISTRY_BINARY") or M.REGISTRY_BINARY
  local files, st = registry_files(binary)
  local version = ("%d-%08x"):format(M.VERSION, plan.hash(table.concat({ binary, tostring(st.size),
    tostring(st.mtime), REGISTRY_CONFIG, table.concat(files, " ") }, "\0")))
  local function fill(root)
    for _, dir in ipairs({ "bin", "etc", "tmp", "var/lib/registry" }) do
      cork.fs.mkdir(root .. "/" .. dir, tonumber("0755", 8))
    end
    cork.fs.write(root .. "/bin/registry", cork.fs.read(binary), { mode = 493 })
    for i = 2, #files do
      local dst = root .. files[i]
      cork.fs.mkdir(dst:match("^(.*)/[^/]+$"), tonumber("0755", 8))
      cork.fs.write(dst, cork.fs.read(files[i]), { mode = 493 })
    end
    cork.fs.write(root .. "/etc/registry.yml", REGISTRY_CONFIG)
    run({ "chmod", "1777", root .. "/tmp" })
  end
  return ensure(d, o.name or M.REGISTRY, "registry", version, binary, o.force, fill,
    { "EXPOSE 5000", 'CMD ["/bin/registry", "serve", "/etc/registry.yml"]' })
end

-- version(which) -> the content label an up-to-date image carries.
function M.version(which, busybox) return version_of(which, M.busybox(busybox)) end

return M
