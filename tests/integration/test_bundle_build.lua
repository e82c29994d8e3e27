-- The Engine API build: d:image_build streams a context tar cork makes to
-- POST /build and decodes the answer's lines as they arrive; bundle.build
-- runs the real bundle's Dockerfile through it. No registry is reachable
-- here, so every FROM is an image of the private engine: the stand-in
-- bundle for the endpoint, and for the bundle's Dockerfile a base made from
-- the cached --from-apt root filesystem (it has the packages, so setup.sh
-- needs no apt: the build is offline).
local T = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/tap.lua")
local H = dofile(os.getenv("CORK_ROOT") .. "/tests/lib/docker_test.lua")
local cork = require "cork"
local bundle = require "cork.bundle"
local standin = require "cork.standin"

local d = H.connect(T)
local snap = H.snapshot(d)
local base_img = standin.bundle_image(d)
snap.images[d:image_inspect(base_img).Id] = true

local s <close> = cork.scope("test_bundle_build")
local dir = cork.fs.tempdir("cork-test-build")
s:defer(cork.fs.remove, dir, { recursive = true, missing_ok = true })
local function ctx(dockerfile, files)
  local root = dir .. "/ctx"
  cork.fs.remove(root, { recursive = true, missing_ok = true })
  cork.fs.mkdir(root)
  cork.fs.write(root .. "/Dockerfile", dockerfile)
  for n, v in pairs(files or {}) do cork.fs.write(root .. "/" .. n, v) end
  cork.proc.run({ "tar", "-C", root, "-cf", dir .. "/ctx.tar", "." })
  return dir .. "/ctx.tar"
end

-- ---- d:image_build ------------------------------------------------------------------
local TAG = H.name("built") .. ":latest"
s:defer(function() pcall(d.image_remove, d, TAG) end)
local msgs, first_at = {}, nil
local tar = ctx(("FROM %s\nARG WHO=nobody\nCOPY hello.txt /hello.txt\nRUN echo hello $WHO && sleep 2\n"):format(base_img),
  { ["hello.txt"] = "hi\n" })
local r = d:image_build(tar, { tag = TAG, labels = { ["cork.test"] = H.id, ["x.y"] = "z" }, buildargs = { WHO = "cork" },
  stream = function(m)
    msgs[#msgs + 1] = m
    first_at = first_at or cork.time()
  end })
local done_at = cork.time()
T.like(r.id, "^sha256:%x+$", "image_build returns the new image's id")
T.ok(first_at and done_at - first_at > 1.5, "the answer's lines are handed over as they arrive (before a 2 s step ends)")
local text = {}
for _, m in ipairs(msgs) do if type(m.stream) == "string" then text[#text + 1] = m.stream end end
text = table.concat(text)
T.like(text, "Step 1/%d+ : FROM", "decoded: the build's steps")
T.like(text, "hello cork", "the RUN's output, with the build argument")
local info = d:image_inspect(TAG)
T.is(info.Id, r.id, "tagged")
T.is(info.Config.Labels["x.y"], "z", "labels applied")

tar = ctx(("FROM %s\nRUN echo about to fail && false\n"):format(base_img))
local seen = 0
local err = T.raises(function() d:image_build(tar, { tag = TAG, stream = function() seen = seen + 1 end }) end,
  "bad_request", "returned a non%-zero code", "a failing step raises bad_request with Docker's message")
T.ok(seen > 0, "the lines before the failure were handed over")
T.is(err and err.path, "/build", "the error names the endpoint")
T.raises(function() d:image_build(tar, { tag = TAG, stream = function() error("stop here") end }) end, nil, "stop here",
  "an error in the stream function ends the build and propagates")
T.ok(d:ping(), "the client is usable afterwards")
T.raises(function() d:image_build(tar, { tagg = "x" }) end, nil, "tagg", "an unknown option is an error naming it")
T.raises(function() d:image_build(dir .. "/nope.tar") end, "not_found", "nope.tar", "a missing context: not_found")

-- ---- bundle.build: the real Dockerfile ------------------------------------------------------
local context = bundle.context(dir)
local list = cork.proc.run({ "tar", "-tf", context }).stdout
for _, f in ipairs({ "Dockerfile", "packages", "setup.sh", "entry.py", "filter.py", "egress.py", "supervise.py",
  "scan.py", "detectors.py", "common.py" }) do
  T.like(list, "\n?" .. H.pat(f) .. "\n", "the context has " .. f)
end
T.like(cork.fs.read(dir .. "/context/Dockerfile"), "FROM %${BASE}", "the Dockerfile builds FROM ${BASE}")
T.like(cork.fs.read(dir .. "/context/Dockerfile"), "ARG BASE=debian:bookworm%-slim", "debian:bookworm-slim by default")

if cork.core.uid() ~= 0 or not cork.fs.exists("/usr/sbin/debootstrap") then
  T.skip("no root or no debootstrap: the offline Dockerfile build needs the --from-apt root filesystem", 6)
else
  local cache = os.getenv("CORK_BUNDLE_CACHE") or (H.root .. "/build/bundle-cache")
  local rootfs = bundle.rootfs({ cache = cache, progress = false })
  local BASE = H.name("bookworm") .. ":latest"
  local repo, tag = BASE:match("^(.+):(.+)$")
  s:defer(function() pcall(d.image_remove, d, BASE) end)
  d:image_import(rootfs, { repo = repo, tag = tag, timeout = 900 })
  local NAME = H.name("bundle") .. ":latest"
  s:defer(function() pcall(d.image_remove, d, NAME) end)
  local b = bundle.build(d, { name = NAME, base = BASE, progress = false })
  T.ok(not b.reused and b.id, "bundle.build runs the real Dockerfile through the Engine API")
  T.diag(("Dockerfile build: %.0f s, %.0f MB"):format(b.seconds, (b.size or 0) / 1e6))
  local bi = d:image_inspect(NAME)
  T.is(bi.Config.Labels[bundle.LABEL], b.version, "labelled with its content version")
  T.is(bi.Config.Labels[bundle.DAEMONS_LABEL], bundle.daemons_version(), "and with its daemons' version")
  T.is(bundle.stale(NAME, bi), nil, "a launch finds it current: no warning")
  T.same(bi.Config.Cmd, { "python3", "/usr/lib/cork-bundle/entry.py" }, "the entrypoint is the bundle's")
  local again = bundle.build(d, { name = NAME, base = BASE, progress = false })
  T.ok(again.reused, "an unchanged build is reused")
  -- the image runs: an unknown daemon name exits 2, as the contract asks
  local c = H.name("bundle-run")
  s:defer(function() pcall(d.container_remove, d, c, { force = true }) end)
  d:container_create({ name = c, image = NAME, labels = H.labels, env = { CORK_DAEMONS = "pipelock,teleport" } })
  d:container_start(c)
  local st
  for _ = 1, 100 do
    st = d:container_inspect(c).State
    if not st.Running then break end
    cork.sleep(0.2)
  end
  T.is(st.ExitCode, 2, "the built image's entrypoint refuses an unknown daemon (exit 2)")
  T.like(d:container_logs(c).stderr, "unknown daemon teleport", "and says which")
end

s:close()
-- the failed builds' intermediate layers are dangling images: not leaks of ours
for _, i in ipairs(d:request("GET", "/images/json", { query = { filters = '{"dangling":["true"]}' } }).body) do
  pcall(d.image_remove, d, i.Id)
end
H.no_leaks(T, d, snap)
T.done()
